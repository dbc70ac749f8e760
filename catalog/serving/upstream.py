"""The router's HTTP/1.1 client to its replicas: pooled keep-alive connections, parsed by httptools.

Why not httpx: ``httpx.AsyncClient`` spent 1.3-1.7 ms of CPU per small request here (its pool also
re-scans every connection per request), two thirds of the router's CPU. This client is an asyncio
``Protocol`` per connection with llhttp (through httptools, the parser uvicorn uses) reading the
responses; it costs about 0.1 ms per request (BENCHMARKS.md, "Serving"). It does only what the
router needs: one request at a time per connection, the whole body sent and the whole response
buffered, no redirects, cookies, proxies or content decoding.

Semantics, per request:

- **Pool**: at most ``max_connections`` requests are in flight at once; a request waiting longer
  than ``connect_timeout`` for its turn fails with ``PoolTimeout``. An idle keep-alive connection to
  the same replica is reused, newest first; one idle for ``keepalive_expiry`` seconds or more (set
  below the replica's own keep-alive timeout, uvicorn's 5 s), or that the replica closed, is not.
- **Connect**: refused, unreachable or a failed TLS handshake is ``ConnectFailed``; taking longer
  than ``connect_timeout`` is ``ConnectTimeout``.
- **Read**: waiting more than ``read_timeout`` seconds for the next bytes of the response (the first
  ones included) is ``ReadTimeout``, as httpx's read timeout; the connection is closed.
- **Dropped**: the connection closed, was reset or carried something that is not HTTP before the
  response was complete. The request may or may not have reached the replica; retrying is the
  caller's decision (``fresh=True`` asks for a new connection rather than an idle one).

Request heads are written from header pairs that an HTTP server already parsed (the router's
incoming request, through ASGI) and from the router's own values; a CR, LF or NUL in any of them is
refused (``ValueError``) rather than written.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

__all__ = [
    "ConnectFailed",
    "ConnectTimeout",
    "Dropped",
    "PoolTimeout",
    "ReadTimeout",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamResponse",
]

Headers = list[tuple[bytes, bytes]]


class UpstreamError(Exception):
    """A request to a replica that got no complete response."""


class ConnectFailed(UpstreamError):
    """The connection was refused, the host unreachable, or the TLS handshake failed."""


class ConnectTimeout(UpstreamError):
    """Connecting took longer than the connect timeout."""


class PoolTimeout(UpstreamError):
    """Every connection slot stayed busy for longer than the connect timeout."""


class ReadTimeout(UpstreamError):
    """The replica sent nothing for longer than the read timeout."""


class Dropped(UpstreamError):
    """The connection ended, or carried something that is not HTTP, before the response was complete."""


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Headers  # as received, names in the replica's case
    body: bytes

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lowercase), or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None


class _Origin:
    """One replica base URL: where to connect, what to send as Host, its idle connections."""

    __slots__ = ("host", "host_header", "idle", "label", "port", "prefix", "server_hostname", "ssl")

    def __init__(self, url: str, tls: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        secure = parts.scheme == "https"
        self.label = url
        self.host = parts.hostname
        self.port = parts.port or (443 if secure else 80)
        self.host_header = parts.netloc.encode("ascii")
        self.prefix = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=").encode("ascii")
        self.ssl = (tls or ssl.create_default_context()) if secure else None
        self.server_hostname = self.host if secure else None
        self.idle: collections.deque[_Connection] = collections.deque()  # oldest on the left


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, collects its response through the parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[UpstreamResponse] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0
        self._last_read = 0.0
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._headers_complete = False
        self.reusable = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection's: a stream transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.close()
            return
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(Dropped(f"the replica sent a malformed HTTP response: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_complete and self._ends_at_eof():  # RFC 9112 6.3: the body ran to the close
            self._finish()
            return
        reason = f": {exc}" if exc else ""
        self._fail(Dropped(f"the connection closed before the whole response arrived{reason}"))

    # -- httptools callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._body = []
        self._headers_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_complete = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:
            return  # an interim response (100 Continue, 103 Early Hints): the real one follows
        self._finish()

    # -- the exchange -------------------------------------------------------------------------------

    def _ends_at_eof(self) -> bool:
        names = {name.lower() for name, _ in self._headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self.reusable = not self.closed and self._parser.should_keep_alive()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        waiter.set_result(UpstreamResponse(self._parser.get_status_code(), self._headers, body))
        self._headers, self._body = [], []  # an idle connection holds no old response

    def _fail(self, error: UpstreamError) -> None:
        self.reusable = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def _check_read_timeout(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        quiet_until = self._last_read + self._read_timeout
        if self._loop.time() < quiet_until:  # bytes came meanwhile: wait from the last of them
            self._timer = self._loop.call_at(quiet_until, self._check_read_timeout)
            return
        self._fail(ReadTimeout(f"no response within {self._read_timeout:g} s"))

    async def exchange(self, data: bytes, read_timeout: float) -> UpstreamResponse:
        """Send a whole request, wait for the whole response."""
        assert self.transport is not None
        self.reusable = False
        waiter: asyncio.Future[UpstreamResponse] = self._loop.create_future()
        self._waiter = waiter
        self._read_timeout = read_timeout
        self._last_read = self._loop.time()
        self._timer = self._loop.call_at(self._last_read + read_timeout, self._check_read_timeout)
        try:
            self.transport.write(data)
            return await waiter
        finally:
            self._timer.cancel()
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


_UNSAFE = re.compile(rb"[\r\n\0]")


def _head(method: bytes, target: bytes, origin: _Origin, headers: Headers, length: int | None) -> bytes:
    """The request line and header block; names and values come from a parsed request or the router."""
    lines = [method, b" ", target, b" HTTP/1.1\r\nhost: ", origin.host_header, b"\r\n"]
    unsafe = _UNSAFE.search
    for name, value in headers:
        if unsafe(name) or unsafe(value):
            raise ValueError(f"request header {name!r} carries a CR, LF or NUL byte")
        lines += (name, b": ", value, b"\r\n")
    if length is not None:
        lines += (b"content-length: ", str(length).encode("ascii"), b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


class UpstreamClient:
    """Pooled HTTP/1.1 connections to replicas; see the module docstring for the semantics."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 512,
        keepalive_expiry: float = 4.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive_expiry = keepalive_expiry
        self._tls = tls
        self._slots = asyncio.Semaphore(max_connections)
        self._origins: dict[str, _Origin] = {}
        self._closed = False

    async def request(
        self,
        url: str,
        method: str,
        target: str,
        headers: Headers,
        body: bytes | None = None,
        *,
        fresh: bool = False,
    ) -> UpstreamResponse:
        """Send ``method`` ``target`` (a path below the base ``url``) to the replica at ``url``.

        ``headers`` must not hold Host or Content-Length (both are written here, the latter when
        there is a body). Raises an ``UpstreamError`` when no complete response arrived.
        """
        if self._closed:
            raise RuntimeError("the upstream client is closed")
        if method == "HEAD":
            raise ValueError("HEAD is not supported")  # a HEAD response's length would mislead the parser
        origin = self._origins.get(url)
        if origin is None:
            try:
                origin = _Origin(url, self._tls)
            except ValueError as e:  # UnicodeEncodeError included: a host name beyond ASCII
                raise ConnectFailed(f"cannot use the URL {url!r}: {e}") from None
            self._origins[url] = origin
        data = _head(method.encode("ascii"), origin.prefix + target.encode("ascii"), origin, headers,
                     None if body is None else len(body))  # fmt: skip
        if body:
            data += body
        if self._slots.locked():
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no free connection slot within {self.connect_timeout:g} s") from None
        else:
            await self._slots.acquire()
        try:
            connection = None if fresh else self._idle_connection(origin)
            if connection is None:
                connection = await self._connect(origin)
            try:
                response = await connection.exchange(data, self.read_timeout)
            except BaseException:  # cancelled or failed halfway: nobody knows what is left on it
                connection.close()
                raise
        finally:
            self._slots.release()
        if connection.reusable and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self._origins.setdefault(url, origin).idle.append(connection)  # sweep() may have dropped it
        else:
            connection.close()
        return response

    def _idle_connection(self, origin: _Origin) -> _Connection | None:
        idle = origin.idle
        if not idle:
            return None
        fresh_after = asyncio.get_running_loop().time() - self.keepalive_expiry
        while idle:
            connection = idle.pop()
            if connection.idle_since <= fresh_after:  # this one and every older one: expired
                connection.close()
                while idle:
                    idle.pop().close()
                return None
            transport = connection.transport  # set on connecting: every pooled connection has one
            if not connection.closed and transport is not None and not transport.is_closing():
                return connection
            connection.close()
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    origin.host,
                    origin.port,
                    ssl=origin.ssl,
                    server_hostname=origin.server_hostname,
                )
        except TimeoutError:
            raise ConnectTimeout(f"connecting took over {self.connect_timeout:g} s") from None
        except OSError as e:  # refused, unreachable, unresolvable, TLS (ssl.SSLError is an OSError)
            raise ConnectFailed(e.strerror or str(e) or type(e).__name__) from None
        return connection

    def sweep(self) -> None:
        """Close the connections idle for ``keepalive_expiry`` or more, and forget replicas with none
        left (those a reloaded table dropped); run now and then."""
        fresh_after = asyncio.get_running_loop().time() - self.keepalive_expiry
        for url, origin in list(self._origins.items()):
            idle = origin.idle
            while idle and (idle[0].closed or idle[0].idle_since <= fresh_after):
                idle.popleft().close()
            if not idle:
                del self._origins[url]

    async def aclose(self) -> None:
        """Close every idle connection; requests still in flight close theirs when they end."""
        self._closed = True
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()
