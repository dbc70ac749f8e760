"""Run a router under uvicorn on one listening socket, with a graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from catalog.errors import UsageError
from catalog.serving.router import Router

__all__ = ["serve"]


class _Server(uvicorn.Server):
    """uvicorn's server, stopping gracefully on SIGTERM/SIGINT and then exiting normally (status 0)
    rather than re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def _url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    router: Router,
    host: str,
    port: int,
    on_listening: Callable[[str], None] = lambda url: None,
    graceful_seconds: float = 10.0,
    **uvicorn_options: Any,
) -> None:
    """Serve ``router`` until SIGTERM or SIGINT; ``on_listening(url)`` once it accepts connections.

    On a signal the router stops accepting, lets requests in flight finish (for at most
    ``graceful_seconds``), closes its connections and the assignment log, and returns.
    """
    sock = _bind(host, port)
    config = uvicorn.Config(
        router.app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=graceful_seconds,
        **uvicorn_options,
    )
    server = _Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            on_listening(_url_of(sock))
        await task

    try:
        asyncio.run(main())
    finally:
        router.close()
        sock.close()
