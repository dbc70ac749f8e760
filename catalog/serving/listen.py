"""Listening sockets and a uvicorn server that drains on SIGTERM/SIGINT, shared by replica and router.

The socket is bound before uvicorn starts, so a port-0 request yields a real port before the first
line is printed, and a port in use is a ``UsageError`` rather than a traceback.

uvicorn runs on uvloop's event loop with httptools (llhttp) parsing requests, both declared
dependencies: against the plain asyncio loop and the pure-Python h11 parser they cut the CPU time
of a small request by about a quarter, in the replica and in the router alike (BENCHMARKS.md,
"Serving"). Where uvloop cannot be installed (Windows) the plain asyncio loop serves.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import uvicorn

from catalog.errors import UsageError

if TYPE_CHECKING:
    import grpc

__all__ = ["bind", "grpc_address", "run", "start_grpc_server", "url_of"]

_HANDLED = (signal.SIGINT, signal.SIGTERM)


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # a platform uvloop does not support
        return "asyncio"
    return "uvloop"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0 picks a free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
        # proto must be IPPROTO_TCP, as asyncio's own binding does: asyncio sets TCP_NODELAY on
        # accepted sockets only then, and without it small responses wait ~40 ms for delayed ACKs
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        return sock
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e


def url_of(sock: socket.socket) -> str:
    """The http URL a bound socket answers on."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, announcing itself once accepting and exiting plainly after a drain
    (uvicorn would re-raise the signal; a server that drained cleanly exits 0 instead)."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_listening = on_listening
        self.signals: list[int] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_listening()

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.signals.append(sig)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _HANDLED}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run(
    app: Any,
    sock: socket.socket,
    *,
    lifespan: Literal["auto", "on", "off"] = "off",
    drain_seconds: float = 5.0,
    on_listening: Callable[[str], None] | None = None,
) -> list[int]:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT, then let requests in flight finish for at
    most ``drain_seconds``. ``on_listening`` gets the URL once connections are accepted. Returns the
    signals that stopped the server; the socket is closed on return."""
    url = url_of(sock)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        loop=_loop(),
        http="httptools",
        interface="asgi3",  # every app here is; uvicorn's guess takes a bound method for ASGI2
        proxy_headers=False,  # nothing here reads the client address; no X-Forwarded-* rewriting per request
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=drain_seconds,  # type: ignore[arg-type]  # typed int; a float timeout
    )
    server = _Server(config, lambda: on_listening(url) if on_listening else None)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return server.signals


def grpc_address(host: str, port: int) -> str:
    """The ``host:port`` a gRPC client dials (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _triton_only() -> grpc.GenericRpcHandler:
    """Triton's own calls its clients make, not the protocol's (tritonclient.grpc's get_model_config):
    UNIMPLEMENTED naming the protocol's call to use, rather than gRPC's bare 'Method not found!'."""
    import grpc

    def refuse(call: str, instead: str) -> grpc.RpcMethodHandler[bytes, bytes]:
        message = f"{call} is Triton's own call, not the Open Inference Protocol's; {instead}"
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
        )

    from catalog.serving.oip_grpc import SERVICE

    return grpc.method_handlers_generic_handler(
        SERVICE, {"ModelConfig": refuse("ModelConfig", "ModelMetadata answers the model's metadata")}
    )


def start_grpc_server(
    handler: grpc.GenericRpcHandler,
    host: str,
    port: int,
    *,
    max_message_bytes: int,
    workers: int | None,
    thread_name: str,
) -> tuple[grpc.Server, int]:
    """A gRPC server of ``handler`` on ``host``:``port`` (0 picks a free port), started, in ``workers``
    threads of its own, Triton's ModelConfig refused naming ModelMetadata; returns it (``stop(grace)``
    ends it) and its port. A message over twice ``max_message_bytes`` is dropped unread (the handler
    refuses those over the limit itself, with both sizes). A port in use, even by another gRPC
    server, is a UsageError."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    options = [
        ("grpc.max_receive_message_length", min(2 * max_message_bytes, 2**31 - 1)),
        ("grpc.max_send_message_length", -1),
        ("grpc.so_reuseport", 0),  # gRPC's default shares a port another server holds: refuse it instead
    ]
    server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name), options=options)
    server.add_generic_rpc_handlers((handler, _triton_only()))
    address = grpc_address(host, port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as e:  # grpcio raises where older releases returned 0
        raise UsageError(f"cannot listen for gRPC on {address}: {e}") from e
    if not bound:
        raise UsageError(f"cannot listen for gRPC on {address}")
    server.start()
    return server, bound
