"""The composition root: builds every service once from the config and wires them together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lockgate.api.anthropic import AnthropicEndpoints
from lockgate.api.health import HealthEndpoints
from lockgate.api.openai import OpenAIEndpoints
from lockgate.config.models import GatewayConfig
from lockgate.pipeline import Gateway
from lockgate.providers.base import ProviderAdapter
from lockgate.providers.registry import build_adapter
from lockgate.routing.health import HealthBook
from lockgate.routing.router import Router
from lockgate.simulate.server import RunningSimulator, start_simulator
from lockgate.simulate.settings import SimulatorSettings
from lockgate.transport.client import UpstreamClient

__all__ = ["Container"]

log = logging.getLogger("lockgate")


@dataclass
class Container:
    """Everything a running gateway holds, built from one `GatewayConfig`."""

    config: GatewayConfig
    client: UpstreamClient
    router: Router
    gateway: Gateway
    openai: OpenAIEndpoints
    anthropic: AnthropicEndpoints
    health: HealthEndpoints
    simulators: list[RunningSimulator] = field(default_factory=list)

    @classmethod
    async def start(cls, config: GatewayConfig) -> Container:
        client = UpstreamClient(config.routing.connect_timeout_s)
        await client.start()
        simulators: list[RunningSimulator] = []
        adapters: dict[str, ProviderAdapter] = {}
        try:
            for provider in config.providers:
                base_url = None
                if provider.type == "simulator":
                    simulator = await start_simulator(
                        SimulatorSettings(
                            latency_ms=provider.latency_ms, tokens_per_s=provider.tokens_per_s
                        )
                    )
                    simulators.append(simulator)
                    base_url = simulator.base_url
                adapters[provider.name] = build_adapter(provider, base_url)
        except BaseException:
            await _close(client, simulators)
            raise
        health = HealthBook(config.routing.cooldown)
        router = Router(config.models, adapters, health)
        gateway = Gateway(config, router, health, client)
        warnings = _warnings(config)
        for warning in warnings:
            log.warning("%s", warning)
        return cls(
            config=config,
            client=client,
            router=router,
            gateway=gateway,
            openai=OpenAIEndpoints(gateway, config.server.max_body_bytes, router.listed_models),
            anthropic=AnthropicEndpoints(gateway, config.server.max_body_bytes),
            health=HealthEndpoints(warnings, open_access=True, targets=gateway.target_health),
            simulators=simulators,
        )

    async def close(self) -> None:
        await _close(self.client, self.simulators)


async def _close(client: UpstreamClient, simulators: list[RunningSimulator]) -> None:
    await client.close()
    for simulator in simulators:
        await simulator.close()


def _warnings(config: GatewayConfig) -> list[str]:
    warnings = [
        "no API keys, teams or OIDC issuers are configured: the gateway is open to anyone "
        "who can reach it (fine on 127.0.0.1, not on a shared network)"
    ]
    if not config.models:
        warnings.append("no models are configured: every request will answer 404 model_not_found")
    if any(provider.type == "simulator" for provider in config.providers):
        names = ", ".join(p.name for p in config.providers if p.type == "simulator")
        warnings.append(
            f"provider {names} is the built-in simulator: its answers are made up, not from a model"
        )
    return warnings
