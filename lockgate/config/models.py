"""Typed configuration: the schema of `lockgate.yaml`.

Every model forbids unknown keys so a typo is an error with a "did you mean" hint rather than a
setting that is silently ignored. Cross-references (a target naming a provider) are checked in
`references.py`, where the key path of each mistake is known.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from lockgate.config.access import (
    KEY_NAME_PATTERN,
    NAME_PATTERN,
    AlertConfig,
    AuthConfig,
    BudgetConfig,
    BudgetPeriod,
    KeyConfig,
    Label,
    LimitsConfig,
    ModelGlob,
    OidcIssuerConfig,
    RateLimits,
    TeamConfig,
)
from lockgate.config.base import StrictModel
from lockgate.config.gitlab import GitLabConfig
from lockgate.config.prompts import ApiConfig, PromptsConfig
from lockgate.config.protection import CacheConfig, GuardrailRule, GuardrailsConfig
from lockgate.providers.catalogue import CompatibleType

__all__ = [
    "KEY_NAME_PATTERN",
    "NAME_PATTERN",
    "AlertConfig",
    "ApiConfig",
    "AuthConfig",
    "BudgetConfig",
    "BudgetPeriod",
    "CacheConfig",
    "GatewayConfig",
    "GitLabConfig",
    "GuardrailRule",
    "GuardrailsConfig",
    "KeyConfig",
    "Label",
    "LimitsConfig",
    "ModelConfig",
    "ModelGlob",
    "ObservabilityConfig",
    "OidcIssuerConfig",
    "PromptsConfig",
    "ProviderConfig",
    "RateLimits",
    "RoutingConfig",
    "ServerConfig",
    "StorageConfig",
    "StrictModel",
    "TargetConfig",
    "TeamConfig",
]

MIB = 1024 * 1024


class ServerConfig(StrictModel):
    """How the gateway listens and what it accepts from clients."""

    listen: str = Field(
        "127.0.0.1:4000",
        description="Address to listen on, as host:port.",
        examples=["0.0.0.0:4000"],
    )
    workers: int = Field(1, ge=1, le=64, description="Number of worker processes.")
    max_body_bytes: int = Field(
        8 * MIB, ge=1024, le=512 * MIB, description="Largest request body accepted (413 above it)."
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=4096,
        le=1024 * 1024,
        description="Largest request line plus headers accepted (431 above it).",
    )
    max_messages: int = Field(
        4096, ge=1, le=100_000, description="Most messages accepted in one chat request."
    )
    admin_key: SecretStr | None = Field(
        None,
        description=(
            "Key for `/admin/...`; also accepted on the client endpoints, unrestricted by limits. "
            "Use `${LOCKGATE_ADMIN_KEY}` rather than writing it into the file."
        ),
    )

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("admin_key must be at least 16 characters")
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port (e.g. 127.0.0.1:4000), got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class StorageConfig(StrictModel):
    """Where state lives. Nothing else has to run: SQLite file by default."""

    database: str = Field(
        "sqlite:///./lockgate.db",
        description=(
            "URL of the database: sqlite:///path (a file) or postgresql://user:pass@host/db "
            "(libpq's sslmode and connect_timeout are understood)."
        ),
    )
    redis: str | None = Field(
        None, description="Redis URL for shared counters and cache across workers and instances."
    )
    redis_prefix: str = Field(
        "lockgate:",
        max_length=64,
        description="Prefix of every Redis key, so gateways can share one Redis.",
    )
    key_refresh_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often each worker checks the database for key and team changes.",
    )
    ledger: bool = Field(
        True, description="Write the usage ledger: one database row per request (docs/usage.md)."
    )
    journal_dir: str = Field(
        "./lockgate-journal",
        description=(
            "Where usage records wait, as files, while the database is unreachable; they are "
            "replayed into it when it is back."
        ),
    )

    @field_validator("database")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value


ProviderType = Literal[
    "openai",
    "azure",
    "anthropic",
    "gemini",
    "bedrock",
    "cohere",
    "simulator",
    "local-embeddings",
    CompatibleType,
]


class VertexConfig(StrictModel):
    """Serve a `gemini` provider through Vertex AI instead of the Gemini API."""

    project: str = Field(
        pattern=r"^[a-z0-9][a-z0-9.:\-]*$",  # domain-scoped ids look like example.com:proj
        description="Google Cloud project id.",
    )
    location: str = Field(
        "us-central1",
        pattern=r"^[a-z0-9\-]+$",
        description="Vertex AI region, or `global`.",
    )


class AwsConfig(StrictModel):
    """The AWS region and credentials of a `bedrock` provider (requests are SigV4-signed)."""

    region: str = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$",
        description="AWS region of the Bedrock runtime, e.g. us-east-1.",
    )
    access_key_id: SecretStr | None = Field(
        None, description="AWS access key id; use ${AWS_ACCESS_KEY_ID}, never a literal."
    )
    secret_access_key: SecretStr | None = Field(
        None, description="AWS secret access key; use ${AWS_SECRET_ACCESS_KEY}."
    )
    session_token: SecretStr | None = Field(
        None, description="Session token of temporary credentials (${AWS_SESSION_TOKEN})."
    )

    @model_validator(mode="after")
    def _key_pair(self) -> AwsConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        return self


class ProviderConfig(StrictModel):
    """One upstream account: a wire protocol, an endpoint and a credential."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Unique name; targets refer to it, and `x-lockgate-model` reports it.",
    )
    type: ProviderType = Field(
        description=(
            "Wire protocol. `openai`: any OpenAI-compatible server; `azure`: Azure OpenAI "
            "deployments; `anthropic`: Anthropic's Messages API; "
            "`gemini`: Google's Gemini API (or Vertex AI with `vertex`); "
            "`bedrock`: AWS Bedrock's Converse API (with `aws`); "
            "`cohere`: Cohere's v2 chat and embed API; "
            "`simulator`: the built-in simulator, started in-process; "
            "`local-embeddings`: sentence-transformers models run in the gateway (the "
            "`semantic` extra; embeddings only); "
            "`mistral`, `groq`, `ollama`, ...: an OpenAI-compatible service from the catalogue "
            "(docs/providers.md), with its default base_url and quirks."
        )
    )
    base_url: str | None = Field(
        None,
        description=(
            "Endpoint root. openai: defaults to https://api.openai.com/v1; "
            "azure: https://RESOURCE.openai.azure.com (required); catalogue types: the "
            "service's documented base URL."
        ),
    )
    api_key: SecretStr | None = Field(
        None, description="Credential; use ${ENV_VAR}, never a literal."
    )
    api_version: str | None = Field(
        None,
        description="Protocol version: Azure's api-version query parameter (default 2024-10-21).",
    )
    drop_unsupported: bool = Field(
        False,
        description=(
            "Drop request parameters this provider cannot honour (logged) instead of "
            "answering 400 unsupported_parameter."
        ),
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra headers sent with every upstream request."
    )
    latency_ms: float = Field(0.0, ge=0, description="Simulator only: delay before each answer.")
    tokens_per_s: float = Field(0.0, ge=0, description="Simulator only: stream pacing (0 = none).")
    vertex: VertexConfig | None = Field(
        None,
        description=(
            "gemini only: serve through Vertex AI, `{project, location}` (location defaults to "
            "us-central1); `api_key` is then an OAuth access token sent as a bearer token, and "
            "base_url defaults to https://LOCATION-aiplatform.googleapis.com. Without it: the "
            "Gemini API at https://generativelanguage.googleapis.com, key in x-goog-api-key."
        ),
    )
    aws: AwsConfig | None = Field(
        None,
        description=(
            "bedrock only (required): `{region, access_key_id, secret_access_key, "
            "session_token}`; requests are signed with AWS SigV4. Without the key pair, "
            "`api_key` must hold a Bedrock API key (sent as a bearer token). base_url defaults "
            "to https://bedrock-runtime.REGION.amazonaws.com."
        ),
    )

    @model_validator(mode="after")
    def _vertex_is_gemini(self) -> ProviderConfig:
        if self.vertex is not None and self.type != "gemini":
            raise ValueError("`vertex` applies to providers of type gemini only")
        return self

    @model_validator(mode="after")
    def _aws_is_bedrock(self) -> ProviderConfig:
        if self.aws is not None and self.type != "bedrock":
            raise ValueError("`aws` applies to providers of type bedrock only")
        if self.type == "bedrock":
            if self.aws is None:
                raise ValueError("a bedrock provider needs `aws: {region, ...}`")
            if self.aws.access_key_id is None and self.api_key is None:
                raise ValueError(
                    "a bedrock provider needs aws.access_key_id and aws.secret_access_key "
                    "(or a Bedrock API key in api_key)"
                )
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")


