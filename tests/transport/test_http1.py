"""The upstream client against scripted HTTP servers on loopback: keep-alive, framing, limits,
failures and TLS, each as the wire shows them."""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
import zlib
from pathlib import Path

import pytest

from lockgate.errors import UpstreamServerError, UpstreamTimeout, UpstreamUnavailable
from lockgate.transport import http1, pool
from lockgate.transport.client import UpstreamClient
from lockgate.transport.http1 import MAX_HEAD_BYTES
from tests.transport.wire import OK, Upstream, answering, certificate, post, serving


async def test_keep_alive_connection_is_reused(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await upstream.read_request(reader)
            writer.write(OK)

    upstream = await serving(handler)
    for _ in range(3):
        response = await client.send(post(upstream.url()), "sim", 5)
        assert (response.status, response.body) == (200, b'{"ok":true}')
    assert upstream.connections == 1
    assert upstream.heads[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{upstream.port}\r\n".encode() in upstream.heads[0]
    await upstream.stop()


async def test_a_connection_the_server_closed_is_not_reused(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(OK)  # keep-alive by default, but the server hangs up once it answered
        await writer.drain()

    upstream = await serving(handler)
    assert (await client.send(post(upstream.url()), "sim", 5)).status == 200
    await asyncio.wait_for(upstream.closed.wait(), 5)
    await asyncio.sleep(0.05)  # the FIN reaches the idle connection
    assert (await client.send(post(upstream.url()), "sim", 5)).status == 200
    assert upstream.connections == 2
    await upstream.stop()


async def test_body_ended_by_closing_the_connection(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{"whole":')
        await writer.drain()
        writer.write(b'"answer"}')

    upstream = await serving(handler)
    response = await client.send(post(upstream.url()), "sim", 5)
    assert response.body == b'{"whole":"answer"}'
    await upstream.stop()


async def test_gzip_answer_is_decoded(client: UpstreamClient) -> None:
    body = gzip.compress(b'{"packed": "' + b"x" * 5000 + b'"}')

    upstream = await answering(
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(body)
        + body
    )
    response = await client.send(post(upstream.url()), "sim", 5)
    assert response.body == b'{"packed": "' + b"x" * 5000 + b'"}'
    await upstream.stop()


async def test_interim_answer_is_skipped_and_headers_are_lower_case(
    client: UpstreamClient,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nX-Dup: a\r\nX-Dup: b\r\n"
            b"Content-Length: 2\r\n\r\n{}"
        )

    upstream = await serving(handler)
    response = await client.send(post(upstream.url()), "sim", 5)
    assert response.status == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-dup"] == "a, b"
    await upstream.stop()


async def test_stream_chunks_arrive_as_sent(client: UpstreamClient) -> None:
    go_on = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await go_on.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

    upstream = await serving(handler)
    stream = await client.open_stream(post(upstream.url()), "sim", 5)
    assert stream.status == 200
    assert await stream.next_chunk() == b"first"  # before the rest exists
    go_on.set()
    assert await stream.next_chunk() == b"second"
    assert await stream.next_chunk() == b""
    stream.close()
    await upstream.stop()


async def test_stream_idle_for_too_long_is_a_timeout(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n")
        await reader.read()  # silent until the client hangs up

    upstream = await serving(handler)
    stream = await client.open_stream(post(upstream.url()), "sim", 0.2)
    assert await stream.next_chunk() == b"hi"
    with pytest.raises(UpstreamTimeout, match=r"did not answer within 0\.2s"):
        await stream.next_chunk()
    stream.close()
    await asyncio.wait_for(upstream.closed.wait(), 5)  # an unfinished stream is dropped
    await upstream.stop()


async def test_stream_head_waits_no_longer_than_the_idle_timeout(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        await reader.read()  # never answers

    upstream = await serving(handler)
    with pytest.raises(UpstreamTimeout):
        await asyncio.wait_for(client.open_stream(post(upstream.url()), "sim", 0.2), 5)
    await asyncio.wait_for(upstream.closed.wait(), 5)
    await upstream.stop()


async def test_truncated_body_is_reported(client: UpstreamClient) -> None:
    upstream = await answering(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"cut')
    with pytest.raises(UpstreamUnavailable, match="closed the connection before answering"):
        await client.send(post(upstream.url()), "sim", 5)
    await upstream.stop()


async def test_oversized_head_is_an_invalid_answer(client: UpstreamClient) -> None:
    fillers = b"".join(
        b"x-filler-%d: %s\r\n" % (n, b"y" * 1000) for n in range(MAX_HEAD_BYTES // 1000 + 1)
    )
    upstream = await answering(b"HTTP/1.1 200 OK\r\n" + fillers + b"content-length: 2\r\n\r\n{}")
    with pytest.raises(UpstreamServerError, match="invalid HTTP answer") as info:
        await client.send(post(upstream.url()), "sim", 5)
    assert info.value.status == 502
    await upstream.stop()


async def test_garbage_answer_is_an_invalid_answer(client: UpstreamClient) -> None:
    upstream = await answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    with pytest.raises(UpstreamServerError, match="sent an invalid HTTP answer"):
        await client.send(post(upstream.url()), "sim", 5)
    await upstream.stop()


async def test_header_with_a_line_break_is_never_sent(client: UpstreamClient) -> None:
    upstream = await answering(OK)
    injected = {"x-tenant": "a\r\nx-admin: yes"}
    with pytest.raises(UpstreamServerError, match="header 'x-tenant' is not one line") as info:
        await client.send(post(upstream.url(), injected), "sim", 5)
    assert "x-admin" not in info.value.message
    assert upstream.connections == 0
    await upstream.stop()


async def test_url_credentials_signed_host_and_default_port(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await upstream.read_request(reader)
            writer.write(OK)

    upstream = await serving(handler)
    url = f"http://svc%40corp:p%3Ass@127.0.0.1:{upstream.port}/v1/embeddings?api-version=1"
    await client.send(post(url), "sim", 5)
    assert upstream.heads[0].startswith(b"POST /v1/embeddings?api-version=1 HTTP/1.1\r\n")
    assert b"Authorization: Basic c3ZjQGNvcnA6cDpzcw==\r\n" in upstream.heads[0]  # svc@corp:p:ss
    signed = {"host": "bedrock.example", "authorization": "AWS4-HMAC-SHA256 sig"}
    await client.send(post(url, signed), "sim", 5)
    # The request's own headers replace the URL's (in any spelling: one of each is sent).
    assert upstream.heads[1].lower().count(b"host: ") == 1
    assert b"host: bedrock.example\r\n" in upstream.heads[1]
    assert upstream.heads[1].lower().count(b"authorization: ") == 1
    await upstream.stop()


async def test_cancelled_request_drops_its_connection(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        await reader.read()  # until the client hangs up

    upstream = await serving(handler)
    task = asyncio.create_task(client.send(post(upstream.url()), "sim", 30))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(upstream.closed.wait(), 2)
    await upstream.stop()


async def test_slow_reader_pauses_the_provider(client: UpstreamClient) -> None:
    size = 32 * 1024 * 1024
    backlog: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"z" * size)
        await asyncio.sleep(0.5)
        backlog.append(writer.transport.get_write_buffer_size())
        await writer.drain()

    upstream = await serving(handler)
    stream = await client.open_stream(post(upstream.url()), "sim", 5)
    await asyncio.sleep(1)  # not reading: the gateway must stop taking bytes
    assert backlog
    assert backlog[0] > size // 2
    received = 0
    while chunk := await stream.next_chunk():
        received += len(chunk)
    assert received == size
    stream.close()
    await upstream.stop()


async def test_bytes_after_the_answer_are_not_part_of_it(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(
            OK + b"HTTP/1.1 503 Busy\r\ncontent-type: text/html\r\ncontent-length: 6\r\n\r\n<html>"
        )
        await reader.read()

    upstream = await serving(handler)
    response = await client.send(post(upstream.url()), "sim", 5)
    assert (response.status, response.body) == (200, b'{"ok":true}')
    assert response.headers["content-type"] == "application/json"
    await asyncio.wait_for(upstream.closed.wait(), 5)  # that connection is not trusted again
    await upstream.stop()


async def test_trailers_do_not_change_the_headers(client: UpstreamClient) -> None:
    upstream = await answering(
        b"HTTP/1.1 429 Slow down\r\nretry-after: 1\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\nretry-after: 3600\r\n\r\n"
    )
    response = await client.send(post(upstream.url()), "sim", 5)
    assert (response.status, response.headers["retry-after"], response.body) == (429, "1", b"{}")
    await upstream.stop()


async def test_an_endless_header_line_is_cut_off_early(client: UpstreamClient) -> None:
    sent = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nx-endless: ")
        for _ in range(1024):  # up to 64 MiB, in 64 KiB writes
            writer.write(b"y" * 65536)
            await writer.drain()
            sent += 65536

    upstream = await serving(handler)
    with pytest.raises(UpstreamServerError, match="invalid HTTP answer"):
        await client.send(post(upstream.url()), "sim", 30)
    await asyncio.wait_for(upstream.closed.wait(), 5)
    assert sent < 8 * 1024 * 1024  # refused after about the limit, not after the whole line
    await upstream.stop()


async def test_a_compressed_answer_that_unpacks_too_far_is_refused(client: UpstreamClient) -> None:
    bomb = gzip.compress(b"0" * (http1.MAX_DECODED_PER_READ + 1024 * 1024), compresslevel=9)

    upstream = await answering(
        b"HTTP/1.1 500 Oops\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(bomb)
        + bomb
    )
    with pytest.raises(UpstreamServerError, match="invalid HTTP answer"):
        await client.send(post(upstream.url()), "sim", 5)
    await upstream.stop()


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [
        ("gzip", gzip.compress(b'{"first":') + gzip.compress(b'"second"}')),
        ("deflate", zlib.compress(b'{"first":"second"}')),
        ("deflate", zlib.compress(b'{"first":"second"}')[2:-4]),  # raw, as some servers send
    ],
    ids=["gzip of two members", "deflate", "raw deflate"],
)
async def test_compressed_answers_of_every_kind(
    client: UpstreamClient, encoding: str, packed: bytes
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        head = f"HTTP/1.1 200 OK\r\ncontent-encoding: {encoding}\r\ncontent-length: {len(packed)}"
        writer.write(head.encode() + b"\r\n\r\n" + packed)

    upstream = await serving(handler)
    response = await client.send(post(upstream.url()), "sim", 5)
    assert response.body == b'{"first":"second"}'
    await upstream.stop()


async def test_chunked_is_recognised_in_any_case(client: UpstreamClient) -> None:
    upstream = await answering(
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n9\r\n{"choices'
    )
    with pytest.raises(UpstreamUnavailable, match="before answering completely"):
        await client.send(post(upstream.url()), "sim", 5)
    await upstream.stop()


async def test_idle_connections_are_closed_after_the_keepalive(
    client: UpstreamClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "KEEPALIVE_S", 0.2)
    open_now = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now
        open_now += 1
        try:
            while True:
                await upstream.read_request(reader)
                await asyncio.sleep(0.05)
                writer.write(OK)
        finally:
            open_now -= 1

    upstream = await serving(handler)
    await asyncio.gather(*(client.send(post(upstream.url()), "sim", 5) for _ in range(5)))
    assert upstream.connections == 5
    for _ in range(8):  # one at a time: only the newest idle connection is taken
        await client.send(post(upstream.url()), "sim", 5)
    await asyncio.sleep(1)
    assert open_now == 0
    await upstream.stop()


@pytest.mark.parametrize(
    ("url", "headers", "message"),
    [
        ("http://[::1/v1/chat", {}, "the URL is malformed"),
        ("http://api..example.com/v1", {}, "empty label"),
        ("http://straße.example/v1", {}, "punycode"),
        ("http://127.0.0.1:0/v1", {}, "port"),
        ("ftp://127.0.0.1/v1", {}, "unsupported URL scheme"),
        ("http://127.0.0.1:9/v1", {"": "x"}, "header name is empty"),
        ("http://127.0.0.1:9/v1", {"x-a": "\ud800"}, "cannot be encoded"),
        ("http://127.0.0.1:9/v1", {"x-a": "a\x00b"}, "not one line"),
    ],
)
async def test_what_cannot_be_sent_is_a_clear_gateway_error(
    client: UpstreamClient, url: str, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(UpstreamServerError, match=message) as info:
        await client.send(post(url, headers or None), "sim", 5)
    assert info.value.code == "upstream_bad_config"
    assert info.value.status == 502


async def test_failed_requests_leave_no_cyclic_garbage(client: UpstreamClient) -> None:
    answers = iter([b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{", b"SSH-2.0\r\n\r\n", b""])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        answer = next(answers)
        if answer:
            writer.write(answer)
        else:
            await reader.read()  # says nothing: the client times out

    upstream = await serving(handler)
    gc.collect()
    gc.disable()
    try:
        for timeout in (5, 5, 0.2):
            with pytest.raises((UpstreamUnavailable, UpstreamServerError, UpstreamTimeout)):
                await client.send(post(upstream.url()), "sim", timeout)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith("lockgate")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert ours == []
    await upstream.stop()


async def test_refused_connection(client: UpstreamClient) -> None:
    upstream = await serving(lambda reader, writer: asyncio.sleep(0))
    url = upstream.url()
    await upstream.stop()
    await asyncio.sleep(0.05)
    with pytest.raises(UpstreamUnavailable, match="Could not connect to provider 'sim'"):
        await client.send(post(url), "sim", 5)


async def test_tls_checks_the_certificate_against_the_trust_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await upstream.read_request(reader)
        writer.write(OK)
        await writer.drain()

    upstream = Upstream(handler)
    await upstream.start(tls)
    untrusting = UpstreamClient(connect_timeout_s=2)
    with pytest.raises(UpstreamUnavailable, match="TLS with provider 'sim' failed"):
        await untrusting.send(post(upstream.url("https")), "sim", 5)
    await untrusting.close()

    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # how an operator adds a private CA
    trusting = UpstreamClient(connect_timeout_s=2)
    response = await trusting.send(post(upstream.url("https")), "sim", 5)
    assert response.body == b'{"ok":true}'
    await trusting.close()
    await upstream.stop()
