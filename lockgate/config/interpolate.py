"""`${VAR}` and `${VAR:-default}` substitution in configuration strings."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["MissingVariable", "interpolate"]

_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")


class MissingVariable(ValueError):
    """A `${VAR}` without a default names a variable that is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"environment variable {name} is not set (write ${{{name}:-}} to make it optional)"
        )
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Replace every `${VAR}` / `${VAR:-default}` in `text`; `$$` is a literal `$`.

    `${VAR:-default}` takes the default when VAR is unset or empty, as in POSIX shells.
    """
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:
            return "$"
        value = env.get(name)
        if value:
            return value
        if default is not None:
            return default
        if value is not None:
            return value
        raise MissingVariable(name)

    return _PATTERN.sub(replace, text)
