"""The `gitlab` section: the GitLab the gateway posts merge-request reviews to for CI jobs."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from lockgate.config.base import StrictModel

__all__ = ["GitLabConfig"]


class GitLabConfig(StrictModel):
    """With this, a CI job sends only its ID token; the gateway posts with its own bot token."""

    url: str = Field(description="The GitLab instance, e.g. `https://gitlab.example.com`.")
    token: SecretStr = Field(
        description="A bot user's or group access token with the `api` scope (Developer role)."
    )
    prompt: str = Field(
        "code-review", min_length=1, description="The prompt reference reviews use by default."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")
