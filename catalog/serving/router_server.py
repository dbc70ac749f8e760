"""Run a router under uvicorn on one listening socket, with a graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

from collections.abc import Callable

from catalog.serving import listen
from catalog.serving.router import Router

__all__ = ["serve"]


def serve(
    router: Router,
    host: str,
    port: int,
    on_listening: Callable[[str], None] | None = None,
    graceful_seconds: float = 10.0,
) -> list[int]:
    """Serve ``router`` until SIGTERM or SIGINT; ``on_listening(url)`` once it accepts connections.

    On a signal the router stops accepting, lets requests in flight finish (for at most
    ``graceful_seconds``), closes its connections and the assignment log, and returns the signals.
    """
    sock = listen.bind(host, port)
    try:
        return listen.run(router.app, sock, lifespan="on", drain_seconds=graceful_seconds, on_listening=on_listening)
    finally:
        router.close()
