"""Lockgate's HTTP/1.1 server protocol (`api/protocol.py`), spoken to over raw sockets: framing,
pipelining, 100-continue, HEAD, bad requests, flow control, disconnects, and when connections
are closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import uvicorn

from lockgate.api.http import Receive, Scope, Send
from lockgate.api.protocol import GatewayHttpProtocol
from lockgate.simulate.server import RunningSimulator
from tests.api.conftest import AZURE_KEY, PROVIDER_KEY, cyclic_garbage, gateway_yaml
from tests.conftest import config_from_yaml, free_port, running_gateway

KEEP_ALIVE_S = 0.5
CHAT = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture(scope="module")
async def base(simulator: RunningSimulator) -> AsyncIterator[tuple[str, int]]:
    config = config_from_yaml(
        gateway_yaml(simulator, free_port()), SIM_KEY=PROVIDER_KEY, AZURE_KEY=AZURE_KEY
    )
    async with running_gateway(config, timeout_keep_alive=KEEP_ALIVE_S) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (the last of each name), body (de-chunked)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout=5)
        status_line, *lines = head.decode().split("\r\n")[:-2]
        headers = {}
        for line in lines:
            name, value = line.split(":", 1)
            headers[name.lower()] = value.strip()
        body = b""
        if head_only:
            pass
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while size := int((await self.reader.readuntil(b"\r\n"))[:-2], 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            assert await self.reader.readexactly(2) == b"\r\n"
        return int(status_line.split()[1]), headers, body

    async def closed(self) -> bool:
        """Whether the server closes the connection (within 5 s) without sending more."""
        return await asyncio.wait_for(self.reader.read(), timeout=5) == b""


@pytest.fixture
async def connection(base: tuple[str, int]) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection(*base)
    try:
        yield Connection(reader, writer)
    finally:
        writer.close()


def post(body: bytes, *extra: bytes) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + b"".join(extra)
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


async def test_pipelined_requests_are_answered_in_order(connection: Connection) -> None:
    await connection.send(
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-request-id: first\r\n\r\n"
        + post(CHAT, b"x-request-id: second\r\n")
        + b"GET /nowhere HTTP/1.1\r\nhost: x\r\nx-request-id: third\r\n\r\n"
    )
    answers = [await connection.response() for _ in range(3)]
    assert [(status, headers["x-request-id"]) for status, headers, _ in answers] == [
        (200, "first"),
        (200, "second"),
        (404, "third"),
    ]
    assert json.loads(answers[1][2])["choices"][0]["message"]["role"] == "assistant"


async def test_chunked_request_body(connection: Connection) -> None:
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(part), part) for part in (CHAT[:10], CHAT[10:]))
    await connection.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    status, _, body = await connection.response()
    assert status == 200, body
    assert json.loads(body)["object"] == "chat.completion"


async def test_a_body_larger_than_the_read_buffer_arrives_whole(connection: Connection) -> None:
    # Above 64 KiB of unread body, reading pauses until the app takes what is buffered.
    content = "word " * 40_000
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": content}]})
    await connection.send(post(body.encode()))
    status, _, answer = await connection.response()
    # The module's gateway allows 64 KiB: the whole body was read to learn it is too large.
    assert status == 413, answer


async def test_expect_100_continue(connection: Connection) -> None:
    await connection.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(CHAT)
    )
    interim = await asyncio.wait_for(connection.reader.readuntil(b"\r\n\r\n"), timeout=5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    await connection.send(CHAT)
    status, _, _ = await connection.response()
    assert status == 200


async def test_head_gets_headers_without_a_body(connection: Connection) -> None:
    await connection.send(b"HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    status, headers, _ = await connection.response(head_only=True)
    assert status == 405
    assert "x-request-id" in headers
    # No body bytes followed: the next response on the connection starts cleanly.
    await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    status, _, body = await connection.response()
    assert (status, json.loads(body)["status"]) == (200, "ok")


async def test_a_request_the_parser_rejects_gets_a_json_400_and_the_connection_closes(
    connection: Connection,
) -> None:
    await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n")
    status, headers, body = await connection.response()
    assert status == 400
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "invalid_http_request"
    assert error["message"].startswith("Invalid HTTP request: ")
    assert await connection.closed()


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /healthz HTTP/1.0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
    ],
    ids=["http-1.0", "connection-close", "upgrade"],
)
async def test_connections_that_cannot_be_reused_close_after_the_response(
    connection: Connection, request_head: bytes
) -> None:
    await connection.send(request_head)
    status, _, _ = await connection.response()
    assert status == 200
    assert await connection.closed()


async def test_requests_pipelined_before_an_upgrade_request_are_answered(
    connection: Connection,
) -> None:
    await connection.send(
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
        b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n"
    )
    assert [(await connection.response())[0] for _ in range(2)] == [200, 200]
    assert await connection.closed()


async def test_an_idle_connection_closes_after_the_keep_alive_timeout(
    connection: Connection,
) -> None:
    await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    assert (await connection.response())[0] == 200
    # Within the timeout, the connection serves again (and the timer starts over).
    await asyncio.sleep(KEEP_ALIVE_S / 2)
    await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    assert (await connection.response())[0] == 200
    started = asyncio.get_running_loop().time()
    assert await connection.closed()
    assert KEEP_ALIVE_S * 0.9 <= asyncio.get_running_loop().time() - started < KEEP_ALIVE_S * 4


async def test_a_request_head_not_finished_within_the_timeout_closes_the_connection(
    connection: Connection,
) -> None:
    await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # never finished
    assert await connection.closed()


async def test_a_slow_answer_outlives_the_keep_alive_timeout(
    base: tuple[str, int], connection: Connection
) -> None:
    # The simulator answers after 2.4 timeouts; the timer must not cut the request off.
    body = json.dumps(
        {"model": "sim/sim-small?latency_ms=1200", "messages": [{"role": "user", "content": "x"}]}
    )
    await connection.send(post(body.encode()))
    status, _, answer = await connection.response()
    assert status == 200, answer


async def test_a_pipelined_request_whose_body_comes_later_is_answered(
    connection: Connection,
) -> None:
    await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n" + post(CHAT)[: -len(CHAT)])
    assert (await connection.response())[0] == 200
    await asyncio.sleep(0.1)
    await connection.send(CHAT)
    status, _, body = await connection.response()
    assert status == 200, body


@pytest.mark.parametrize("split", [1, 2, 3])
async def test_a_head_whose_end_straddles_two_reads_is_not_too_large(
    connection: Connection, split: int
) -> None:
    # A small head, then a body larger than the head limit; the blank line ending the head is
    # cut between two writes (the server reads them apart: the test waits in between).
    request = post(b"x" * 70_000)
    head_end = request.index(b"\r\n\r\n") + 4
    await connection.send(request[: head_end - split])
    await asyncio.sleep(0.05)
    await connection.send(request[head_end - split :])
    status, _, body = await connection.response()
    assert status == 413, body  # over the module's max_body_bytes, not 431


async def test_the_body_of_a_request_answered_early_may_finish_arriving(
    connection: Connection,
) -> None:
    # 413 is answered from content-length at once; the client goes on uploading for longer
    # than the keep-alive timeout, then reads the answer and reuses the connection.
    size = 200_000
    await connection.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % size
    )
    for _ in range(size // 40_000):
        await asyncio.sleep(KEEP_ALIVE_S / 2)
        await connection.send(b"y" * 40_000)
    assert (await connection.response())[0] == 413
    await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    assert (await connection.response())[0] == 200


async def test_a_fragment_is_not_part_of_the_path(connection: Connection) -> None:
    await connection.send(b"GET /healthz#status HTTP/1.1\r\nhost: x\r\n\r\n")
    assert (await connection.response())[0] == 200


async def test_closed_connections_leave_no_cyclic_garbage(base: tuple[str, int]) -> None:
    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(*base)
        connection = Connection(reader, writer)
        await connection.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert (await connection.response())[0] == 200
        assert await connection.closed()
        writer.close()

    ours = await cyclic_garbage(one_connection, times=5)
    assert not ours, ours


# The cases below need an app that behaves as no Lockgate endpoint does: a tiny ASGI app
# served by uvicorn with the same protocol class.


@asynccontextmanager
async def serving(app: Callable[..., Awaitable[None]]) -> AsyncIterator[int]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="none", lifespan="off", log_level="warning",
        http=GatewayHttpProtocol, timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def test_a_stream_sent_without_pauses_waits_for_a_slow_reader() -> None:
    sent = 0

    async def endless_stream(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(1600):  # 100 MiB, never waiting for anything but `send`
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            sent += 65536
        await send({"type": "http.response.body", "body": b""})

    async with serving(endless_stream) as port:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")  # and never read
        await asyncio.sleep(0.3)
        assert 0 < sent < 16 * 2**20  # the app waits for the reader: memory stays bounded
        writer.close()


async def test_every_task_waiting_in_receive_learns_of_a_disconnect() -> None:
    seen: list[str] = []
    waiting = asyncio.Event()

    async def two_listeners(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the (empty) body

        async def listen() -> None:
            waiting.set()
            seen.append((await receive())["type"])

        await asyncio.wait_for(asyncio.gather(listen(), listen()), timeout=5)

    async with serving(two_listeners) as port:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await asyncio.wait_for(waiting.wait(), timeout=5)
        await asyncio.sleep(0.05)
        writer.close()
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.02)
    assert seen == ["http.disconnect", "http.disconnect"]


async def test_an_app_that_fails_before_answering_gets_a_500() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async with serving(failing) as port:
        connection = Connection(*await asyncio.open_connection("127.0.0.1", port))
        await connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        status, headers, body = await connection.response()
        assert (status, headers["connection"], body) == (500, "close", b"Internal Server Error")
        assert await connection.closed()
        connection.writer.close()


async def test_a_response_cut_short_by_the_app_does_not_look_complete() -> None:
    async def stops_mid_stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})

    async with serving(stops_mid_stream) as port:
        connection = Connection(*await asyncio.open_connection("127.0.0.1", port))
        await connection.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        received = await asyncio.wait_for(connection.reader.read(), timeout=5)  # to the close
        connection.writer.close()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b"\r\n\r\n4\r\npart\r\n")  # no final 0-length chunk
