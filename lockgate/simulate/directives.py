"""Per-request scripting directives (faults, pacing, canned replies).

Directives come from three places, merged with later sources winning:
the model-name suffix (``sim-small?status=500&retry_after=2``), the request
body field ``"simulate": {...}`` and the ``x-simulate: status=500;retry_after=2``
header. Unknown keys and bad values raise :class:`DirectiveError` so a typo in
a test fails loudly instead of silently doing nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True, slots=True)
class Directives:
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    tokens: int | None = None
    status: int | None = None
    retry_after: float | None = None
    hang: bool = False
    reset: bool = False
    truncate_after: int | None = None
    error_after: int | None = None
    stall_after: int | None = None
    fail_times: int | None = None
    key: str | None = None
    # False: not requested; True: call the first (or tool_choice-named) tool; str: that tool.
    tool_call: bool | str = False
    content: str | None = None
    content_times: int | None = None
    """`content` answers only the first N requests (per `key`); later ones get the usual reply."""


NO_DIRECTIVES = Directives()


class DirectiveError(ValueError):
    def __init__(self, key: str | None, reason: str) -> None:
        name = key if key is not None else "simulate"
        super().__init__(f"Invalid simulator directive '{name}': {reason}")
        self.key = key
        self.param = "simulate" if key is None else f"simulate.{key}"


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise ValueError("expected a number")
    if not math.isfinite(number) or number < 0:
        raise ValueError("expected a finite number >= 0")
    return number


def _count(value: object) -> int:
    number = _number(value)
    if not number.is_integer():
        raise ValueError("expected a whole number >= 0")
    return int(number)


def _status(value: object) -> int:
    status = _count(value)
    if not 400 <= status <= 599:
        raise ValueError("expected an HTTP error status between 400 and 599")
    return status


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, int | str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected 1/0 or true/false")


def _text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a string")
    return str(value)


def _tool_call(value: object) -> bool | str:
    try:
        return _flag(value)
    except ValueError:
        name = _text(value).strip()
        if not name:
            raise ValueError("expected 1 or a function name") from None
        return name


_CONVERTERS: Mapping[str, Callable[[object], Any]] = MappingProxyType(
    {
        "latency_ms": _number,
        "tokens_per_s": _number,
        "tokens": _count,
        "status": _status,
        "retry_after": _number,
        "hang": _flag,
        "reset": _flag,
        "truncate_after": _count,
        "error_after": _count,
        "stall_after": _count,
        "fail_times": _count,
        "key": _text,
        "tool_call": _tool_call,
        "content": _text,
        "content_times": _count,
    }
)

DIRECTIVE_KEYS = frozenset(_CONVERTERS)


def split_model(model: str) -> tuple[str, str | None]:
    """Split ``name?k=v&...`` into the model name and its directive suffix."""
    name, sep, suffix = model.partition("?")
    return name, suffix if sep else None


def parse_pairs(text: str, separator: str) -> dict[str, str]:
    """Parse ``k=v`` pairs; values may be percent-encoded."""
    pairs: dict[str, str] = {}
    for segment in text.split(separator):
        segment = segment.strip()
        if not segment:
            continue
        key, eq, value = segment.partition("=")
        key = key.strip()
        if not eq or not key:
            raise DirectiveError(key or segment, "expected key=value")
        pairs[key] = unquote(value.strip())
    return pairs


def build_directives(raw: Mapping[str, object]) -> Directives:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        converter = _CONVERTERS.get(key)
        if converter is None:
            known = ", ".join(sorted(DIRECTIVE_KEYS))
            raise DirectiveError(key, f"unknown directive (known: {known})")
        try:
            values[key] = converter(value)
        except ValueError as exc:
            raise DirectiveError(key, f"bad value {value!r}: {exc}") from None
    return Directives(**values)


def collect_directives(
    model_suffix: str | None, body_value: object, header_value: str | None
) -> Directives:
    """Merge the three directive sources (later wins) and validate them."""
    if model_suffix is None and body_value is None and header_value is None:
        return NO_DIRECTIVES
    raw: dict[str, object] = {}
    if model_suffix:
        raw.update(parse_pairs(model_suffix, "&"))
    if body_value is not None:
        if not isinstance(body_value, dict):
            raise DirectiveError(None, "the 'simulate' field must be an object")
        raw.update(body_value)
    if header_value:
        raw.update(parse_pairs(header_value, ";"))
    return build_directives(raw) if raw else NO_DIRECTIVES
