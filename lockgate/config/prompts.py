"""The `prompts` and `apis` sections: versioned prompt files, and the REST APIs serving them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lockgate.config.base import StrictModel

__all__ = ["PROMPT_API_PREFIX", "RESERVED_PATHS", "ApiConfig", "PromptsConfig"]

PROMPT_API_PREFIX = "/v1/prompts/"
"""`POST /v1/prompts/{name}`: every prompt, by name."""

RESERVED_PATHS = (
    "/v1/",
    "/admin",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/ui",
    "/gitlab/",
)
"""Paths (and prefixes) of the gateway's own endpoints, which an API may not take."""


class PromptsConfig(StrictModel):
    dir: str = Field(
        "./prompts",
        description=(
            "The prompts folder (docs/prompts.md), relative to the config file's folder. "
            "Without a `prompts` section it is used when it exists."
        ),
    )


Method = Literal["POST", "GET"]


class ApiConfig(StrictModel):
    """A prompt served as a REST endpoint: the request body is the prompt's input."""

    path: str = Field(
        max_length=256,
        pattern=r"^/[A-Za-z0-9._~/-]*$",
        description="e.g. `/sentiment`; not under the gateway's own paths (`/v1/`, `/admin`, ...).",
    )
    prompt: str = Field(
        min_length=1,
        max_length=200,
        description="A prompt reference: `sentiment`, `sentiment@1.2.0`, `sentiment@^1`, ...",
    )
    methods: list[Method] = Field(
        default_factory=lambda: list[Method](["POST"]),
        min_length=1,
        description="`POST` takes the input as a JSON body; `GET` from the query string.",
    )

    @field_validator("path")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        for reserved in RESERVED_PATHS:
            if value == reserved.rstrip("/") or value.startswith(reserved):
                raise ValueError(f"{value!r} is under the gateway's own {reserved!r}")
        return value.rstrip("/") or "/"
