"""Outbound proxies from the environment: which origins use one, and requests through a real
proxy (proxy.py, asking for credentials) to http and https providers."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from lockgate.errors import UpstreamTimeout, UpstreamUnavailable
from lockgate.transport.client import UpstreamClient
from lockgate.transport.proxies import Proxies, ProxyConfigError, aiohttp_proxy
from tests.conftest import free_port
from tests.proxy import PASSWORD, RunningProxy
from tests.transport.wire import OK, Upstream, answering, certificate, post, serving


def test_each_scheme_takes_its_own_variable_then_all_proxy() -> None:
    proxies = Proxies({"HTTPS_PROXY": "http://secure:3128", "ALL_PROXY": "http://any:8080"})
    https = proxies.for_origin("https", "api.openai.com", 443)
    http = proxies.for_origin("http", "ollama.internal", 11434)
    assert https is not None
    assert (https.address, https.variable) == ("secure:3128", "HTTPS_PROXY")
    assert http is not None
    assert (http.address, http.variable) == ("any:8080", "ALL_PROXY")


def test_lower_case_names_win_and_a_bare_host_is_an_http_proxy() -> None:
    proxies = Proxies({"https_proxy": "lower:1", "HTTPS_PROXY": "http://upper:2"})
    proxy = proxies.for_origin("https", "api.openai.com", 443)
    assert proxy is not None
    assert (proxy.address, proxy.variable) == ("lower:1", "https_proxy")
    default_port = Proxies({"HTTP_PROXY": "http://proxy.corp"}).for_origin("http", "a.b", 80)
    assert default_port is not None
    assert default_port.port == 80


def test_without_proxy_variables_nothing_is_proxied() -> None:
    proxies = Proxies({"NO_PROXY": "localhost", "PATH": "/usr/bin"})
    assert not proxies.configured
    assert proxies.for_origin("https", "api.openai.com", 443) is None
    assert proxies.describe() is None


@pytest.mark.parametrize(
    ("no_proxy", "direct", "proxied"),
    [
        ("internal.corp", ["internal.corp", "llm.internal.corp", "LLM.Internal.Corp."], ["corp"]),
        (".internal.corp", ["internal.corp", "a.internal.corp"], ["xinternal.corp"]),
        ("10.0.0.0/8, 192.168.1.7", ["10.1.2.3", "192.168.1.7"], ["192.168.1.8", "11.0.0.1"]),
        ("fd00::/8,[::1]", ["fd00::5", "::1"], ["fe80::1"]),
        ("vllm.internal:8000", ["vllm.internal:8000"], ["vllm.internal:8001"]),
        ("localhost,127.0.0.1", ["localhost", "127.0.0.1"], ["127.0.0.2", "api.openai.com"]),
        ("*", ["api.openai.com", "10.0.0.1"], []),
        (" , ,", [], ["api.openai.com"]),
        # As curl: spaces separate too, a trailing dot changes nothing, `*` is special alone.
        ("localhost 10.0.0.1", ["localhost", "10.0.0.1"], ["api.openai.com"]),
        ("example.com.", ["example.com", "api.example.com"], ["example.org"]),
        ("localhost,*", ["localhost"], ["api.openai.com"]),
    ],
)
def test_no_proxy_entries(no_proxy: str, direct: list[str], proxied: list[str]) -> None:
    proxies = Proxies({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy})

    def reached_directly(where: str) -> bool:
        host, _, port = where.rpartition(":") if where.count(":") == 1 else (where, "", "")
        return proxies.for_origin("https", host, int(port or 443)) is None

    assert [where for where in direct if not reached_directly(where)] == []
    assert [where for where in proxied if reached_directly(where)] == []


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HTTPS_PROXY": "socks5://u:pw@p:1080"}, "HTTPS_PROXY (a socks5:// proxy): only http://"),
        ({"all_proxy": "https://u:pw@p:443"}, "all_proxy (a https:// proxy): only http://"),
        ({"HTTP_PROXY": "http://u:pw@p:port"}, "HTTP_PROXY: the proxy's port is not a number"),
        ({"HTTP_PROXY": "http://u:pw@:3128"}, "HTTP_PROXY: the proxy URL has no usable host"),
        # A `/`, `?` or `#` left in a password would make the rest of it the host.
        ({"HTTPS_PROXY": "http://u:pw2024/x@p:3128"}, "HTTPS_PROXY: the proxy URL has more than"),
        ({"HTTPS_PROXY": "http://u:pw8080#x@p:3128"}, "HTTPS_PROXY: the proxy URL has more than"),
        ({"HTTPS_PROXY": "http://u:pw%E2%82%AC@p:3128"}, "HTTPS_PROXY: the proxy's user and"),
    ],
)
def test_an_unusable_proxy_variable_is_named_without_its_password(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ProxyConfigError) as raised:
        Proxies(environ)
    assert str(raised.value).startswith(message)
    assert "pw" not in str(raised.value)


def test_the_report_names_proxies_and_exceptions_but_no_credentials() -> None:
    proxies = Proxies(
        {"HTTPS_PROXY": "http://me:pw@proxy.corp:3128", "NO_PROXY": "localhost, .internal"}
    )
    assert proxies.describe() == (
        "outbound proxy: proxy.corp:3128 for https (HTTPS_PROXY); "
        "reached directly: localhost,.internal"
    )


def test_the_url_of_a_webhook_or_key_set_finds_its_proxy() -> None:
    proxies = Proxies({"HTTPS_PROXY": "http://me:pw@proxy:3128", "NO_PROXY": "gitlab.internal"})
    proxy = proxies.for_url("https://hooks.slack.com/services/T0/B0/x")
    assert proxy is not None
    assert proxy.url == "http://proxy:3128"
    assert proxy.credentials == ("me", "pw")
    assert proxy.authorization == "Basic bWU6cHc="
    assert proxies.for_url("https://gitlab.internal/oauth/discovery/keys") is None
    assert proxies.for_url("http://hooks.example.com/") is None  # no HTTP_PROXY


def test_aiohttp_is_given_the_proxy_with_its_credentials_encoded() -> None:
    proxies = Proxies({"HTTPS_PROXY": "http://svc%40corp:p%3Aw%2Frd@proxy:3128"})
    proxy = proxies.for_url("https://gitlab.com/oauth/discovery/keys")
    assert proxy is not None
    assert proxy.credentials == ("svc@corp", "p:w/rd")
    assert aiohttp_proxy(proxies, "https://gitlab.com/oauth/discovery/keys") == {
        "proxy": "http://svc%40corp:p%3Aw%2Frd@proxy:3128"
    }
    assert aiohttp_proxy(proxies, "http://hooks.internal/") == {}
    assert aiohttp_proxy(None, "https://gitlab.com/") == {}


async def echo_upstream(tls: ssl.SSLContext | None = None) -> Upstream:
    """Answers every request on a connection with OK, keeping the heads."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await upstream.read_request(reader)
            writer.write(OK)
            await writer.drain()

    upstream = Upstream(handler)
    await upstream.start(tls)
    return upstream


