"""Decode a request body once and validate it, naming the offending field on failure."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from lockgate.errors import BadRequest

__all__ = ["decode_object", "validate"]

T = TypeVar("T")

_decoder = msgspec.json.Decoder()
_PATH = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def decode_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or 400."""
    try:
        value = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise BadRequest("Request body must be a JSON object", code="invalid_json")
    return value


def validate(value: dict[str, Any], kind: type[T]) -> T:
    """`value` converted to `kind`, or 400 naming the field (`messages[0].role`)."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        param = match.group(1).lstrip(".") if match else ""
        message = _PATH.sub("", text)
        missing = _MISSING.search(text)
        if missing:
            param = f"{param}.{missing.group(1)}" if param else missing.group(1)
        elif param:
            message = f"{message} at '{param}'"
        param = param or None
        raise BadRequest(f"Invalid request: {message}", param=param, code="invalid_type") from None
