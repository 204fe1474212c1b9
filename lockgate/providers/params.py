"""The one rule for request parameters a provider cannot honour (DESIGN §5).

Reject with 400 `unsupported_parameter` naming the parameter and the provider, unless the provider
has `drop_unsupported: true`: then drop it and log that it was dropped. Adapters decide *which*
parameters they cannot honour (a default value such as `n: 1` is usually fine); this module only
applies the rule, so every adapter answers the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from lockgate.errors import UnsupportedParameter

__all__ = ["reject_or_drop"]

log = logging.getLogger("lockgate.providers")


def reject_or_drop(body: dict[str, Any], params: Iterable[str], provider: str, drop: bool) -> None:
    """Raise `UnsupportedParameter` for the first of `params` set in `body`, or drop them all.

    A parameter set to null counts as absent and is removed silently. With `drop`, each one that
    is set is removed from `body` (in place) and logged at info level.
    """
    for param in params:
        if param not in body:
            continue
        if body[param] is None:
            del body[param]
            continue
        if not drop:
            raise UnsupportedParameter(param, provider)
        del body[param]
        log.info("provider %r cannot honour parameter %r: dropped it", provider, param)