def trusted_tls(directory: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context for 127.0.0.1 whose certificate clients trust (via SSL_CERT_FILE)."""
    cert_file, key_file = certificate(directory)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    return tls


def proxied_client(environ: dict[str, str]) -> UpstreamClient:
    return UpstreamClient(connect_timeout_s=5, proxies=Proxies(environ))


async def test_http_provider_through_the_proxy(http_proxy: RunningProxy) -> None:
    upstream = await echo_upstream()
    client = proxied_client({"HTTP_PROXY": http_proxy.url()})
    try:
        for _ in range(2):
            response = await client.send(post(upstream.url()), "sim", 10)
            assert (response.status, response.body) == (200, b'{"ok":true}')
    finally:
        await client.close()
        await upstream.stop()
    # The proxy passed the request on (with the credentials it asked for, now removed).
    assert await http_proxy.logged(f"POST 127.0.0.1:{upstream.port}/v1/chat/completions")
    head = upstream.heads[0].lower()
    assert head.startswith(b"post /v1/chat/completions http/1.1\r\n")
    assert b"proxy-authorization" not in head


async def test_https_provider_through_a_tunnel(
    http_proxy: RunningProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await echo_upstream(trusted_tls(tmp_path, monkeypatch))
    client = proxied_client({"HTTPS_PROXY": http_proxy.url(), "HTTP_PROXY": ""})
    try:
        for _ in range(3):
            response = await client.send(post(upstream.url("https")), "sim", 10)
            assert (response.status, response.body) == (200, b'{"ok":true}')
    finally:
        await client.close()
        await upstream.stop()
    assert await http_proxy.logged(f"CONNECT 127.0.0.1:{upstream.port}")
    # One tunnel, kept alive, carried all three; TLS ran end to end inside it.
    assert upstream.connections == 1
    assert len(upstream.heads) == 3


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_wrong_proxy_credentials_are_a_clear_error(
    http_proxy: RunningProxy,
    scheme: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream = await echo_upstream(
        trusted_tls(tmp_path, monkeypatch) if scheme == "https" else None
    )
    variable = f"{scheme.upper()}_PROXY"
    client = proxied_client({variable: http_proxy.url("gateway:wrong-password")})
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.send(post(upstream.url(scheme)), "sim", 10)
    finally:
        await client.close()
        await upstream.stop()
    assert str(raised.value) == "The proxy refused the connection to provider 'sim' (HTTP 407)"
    assert upstream.connections == 0
    assert "wrong-password" not in caplog.text
    assert PASSWORD not in caplog.text


async def test_a_proxy_that_is_down_is_named_as_the_problem() -> None:
    upstream = await echo_upstream()
    client = proxied_client({"HTTP_PROXY": f"http://127.0.0.1:{free_port()}"})
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.send(post(upstream.url()), "sim", 10)
    finally:
        await client.close()
        await upstream.stop()
    assert str(raised.value) == "Could not connect to the proxy for provider 'sim'"


async def test_no_proxy_and_the_in_process_simulator_go_direct() -> None:
    upstream = await echo_upstream()
    down = f"http://127.0.0.1:{free_port()}"  # any proxied request would fail
    listed = proxied_client({"HTTP_PROXY": down, "NO_PROXY": "example.com,127.0.0.1"})
    registered = proxied_client({"HTTP_PROXY": down})
    registered.reach_directly(upstream.url(path="/v1"))
    try:
        for client in (listed, registered):
            response = await client.send(post(upstream.url()), "sim", 10)
            assert response.status == 200
    finally:
        for client in (listed, registered):
            await client.close()
        await upstream.stop()
    assert upstream.connections == 2


@pytest.mark.parametrize(
    ("answer", "reported"),
    [
        (b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 3\r\n\r\nbad", "HTTP 502"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "no HTTP answer"),
        (b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01", "no HTTP answer"),  # bytes before TLS began
        (b"HTTP/1.1 200 OK\r\nx: " + b"y" * 20_000, "no HTTP answer"),  # a head without end
        (b"", "no HTTP answer"),  # closed without a word
    ],
)
async def test_a_tunnel_the_proxy_does_not_open_is_refused(answer: bytes, reported: str) -> None:
    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connect_heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()

    connect_heads: list[bytes] = []
    fake = await serving(proxy)
    client = proxied_client({"HTTPS_PROXY": f"http://me:pw@127.0.0.1:{fake.port}"})
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.send(post("https://api.example.com/v1/chat/completions"), "sim", 10)
    finally:
        await client.close()
        await fake.stop()
    assert str(raised.value) == f"The proxy refused the connection to provider 'sim' ({reported})"
    assert connect_heads == [
        b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n"
        b"Proxy-Authorization: Basic bWU6cHc=\r\n\r\n"
    ]


async def test_a_proxy_that_never_answers_is_bounded_by_the_connect_timeout() -> None:
    fake = await serving(lambda reader, writer: reader.read())  # reads, never answers
    client = UpstreamClient(
        connect_timeout_s=0.3, proxies=Proxies({"HTTPS_PROXY": f"127.0.0.1:{fake.port}"})
    )
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(UpstreamTimeout):
            await client.send(post("https://api.example.com/v1/chat/completions"), "sim", 10)
    finally:
        await client.close()
        await fake.stop()
    assert asyncio.get_running_loop().time() - started < 2


async def test_a_407_from_a_provider_reached_directly_is_the_providers() -> None:
    upstream = await answering(b"HTTP/1.1 407 Odd\r\ncontent-length: 2\r\n\r\n{}")
    client = proxied_client({"HTTP_PROXY": "http://proxy.invalid:3128", "NO_PROXY": "127.0.0.1"})
    try:
        response = await client.send(post(upstream.url()), "sim", 10)
    finally:
        await client.close()
        await upstream.stop()
    assert (response.status, response.body) == (407, b"{}")


async def tunnel_relay(answer: bytes) -> Upstream:
    """A proxy that answers CONNECT with `answer`, then relays bytes both ways."""

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        host, port = head.split(b" ")[1].decode().rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(answer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    return await serving(relay)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200\r\n\r\n",  # no reason phrase
        b"HTTP/1.0 200 Connection established\n\n",  # lines ended by a bare LF
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_tunnels_proxies_open_in_other_words(
    answer: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await echo_upstream(trusted_tls(tmp_path, monkeypatch))
    relay = await tunnel_relay(answer)
    client = proxied_client({"HTTPS_PROXY": f"127.0.0.1:{relay.port}"})
    try:
        response = await client.send(post(upstream.url("https")), "sim", 10)
    finally:
        await client.close()
        await relay.stop()
        await upstream.stop()
    assert (response.status, response.body) == (200, b'{"ok":true}')
