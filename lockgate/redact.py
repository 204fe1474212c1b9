"""Keep configured secrets out of what the gateway says.

Adapters already remove a provider's own key from the provider's error messages; this is the
second line for every other secret in the config (keys in `headers`, AWS secrets), applied to
every upstream error before a client or a log line sees it.
"""

from __future__ import annotations

from collections.abc import Iterable

from lockgate.config.models import GatewayConfig
from lockgate.errors import GatewayError

__all__ = ["SecretScrubber", "config_secrets"]

MIN_SECRET_LENGTH = 8
"""Shorter values (`1`, `true`, a region) are too common to be told apart from text."""


class SecretScrubber:
    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def scrub_error(self, error: GatewayError) -> GatewayError:
        error.message = self.scrub(error.message)
        error.args = (error.message,)
        return error


def config_secrets(config: GatewayConfig) -> list[str]:
    """Every credential-like value in the config: keys, header values, cloud secrets."""
    values: list[str] = []
    for provider in config.providers:
        if provider.api_key is not None:
            values.append(provider.api_key.get_secret_value())
        values.extend(provider.headers.values())
        aws = getattr(provider, "aws", None)
        for field in ("access_key_id", "secret_access_key", "session_token"):
            secret = getattr(aws, field, None) if aws is not None else None
            if secret is not None:
                values.append(secret.get_secret_value())
    if config.gitlab is not None:
        values.append(config.gitlab.token.get_secret_value())
    return values
