"""A gateway behind an outbound proxy (proxy.py on loopback, asking for credentials): provider
calls, budget webhooks and OIDC key sets go through the proxy the environment names; the
built-in simulator, which runs inside the gateway, never does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from aiohttp import web

from lockgate.alerts import AlertSender
from lockgate.auth.oidc import OidcVerifier
from lockgate.auth.oidc.jwks import IssuerKeys
from lockgate.config.access import AlertConfig
from lockgate.config.models import OidcIssuerConfig
from lockgate.limits.budgets import Crossing
from lockgate.simulate.server import RunningSimulator
from lockgate.transport.proxies import Proxies
from tests.auth.issuer import AUDIENCE, Issuer
from tests.conftest import config_from_yaml, free_port, running_gateway
from tests.proxy import RunningProxy

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def use_proxy_environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Exactly these proxy variables, whatever the machine running the tests has set."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def direct_client(url: str) -> openai.AsyncOpenAI:
    """The SDK reads proxy variables too: this client reaches the gateway directly."""
    http_client = openai.DefaultAsyncHttpxClient(trust_env=False)
    return openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="none", max_retries=0, http_client=http_client
    )


def two_providers(simulator: RunningSimulator) -> str:
    return f"""
providers:
  - {{name: up, type: openai, base_url: "{simulator.base_url}", api_key: sk-test}}
  - {{name: demo, type: simulator}}
models:
  - {{name: chat, targets: [{{provider: up, model: sim-small}}]}}
  - {{name: demo-chat, targets: [{{provider: demo, model: sim-small}}]}}
"""


async def test_provider_calls_go_through_the_proxy(
    http_proxy: RunningProxy, simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_proxy_environment(monkeypatch, HTTP_PROXY=http_proxy.url())
    async with running_gateway(config_from_yaml(two_providers(simulator))) as url:
        client = direct_client(url)
        reply = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "through the proxy"}]
        )
        assert (reply.choices[0].message.content or "").startswith("Simulated reply to: through")
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "streamed"}], stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        assert text.startswith("Simulated reply to: streamed")
    host = simulator.root_url.removeprefix("http://")
    assert await http_proxy.logged(f"POST {host}/v1/chat/completions")


async def test_a_proxy_that_is_down_fails_proxied_providers_only(
    simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_proxy_environment(monkeypatch, HTTP_PROXY=f"http://127.0.0.1:{free_port()}")
    async with running_gateway(config_from_yaml(two_providers(simulator))) as url:
        client = direct_client(url)
        with pytest.raises(openai.APIStatusError) as raised:
            await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hello"}]
            )
        # The in-process simulator is reached directly, proxy or not.
        demo = await client.chat.completions.create(
            model="demo-chat", messages=[{"role": "user", "content": "hello"}]
        )
    assert raised.value.status_code == 502
    assert raised.value.body == {
        "message": "Could not connect to the proxy for provider 'up'",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_unavailable",
    }
    assert (demo.choices[0].message.content or "").startswith("Simulated reply to: hello")


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A webhook receiver on loopback: its URL and the JSON bodies it got."""
    received: list[dict[str, object]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_budget_webhooks_go_through_the_proxy(
    http_proxy: RunningProxy, hook: tuple[str, list[dict[str, object]]]
) -> None:
    url, received = hook
    proxies = Proxies({"HTTP_PROXY": http_proxy.url()})
    async with aiohttp.ClientSession() as session:
        sender = AlertSender([AlertConfig.model_validate({"url": url})], lambda: session, proxies)
        sender.budget_crossed(Crossing("team:ml", "team 'ml'", 0.5, 5_000_000, 10_000_000, "m"))
        await sender.close()
    assert [alert["scope"] for alert in received] == ["team:ml"]
    assert await http_proxy.logged(f"POST {url.removeprefix('http://')}")


async def test_oidc_key_sets_are_fetched_through_the_proxy(http_proxy: RunningProxy) -> None:
    issuer = await Issuer().start()
    config = OidcIssuerConfig.model_validate({"issuer": issuer.url, "audience": AUDIENCE})
    proxies = Proxies({"HTTP_PROXY": http_proxy.url()})
    try:
        async with aiohttp.ClientSession() as session:
            verifier = OidcVerifier([config], session, proxies=proxies)
            identity = await verifier.verify(issuer.mint(key=issuer.rsa))
            await verifier.close()
    finally:
        await issuer.close()
    assert identity.subject
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)
    # proxy.py logs a connection's first request; the key set followed on the same connection.
    discovery = f"GET {issuer.url.removeprefix('http://')}/.well-known/openid-configuration"
    assert await http_proxy.logged(discovery)


async def test_a_key_set_the_proxy_refuses_never_shows_the_proxy_password(
    http_proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    # https: aiohttp asks proxy.py for a tunnel, with a password it refuses (407).
    proxies = Proxies({"HTTPS_PROXY": http_proxy.url("gateway:not-the-password")})
    async with aiohttp.ClientSession() as session:
        keys = IssuerKeys(
            "https://127.0.0.1:9",
            session,
            cache_s=60,
            min_refetch_s=0,
            timeout_s=5,
            proxies=proxies,
        )
        await keys.refresh()
        await keys.close()
    assert keys.status()["last_error"] == "ClientHttpProxyError: HTTP 407"  # as /admin/oidc shows
    assert "not-the-password" not in caplog.text
