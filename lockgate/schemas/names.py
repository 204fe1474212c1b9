"""Constraints on names a client sends that end up in URLs, headers, logs and health records."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["ModelName"]

ModelName = Annotated[
    str,
    # Printable, no spaces or control characters; long enough for any provider's model ids.
    msgspec.Meta(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$"),
]
