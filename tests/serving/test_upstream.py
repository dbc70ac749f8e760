"""The router's replica client (catalog.serving.upstream) against scripted HTTP servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Self

import pytest

from catalog.serving.upstream import (
    ConnectFailed,
    ConnectTimeout,
    Dropped,
    PoolTimeout,
    ReadTimeout,
    UpstreamClient,
)

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nx-model-version: 1.0.0\r\n\r\n{}"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """A loopback server running ``handler`` per connection; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.url = ""

    async def __aenter__(self) -> Self:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.writers.append(writer)
            try:
                await self.handler(reader, writer, self)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self.writers:
            writer.close()
        self._server.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
            0,
        )
        request = head + (await reader.readexactly(length) if length else b"")
        self.requests.append(request)
        return request


async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
    while True:
        await server.read_request(reader)
        writer.write(OK)
        await writer.drain()


def client(**overrides: Any) -> UpstreamClient:
    return UpstreamClient(**({"connect_timeout": 1.0, "read_timeout": 1.0} | overrides))


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    """Runs a test on the plain asyncio loop and on uvloop (the one the router runs on)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run
    return asyncio.run


def test_requests_reuse_one_keep_alive_connection_and_carry_the_headers(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with Server(answer_each) as server:
            c = client()
            for _ in range(3):
                r = await c.request(server.url, "POST", "/v2/x/infer", [(b"x-request-id", b"r1")], b'{"a":1}')
                assert (r.status, r.body, r.header(b"x-model-version")) == (200, b"{}", "1.0.0")
                assert r.header(b"Content-Type") is None and r.header(b"content-type") == "application/json"
            assert server.connections == 1
            head = server.requests[0].decode()
            assert head.startswith("POST /v2/x/infer HTTP/1.1\r\n")
            assert f"host: {server.url.removeprefix('http://')}\r\n" in head
            assert "x-request-id: r1\r\n" in head and "content-length: 7\r\n" in head
            assert server.requests[0].endswith(b'\r\n\r\n{"a":1}')
            get = await c.request(server.url, "GET", "/v2/x", [])
            assert get.status == 200 and "content-length" not in server.requests[-1].decode()
            await c.aclose()

    run(main())


def test_a_path_prefix_in_the_replica_url_prefixes_every_target(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with Server(answer_each) as server:
            c = client()
            await c.request(server.url + "/serving/a", "GET", "/v2/x", [])
            assert server.requests[0].startswith(b"GET /serving/a/v2/x HTTP/1.1\r\n")
            await c.aclose()

    run(main())


def test_a_connection_the_replica_closed_while_idle_is_not_reused(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(OK)
        await writer.drain()

    async def main() -> None:
        async with Server(one_then_close) as server:
            c = client()
            await c.request(server.url, "GET", "/a", [])
            await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
            assert (await c.request(server.url, "GET", "/b", [])).status == 200
            assert server.connections == 2
            await c.aclose()

    run(main())


def test_bytes_arriving_on_an_idle_connection_retire_it(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-len")  # half of an answer to nothing
        await writer.drain()
        await answer_each(reader, writer, server)

    async def main() -> None:
        async with Server(chatty) as server:
            c = client()
            await c.request(server.url, "GET", "/a", [])
            await asyncio.sleep(0.1)
            assert (await c.request(server.url, "GET", "/b", [])).body == b"{}"
            assert server.connections == 2
            await c.aclose()

    run(main())


def test_idle_connections_expire_and_fresh_asks_for_a_new_one(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with Server(answer_each) as server:
            c = client(keepalive_expiry=0.05)
            await c.request(server.url, "GET", "/a", [])
            await asyncio.sleep(0.1)
            await c.request(server.url, "GET", "/b", [])
            assert server.connections == 2
            await c.request(server.url, "GET", "/c", [], fresh=True)
            assert server.connections == 3
            await asyncio.sleep(0.1)
            c.sweep()
            assert not c._origins  # every idle connection was closed, the replica forgotten
            await c.aclose()

    run(main())


def test_connection_closed_before_the_whole_response_is_dropped(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(OK[:-1])  # one byte of the body missing
        await writer.drain()

    async def main() -> None:
        async with Server(half) as server:
            c = client()
            with pytest.raises(Dropped, match="before the whole response"):
                await c.request(server.url, "GET", "/a", [])
            await c.aclose()

    run(main())


def test_garbage_instead_of_http_is_dropped(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def main() -> None:
        async with Server(garbage) as server:
            c = client()
            with pytest.raises(Dropped, match="malformed"):
                await c.request(server.url, "GET", "/a", [])
            await c.aclose()

    run(main())


@pytest.mark.slow
def test_read_timeout_counts_from_the_last_bytes_received(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        for i in range(0, len(OK), 8):  # the whole answer takes ~0.6 s, never 0.3 s without a byte
            writer.write(OK[i : i + 8])
            await writer.drain()
            await asyncio.sleep(0.06)
        await server.read_request(reader)
        await asyncio.sleep(5)  # and then silence

    async def main() -> None:
        async with Server(trickle) as server:
            c = client(read_timeout=0.3)
            assert (await c.request(server.url, "GET", "/a", [])).body == b"{}"
            started = asyncio.get_running_loop().time()
            with pytest.raises(ReadTimeout):
                await c.request(server.url, "GET", "/b", [])
            assert 0.25 < asyncio.get_running_loop().time() - started < 1.0
            await c.aclose()

    run(main())


def test_refused_and_slow_connections(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        c = client()
        with pytest.raises(ConnectFailed):
            await c.request(f"http://127.0.0.1:{port}", "GET", "/a", [])

        loop = asyncio.get_running_loop()

        async def never(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(10)

        loop.create_connection = never  # type: ignore[method-assign]
        c = client(connect_timeout=0.1)
        with pytest.raises(ConnectTimeout):
            await c.request("http://127.0.0.1:9", "GET", "/a", [])

    run(main())


def test_every_slot_busy_past_the_connect_timeout_is_a_pool_timeout(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        await asyncio.sleep(0.5)
        writer.write(OK)
        await writer.drain()

    async def main() -> None:
        async with Server(slow) as server:
            c = client(max_connections=1, connect_timeout=0.1)
            first = asyncio.create_task(c.request(server.url, "GET", "/a", []))
            await asyncio.sleep(0.05)
            with pytest.raises(PoolTimeout):
                await c.request(server.url, "GET", "/b", [])
            assert (await first).status == 200
            await c.aclose()

    run(main())


def test_chunked_eof_delimited_and_interim_responses(run: Callable[[Awaitable[Any]], Any]) -> None:
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end",
    ]

    async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        for answer in answers:
            await server.read_request(reader)
            writer.write(answer)
            await writer.drain()
        writer.close()

    async def main() -> None:
        async with Server(scripted) as server:
            c = client()
            bodies = [(await c.request(server.url, "GET", "/", [])).body for _ in answers]
            assert bodies == [b"{}", b"abcde", b"until the end"]
            assert server.connections == 1
            await c.aclose()

    run(main())


def test_headers_with_line_breaks_are_refused(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        c = client()
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            await c.request("http://127.0.0.1:9", "GET", "/", [(b"x-a", b"1\r\nx-b: 2")])

    run(main())