class Price(StrictModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(
        None,
        ge=0,
        description="Input tokens served from the provider's prompt cache (default: input).",
    )


class TargetConfig(StrictModel):
    """A provider and the model name it knows."""

    provider: str = Field(description="Name of a provider declared under `providers`.")
    model: str = Field(
        min_length=1,
        description=(
            "Upstream model (Azure: deployment). `*` stands for what the model's glob matched."
        ),
    )
    weight: float = Field(1.0, gt=0, description="Share of traffic under the weighted strategy.")
    context_window: int | None = Field(
        None,
        gt=0,
        description=(
            "Most input tokens this target accepts; longer requests skip it (estimated before "
            "the call)."
        ),
    )
    price: Price | None = Field(
        None,
        description=(
            "USD per million tokens for this target: cost in the ledger, budgets and the `cost` "
            "strategy (overrides the model's and the built-in price table's)."
        ),
    )


class Comparison(StrictModel):
    """A numeric condition; every bound given must hold."""

    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None


class RuleCondition(StrictModel):
    """What a request must look like for a rule to apply; every condition given must hold."""

    input_tokens: Comparison | None = Field(
        None, description="Estimated input tokens (characters / 4, images 85 each)."
    )
    stream: bool | None = Field(None, description="The request streams (or does not).")
    tools: bool | None = Field(None, description="The request offers tools (or does not).")
    tags: dict[str, str] | None = Field(
        None, description="Every tag given appears with that value in `x-lockgate-tags`."
    )


class RuleConfig(StrictModel):
    """Conditional routing: the first rule whose condition holds sends the request to `model`."""

    when: RuleCondition = Field(
        default_factory=RuleCondition,
        alias="if",
        description="Condition (`if:` in YAML); omitted: always.",
    )
    model: str = Field(description="Name of another model that serves the request.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Strategy = Literal["weighted", "fallback", "latency", "least-busy", "cost"]


class ModelConfig(StrictModel):
    """A model name clients send, and the targets (or rules) that serve it."""

    name: str = Field(
        min_length=1,
        max_length=256,
        description="The name clients send. May hold one `*` glob, e.g. `openai/*` or `*`.",
    )
    targets: list[TargetConfig] = Field(
        default_factory=list, description="Where requests go; required unless `rules` is given."
    )
    strategy: Strategy = Field(
        "weighted",
        description=(
            "How a target is chosen: `weighted` (random by weight), `fallback` (in order), "
            "`latency` (fastest recently), `least-busy` (fewest in flight), `cost` (cheapest)."
        ),
    )
    fallbacks: list[str] = Field(
        default_factory=list,
        description="Models tried, in order, when every target of this one failed.",
    )
    rules: list[RuleConfig] = Field(
        default_factory=list,
        description="Conditional routing to other models; the first matching rule wins.",
    )
    price: Price | None = Field(
        None,
        description=(
            "USD per million tokens of every target (overrides the built-in price table); "
            "see docs/pricing.md."
        ),
    )
    timeout_s: float | None = Field(
        None, gt=0, description="Overrides `routing.timeout_s` for this model."
    )
    cache_ttl_s: float | None = Field(
        None,
        ge=0,
        le=30 * 24 * 3600,
        description="Overrides `cache.ttl_s` for this model; 0: never cache its answers.",
    )

    @field_validator("name")
    @classmethod
    def _one_glob(cls, value: str) -> str:
        if value.count("*") > 1:
            raise ValueError("a model name may hold at most one `*`")
        return value

    @model_validator(mode="after")
    def _targets_or_rules(self) -> ModelConfig:
        if not self.targets and not self.rules:
            raise ValueError("a model needs `targets` or `rules`")
        return self


class CooldownConfig(StrictModel):
    """Circuit breaker: a failing target is skipped for a while, then probed with one request."""

    after_failures: int = Field(3, ge=1, description="Consecutive failures that open it.")
    for_s: float = Field(30.0, gt=0, description="How long the target is skipped.")


class RoutingConfig(StrictModel):
    """Deadlines, retries and cooldowns for upstream calls."""

    timeout_s: float = Field(
        60.0, gt=0, description="Per attempt: until the response (non-streaming) or first chunk."
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP + TLS connect to a provider.")
    stream_idle_timeout_s: float = Field(
        60.0, gt=0, description="Longest gap between two chunks of a stream."
    )
    deadline_s: float | None = Field(
        None, gt=0, description="Bound on the whole request, streaming included (none by default)."
    )
    retries: int = Field(
        2,
        ge=0,
        le=10,
        description=(
            "Extra rounds over a model's targets after every one failed retryably, with "
            "exponential backoff and jitter between rounds."
        ),
    )
    backoff_s: float = Field(0.25, ge=0, description="First backoff; doubles each round.")
    backoff_max_s: float = Field(8.0, ge=0, description="Longest backoff.")
    max_retry_after_s: float = Field(
        30.0,
        ge=0,
        description=(
            "A provider's retry-after up to this is waited for; a longer one cools the target "
            "down instead."
        ),
    )
    cooldown: CooldownConfig = Field(default_factory=CooldownConfig)


class ObservabilityConfig(StrictModel):
    """Logs, metrics and traces."""

    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(
        True, description="One line per request (JSON with `log_format: json`) on stderr."
    )
    log_bodies: bool = Field(
        False,
        description=(
            "Add request and response bodies to the access log, secrets and PII redacted "
            "(non-streaming answers only)."
        ),
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at `GET /metrics`.")
    otlp_endpoint: str | None = Field(
        None,
        description=(
            "OTLP/HTTP endpoint for traces, e.g. `http://otel-collector:4318`; empty: tracing off "
            "(and costs nothing)."
        ),
    )
    trace_sample_ratio: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of requests traced when no parent `traceparent` decides.",
    )
    service_name: str = Field("lockgate", min_length=1, description="OpenTelemetry `service.name`.")

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL (OTLP over HTTP)")
        return value.rstrip("/")


class GatewayConfig(StrictModel):
    """A whole gateway: `lockgate.yaml`."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    teams: list[TeamConfig] = Field(default_factory=list)
    keys: list[KeyConfig] = Field(default_factory=list)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    alerts: list[AlertConfig] = Field(default_factory=list)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    cache: CacheConfig | None = Field(
        None, description="The response cache (off unless this section is present)."
    )
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    prompts: PromptsConfig | None = Field(
        None, description="Versioned prompt files (docs/prompts.md)."
    )
    apis: list[ApiConfig] = Field(
        default_factory=list, max_length=1000, description="Prompts served as REST endpoints."
    )
    gitlab: GitLabConfig | None = Field(
        None,
        description=(
            "Post merge-request reviews on CI jobs' behalf (`POST /gitlab/merge-requests/review`, "
            "docs/gitlab.md)."
        ),
    )

    @property
    def closed(self) -> bool:
        """Whether any credential is configured (else the gateway runs open, DESIGN §2)."""
        return bool(self.server.admin_key or self.keys or self.teams or self.auth.oidc)
