"""The simulator accepts any credential, but insists one is sent."""

from __future__ import annotations

from aiohttp import web


def has_credentials(request: web.BaseRequest) -> bool:
    """True for any ``Authorization: Bearer ...`` or ``api-key`` header."""
    headers = request.headers
    authorization = headers.get("Authorization")
    if authorization is not None and authorization[:7].lower() == "bearer ":
        return True
    return bool(headers.get("api-key"))
