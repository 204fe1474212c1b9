"""The composition root: builds every service once and wires them together.

Two lifetimes: `Services` live as long as the process (database, Redis, counters, connection
pools: a config reload must not reset a rate limit or drop a pooled connection); a `Container`
is everything built from one config, replaced whole on reload while requests that started on the
old one finish on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lockgate.admission import Admission
from lockgate.alerts import AlertSender
from lockgate.api.anthropic import AnthropicEndpoints
from lockgate.api.health import HealthEndpoints
from lockgate.api.metrics import MetricsEndpoint
from lockgate.api.openai import OpenAIEndpoints
from lockgate.auth.directory import Directory, KeyRecord, TeamRecord
from lockgate.auth.identity import Identifier
from lockgate.cache.local_embeddings import LocalEmbedder
from lockgate.cache.responses import ResponseCache
from lockgate.cache.semantic import SemanticCache, VectorIndex
from lockgate.cache.stores import CacheStore, MemoryStore
from lockgate.config.models import CacheConfig, GatewayConfig
from lockgate.errors import GatewayError
from lockgate.limits import BudgetLedger, Crossing, RateLimiter, Reservation, build_limiters
from lockgate.pipeline import Gateway
from lockgate.prompts.errors import PromptFilesError
from lockgate.prompts.served import ServedVersions, changed_after_serving
from lockgate.providers.base import ProviderAdapter
from lockgate.providers.registry import build_adapter
from lockgate.redact import config_secrets
from lockgate.routing.health import HealthBook
from lockgate.routing.router import Router
from lockgate.storage import Database
from lockgate.telemetry.access_log import AccessLog
from lockgate.telemetry.metrics import Metrics, genai_provider_names
from lockgate.telemetry.redaction import BodyRedactor
from lockgate.telemetry.tracing import build_tracing
from lockgate.transport.client import UpstreamClient
from lockgate.transport.proxies import Proxies
from lockgate.usage.accounting import Accounting
from lockgate.usage.journal import Journal
from lockgate.usage.ledger import Ledger
from lockgate.usage.spend_writer import SpendWriter

if TYPE_CHECKING:
    import aiohttp
    import redis.asyncio as redis

    from lockgate.api.gitlab import GitLabEndpoints
    from lockgate.api.prompts import Handler, PromptEndpoints
    from lockgate.auth.oidc import OidcVerifier
    from lockgate.prompts.registry import PromptRegistry
    from lockgate.routing.shared_cooldowns import SharedCooldowns
    from lockgate.simulate.server import RunningSimulator
    from lockgate.telemetry.tracing import Tracing

__all__ = ["Container", "Services"]

log = logging.getLogger("lockgate")

REDIS_CONNECTIONS = 64
REDIS_WAIT_S = 5.0


@dataclass
class Services:
    """What outlives a config reload."""

    database: Database
    redis: redis.Redis | None
    client: UpstreamClient
    limiter: RateLimiter
    ledger: BudgetLedger
    spend: SpendWriter
    usage: Ledger
    """The usage ledger (one record per request)."""
    tracing: Tracing | None
    metrics: Metrics
    admission: Admission
    alerts: AlertSender
    redis_prefix: str
    cooldowns: SharedCooldowns | None
    """Cooldowns shared with other instances (with Redis only); each Container's book attaches."""
    proxies: Proxies
    """The environment's outbound proxies, for providers, webhooks and OIDC key sets."""
    served: ServedVersions | None = None
    """Prompt versions that served traffic (set at start)."""
    cache: CacheStore | None = None
    """Made when a config first turns the cache on; kept across reloads (backend: restart)."""
    embedders: dict[str, LocalEmbedder] = field(default_factory=dict)
    """Local embeddings models (`type: local-embeddings`), loaded once per process."""
    vectors: dict[int, VectorIndex] = field(default_factory=dict)
    """The semantic cache's vector indexes, by dimensions (kept across reloads too)."""
    _session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """aiohttp for webhooks and OIDC key sets, made on first use: a gateway with neither
        never loads aiohttp (~11 MB); providers are called through `client`."""
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession()
        return self._session

    @classmethod
    async def start(cls, config: GatewayConfig) -> Services:
        proxies = Proxies(os.environ)  # first: a proxy variable it cannot use stops the start
        database = await Database.open(config.storage.database)
        redis_client = _connect_redis(config.storage.redis) if config.storage.redis else None
        client = UpstreamClient(config.routing.connect_timeout_s, proxies)

        async def load_spend(scope: str, period: str) -> int:
            return await database.spend.get_spend(scope, period)

        limiter, ledger = build_limiters(redis_client, config.storage.redis_prefix, load_spend)
        spend = SpendWriter(database.spend.add_spend)
        spend.start()
        usage = Ledger(database.usage.insert, Journal(Path(config.storage.journal_dir)))
        usage.start()
        tracing = build_tracing(config.observability)
        metrics = Metrics(providers=genai_provider_names(config.providers))
        alerts = AlertSender(config.alerts, lambda: services.session, proxies)

        def settled(reservation: Reservation, micros: int, crossings: list[Crossing]) -> None:
            for scope, period in reservation.periods():
                spend.record(scope, period, micros)
            for crossing in crossings:
                services.alerts.budget_crossed(crossing)

        cooldowns = None
        if redis_client is not None:
            from lockgate.routing.shared_cooldowns import SharedCooldowns

            cooldowns = SharedCooldowns(redis_client, config.storage.redis_prefix)
            cooldowns.start()
        services = cls(
            database=database,
            redis=redis_client,
            client=client,
            limiter=limiter,
            ledger=ledger,
            spend=spend,
            usage=usage,
            tracing=tracing,
            metrics=metrics,
            admission=Admission(limiter, ledger, settled),
            alerts=alerts,
            redis_prefix=config.storage.redis_prefix,
            cooldowns=cooldowns,
            proxies=proxies,
            served=ServedVersions(database.prompt_versions.record_served),
        )
        return services

    def cache_store(self, config: CacheConfig) -> CacheStore:
        if self.cache is None:
            use_redis = config.backend == "redis" or (
                config.backend == "auto" and self.redis is not None
            )
            if use_redis and self.redis is not None:
                from lockgate.cache.redis_store import RedisStore

                self.cache = RedisStore(self.redis, self.redis_prefix)
            else:
                self.cache = MemoryStore(config.max_bytes)
        return self.cache

    def vector_index(self, dimensions: int, max_entries: int) -> VectorIndex:
        index = self.vectors.get(dimensions)
        if index is None:
            from lockgate.cache.vectors import MemoryVectorIndex, RedisVectorIndex

            if self.redis is not None and not isinstance(self.cache, MemoryStore):
                index = RedisVectorIndex(self.redis, self.redis_prefix, max_entries, dimensions)
            else:
                index = MemoryVectorIndex(max_entries, dimensions)
            self.vectors[dimensions] = index
        return index

    def replace_alerts(self, config: GatewayConfig) -> None:
        self.alerts = AlertSender(config.alerts, lambda: self.session, self.proxies)

    async def ready(self) -> dict[str, str]:
        """Each dependency's state for /readyz."""
        checks = {"config": "ok"}
        try:
            await asyncio.wait_for(self.database.ping(), 2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable ({type(exc).__name__})"
        if self.redis is not None:
            try:
                await asyncio.wait_for(self.redis.ping(), 2)
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"unreachable ({type(exc).__name__})"
        return checks

    async def close(self) -> None:
        await self.admission.drain()
        if self.served is not None:
            await self.served.close()
        await self.usage.close()
        await self.spend.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # flushes: blocks for up to 5 s
        self.metrics.close()
        await self.alerts.close()
        if self.cache is not None:
            await self.cache.close()
        for embedder in self.embedders.values():
            embedder.close()
        await self.limiter.close()
        await self.ledger.close()
        await self.client.close()
        if self._session is not None:
            await self._session.close()
        if self.cooldowns is not None:
            await self.cooldowns.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.close()


@dataclass
class Container:
    """Everything built from one `GatewayConfig`."""

    config: GatewayConfig
    identifier: Identifier
    oidc: OidcVerifier | None
    router: Router
    gateway: Gateway
    openai: OpenAIEndpoints
    anthropic: AnthropicEndpoints
    health: HealthEndpoints
    metrics: MetricsEndpoint | None
    accounting: Accounting
    warnings: list[str]
    prompts: PromptEndpoints | None = None
    gitlab: GitLabEndpoints | None = None
    """`POST /gitlab/merge-requests/review`, with `gitlab:` configured."""
    apis: dict[str, tuple[Handler, Sequence[str]]] = field(default_factory=dict)
    """`apis` path -> (handler, methods)."""
    simulators: list[RunningSimulator] = field(default_factory=list)
    cache: ResponseCache | None = None
    active: int = 0
    """Requests in flight on this container; a replaced one closes when this reaches 0."""
    retired: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a retired container's last request ends."""

    @classmethod
    async def start(
        cls, config: GatewayConfig, services: Services, config_dir: Path | None = None
    ) -> Container:
        """Raises `PromptFilesError` when the prompts folder or an `apis` reference is wrong."""
        registry = load_prompts(config, config_dir)
        changed = []
        if registry is not None:
            served = await services.database.prompt_versions.served_hashes()
            changed = changed_after_serving(registry, served)
        simulators: list[RunningSimulator] = []
        adapters: dict[str, ProviderAdapter] = {}
        try:
            for provider in config.providers:
                base_url = None
                if provider.type == "simulator":
                    from lockgate.simulate.server import start_simulator
                    from lockgate.simulate.settings import SimulatorSettings

                    simulator = await start_simulator(
                        SimulatorSettings(
                            latency_ms=provider.latency_ms, tokens_per_s=provider.tokens_per_s
                        )
                    )
                    simulators.append(simulator)
                    base_url = simulator.base_url
                    services.client.reach_directly(base_url)  # in this process: no proxy
                adapters[provider.name] = build_adapter(provider, base_url, services.embedders)
        except BaseException:
            for simulator in simulators:
                await simulator.close()
            raise
        oidc = None
        if config.auth.oidc:
            from lockgate.auth.oidc import OidcVerifier  # JWT and crypto: only when used

            oidc = OidcVerifier(config.auth.oidc, services.session, proxies=services.proxies)
        identifier = Identifier(config, oidc)
        identifier.replace(await load_directory(config, services.database))
        health = HealthBook(config.routing.cooldown)
        if services.cooldowns is not None:
            await services.cooldowns.attach(health)
        router = Router(config.models, adapters, health)
        cache = _response_cache(config, services)
        gateway = Gateway(config, router, health, services.client, services.admission, cache)
        observability = config.observability
        accounting = Accounting(
            services.usage if config.storage.ledger else None,
            services.metrics if observability.metrics else None,
            _access_log(config) if observability.access_log else None,
            services.tracing,
        )
        prompts, gitlab = None, None
        apis: dict[str, tuple[Handler, Sequence[str]]] = {}
        if registry is not None:
            # Imported here: prompts (Jinja2, jsonschema) and GitLab (python-gitlab, requests)
            # cost some 30 MB of memory, which a gateway without them should not carry.
            from lockgate.api.prompts import PromptEndpoints
            from lockgate.prompts.runner import PromptRunner

            runner = PromptRunner(registry, gateway, services.served)
            limit = config.server.max_body_bytes
            prompts = PromptEndpoints(runner, identifier, accounting, limit)
            apis = {api.path: (prompts.api(api.prompt), api.methods) for api in config.apis}
            if config.gitlab is not None:
                from lockgate.api.gitlab import GitLabEndpoints

                gitlab = GitLabEndpoints(config.gitlab, runner, identifier, accounting, limit)
        warnings = _warnings(config, identifier, router) + changed
        for warning in warnings:
            log.warning("%s", warning)
        container = cls(
            config=config,
            identifier=identifier,
            oidc=oidc,
            router=router,
            gateway=gateway,
            openai=OpenAIEndpoints(
                gateway, identifier, accounting, config.server.max_body_bytes, router.listed_models
            ),
            anthropic=AnthropicEndpoints(
                gateway, identifier, accounting, config.server.max_body_bytes
            ),
            health=HealthEndpoints(warnings, identifier, gateway.target_health, services.ready),
            metrics=MetricsEndpoint(services.metrics) if observability.metrics else None,
            accounting=accounting,
            warnings=warnings,
            prompts=prompts,
            gitlab=gitlab,
            apis=apis,
            simulators=simulators,
            cache=cache,
        )
        return container

    async def close(self) -> None:
        self.accounting.close()
        if self.cache is not None:
            await self.cache.close()
        if self.oidc is not None:
            await self.oidc.close()
        for simulator in self.simulators:
            await simulator.close()


def load_prompts(config: GatewayConfig, config_dir: Path | None) -> PromptRegistry | None:
    """The prompts folder (relative to the config file's), checked against the `apis`; None
    when nothing asks for prompts and there is no `./prompts` folder."""
    required = config.prompts is not None or bool(config.apis) or config.gitlab is not None
    directory = Path(config.prompts.dir if config.prompts is not None else "./prompts")
    if config_dir is not None and not directory.is_absolute():
        directory = config_dir / directory
    if not required and not directory.is_dir():
        return None
    from lockgate.prompts.registry import PromptRegistry

    registry = PromptRegistry.load(directory, required=required)
    problems = []
    for a, api in enumerate(config.apis):
        try:
            registry.resolve(api.prompt)
        except GatewayError as error:
            problems.append(f"apis[{a}].prompt: {error.message}")
    if problems:
        raise PromptFilesError(problems)
    return registry


def _response_cache(config: GatewayConfig, services: Services) -> ResponseCache | None:
    settings = config.cache
    if settings is None or not settings.enabled:
        return None
    semantic = None
    if settings.semantic.enabled and settings.semantic.embeddings:
        max_entries = settings.semantic.max_entries

        def index_for(dimensions: int) -> VectorIndex:
            return services.vector_index(dimensions, max_entries)

        semantic = SemanticCache(
            settings.semantic.embeddings, settings.semantic.threshold, index_for
        )
    return ResponseCache(settings, config.models, services.cache_store(settings), semantic)


def _access_log(config: GatewayConfig) -> AccessLog:
    redactor = None
    if config.observability.log_bodies:
        redactor = BodyRedactor(config_secrets(config))
    return AccessLog(config.observability.log_format, redactor)


async def load_directory(config: GatewayConfig, database: Database) -> Directory:
    """Declared keys and teams plus those stored in the database."""
    keys, teams = await database.directory()
    stored_keys = [
        KeyRecord(
            key.name,
            key.key_hash,
            key.team,
            tuple(key.models) if key.models is not None else None,
            key.limits,
            key.budget,
            key.expires_at,
            declared=False,
        )
        for key in keys
    ]
    stored_teams = [
        TeamRecord(team.name, tuple(team.models), team.limits, team.budget, declared=False)
        for team in teams
    ]
    return Directory(config.keys, config.teams, stored_keys, stored_teams)


def _warnings(config: GatewayConfig, identifier: Identifier, router: Router) -> list[str]:
    warnings = []
    if identifier.open:
        warnings.append(
            "no API keys, teams or OIDC issuers are configured: the gateway is open to anyone "
            "who can reach it (fine on 127.0.0.1, not on a shared network)"
        )
    if not config.models:
        warnings.append("no models are configured: every request will answer 404 model_not_found")
    if any(provider.type == "simulator" for provider in config.providers):
        names = ", ".join(p.name for p in config.providers if p.type == "simulator")
        warnings.append(
            f"provider {names} is the built-in simulator: its answers are made up, not from a model"
        )
    budgets = any(team.budget for team in config.teams) or any(key.budget for key in config.keys)
    if budgets:
        unpriced = [
            model.name
            for model in config.models
            if any(router.price(model, target, target.model) is None for target in model.targets)
        ]
        if unpriced:
            warnings.append(
                "budgets are configured but these models have no price, so they cost nothing "
                "against a budget: " + ", ".join(unpriced)
            )
    return warnings


def _connect_redis(url: str) -> redis.Redis:
    """A client on `url`; redis-py (and the OpenTelemetry SDK it imports) loads only here."""
    import redis.asyncio as redis

    # A blocking pool waits for a free connection under load instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT_S
    )
    return redis.Redis.from_pool(pool)
