"""The floor of a gRPC request's memory: a bare grpcio server, with the replica's options, whose
ModelInfer handler reads nothing of the message and answers an empty response. What its peak RSS
rises by for a request is what grpcio itself holds while receiving it (``request_memory``'s
``grpc-floor``), which no handler can lower.

Run as ``python -m tests.serving.grpc_floor LIMIT``: prints its port, serves until terminated.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc

from catalog.serving.listen import start_grpc_server
from catalog.serving.oip_grpc import SERVICE
from catalog.serving.oip_grpc import inference_pb2 as pb

__all__ = ["start_grpc_floor"]

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def start_grpc_floor(limit: int) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The floor server in a process of its own, taking messages up to ``limit`` bytes: its address
    and process; terminated afterwards."""
    command = [sys.executable, "-m", "tests.serving.grpc_floor", str(limit)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            port = server.stdout.readline().strip()
            if not port.isdigit():
                raise RuntimeError(f"the gRPC floor server did not start (exit {server.wait(timeout=30)})")
            yield f"127.0.0.1:{port}", server
        finally:
            server.terminate()


def main(limit: int) -> None:
    empty = pb.ModelInferResponse(model_name="reduce", raw_output_contents=[b""]).SerializeToString()
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"ModelInfer": grpc.unary_unary_rpc_method_handler(lambda request, context: empty)}
    )
    server, port = start_grpc_server(handler, "127.0.0.1", 0, max_message_bytes=limit, workers=4, thread_name="floor")
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main(int(sys.argv[1]))
