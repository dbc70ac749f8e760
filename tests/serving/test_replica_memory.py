"""A replica's memory per request: what decoding a large request costs above its idle RSS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.serving.replica_fixtures import request_memory

MB = 1 << 20


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_a_large_request_costs_a_replica_at_most_twice_its_size(encoding: str, tmp_path: Path) -> None:
    """The issue's measure (bench/request_memory.py): peak RSS (VmHWM) above the RSS after a first
    small request, for one request of about 16 MB of random float32 values."""
    memory = request_memory(encoding, 16 * MB, tmp_path)
    assert np.allclose(memory.answer, memory.input.sum(axis=1), rtol=1e-4, atol=1e-3)
    above = memory.peak - memory.idle
    assert above <= 2 * memory.body, (
        f"{above / MB:.0f} MB above idle for a {memory.body / MB:.1f} MB {encoding} body "
        f"({above / memory.body:.1f}x, in {memory.seconds:.1f} s)"
    )


def test_a_large_grpc_request_costs_a_replica_no_more_than_grpcio_itself_holds(tmp_path: Path) -> None:
    """Over gRPC the floor is grpcio's: it holds about 3x a message while receiving it, before any
    handler runs (a bare server reading nothing of it, tests/serving/grpc_floor.py). The replica
    decodes the raw contents as views of the message it was given, so its peak stays on that floor."""
    replica = request_memory("grpc", 16 * MB, tmp_path)
    assert np.allclose(replica.answer, replica.input.sum(axis=1), rtol=1e-4, atol=1e-3)
    floor = request_memory("grpc-floor", 16 * MB, tmp_path)
    above, floor_above = replica.peak - replica.idle, floor.peak - floor.idle
    assert above <= floor_above + replica.body // 2, (
        f"{above / MB:.0f} MB above idle for a {replica.body / MB:.1f} MB gRPC message; "
        f"grpcio alone {floor_above / MB:.0f} MB"
    )
