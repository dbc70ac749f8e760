"""Every server that speaks the Open Inference Protocol, started for the same models: per model a
replica (HTTP and gRPC) and ``modelcat serve`` (HTTP), and one router routing every model to its
replica (HTTP and gRPC). Tests parametrize over ``SERVERS`` to prove a behaviour on each."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from tests.serving.replica_fixtures import grpc_address, start_replica, write_model
from tests.serving.router_fixtures import Fleet, write_table

__all__ = ["APPLICATION", "SERVERS", "Served", "oip_servers"]

SERVERS = ("replica", "serve", "router")
APPLICATION = "matrix"


@dataclass(frozen=True)
class Served:
    """One model on one server: its base URL, and its gRPC address where the server has one."""

    server: str
    model: str
    version: str
    artifact: Path
    url: str
    grpc: str | None = None


@contextlib.contextmanager
def oip_servers(
    models: Mapping[str, onnx.ModelProto], folder: Path, version: str = "1.0.0", router_args: Sequence[str] = ()
) -> Iterator[dict[tuple[str, str], Served]]:
    """Start the servers of ``SERVERS`` for ``models`` (name: ONNX model), all at ``version``; yield
    them by (server, model name); stop them all afterwards. ``router_args`` go to the router."""
    served: dict[tuple[str, str], Served] = {}
    routes = []
    with contextlib.ExitStack() as stack:
        for name, model in models.items():
            path, digest = write_model(model, folder / f"{name}.onnx")
            replica = stack.enter_context(start_replica(name, version, path, digest, extra_args=["--grpc-port", "0"]))
            serve = stack.enter_context(start_replica(name, version, path, digest, sagemaker=True))
            served[("replica", name)] = Served("replica", name, version, path, replica.url, grpc_address(replica))
            served[("serve", name)] = Served("serve", name, version, path, serve.url)
            route = {"version": version, "weight": 100, "digest": digest, "replicas": [replica.url],
                     "grpc_replicas": [grpc_address(replica)]}  # fmt: skip
            routes.append({"name": name, "routes": [route]})
        table = folder / "table.json"
        write_table(table, {"apiVersion": "modelcat/routing-v1", "application": APPLICATION,
                            "sticky_key": "x-user-id", "models": routes})  # fmt: skip
        fleet = Fleet(folder)
        stack.callback(fleet.close)
        router = fleet.router(table, "--grpc-port", "0", *router_args)
        found = re.search(r"gRPC on (\S+), ", router.line)
        assert found, router.line
        for name in models:
            artifact = served[("replica", name)].artifact
            served[("router", name)] = Served("router", name, version, artifact, router.url, found.group(1))
        yield served
