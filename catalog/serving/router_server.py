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
    on_listening: Callable[[str, str | None], None] | None = None,
    graceful_seconds: float = 10.0,
    grpc_port: int | None = None,
) -> list[int]:
    """Serve ``router`` until SIGTERM or SIGINT, and its gRPC side on ``grpc_port`` when given (0:
    a free port); ``on_listening(url, grpc address or None)`` once it accepts connections.

    On a signal the router stops accepting, lets requests in flight finish (for at most
    ``graceful_seconds``, gRPC calls too), closes its connections and the assignment log, and
    returns the signals.
    """
    sock = listen.bind(host, port)
    address: str | None = None
    stops = router.on_shutdown  # run by the router's lifespan, before its logs close
    try:
        if grpc_port is not None:
            from catalog.serving.router_grpc import start_router_grpc

            server, service, bound = start_router_grpc(router, host, grpc_port)
            address = listen.grpc_address(host, bound)

            def stop_grpc() -> None:
                server.stop(graceful_seconds).wait()
                service.channels.close()

            stops.append(stop_grpc)
        announce = (lambda url: on_listening(url, address)) if on_listening else None
        return listen.run(router.app, sock, lifespan="on", drain_seconds=graceful_seconds, on_listening=announce)
    finally:
        sock.close()
        for stop in stops:  # again, should the lifespan not have run (stopping twice is harmless)
            stop()
        router.close()
