"""The router forwards binary tensor requests as they came (never decoding tensors), keeps the
extension's header both ways, and still refuses a body over its size limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.replica_fixtures import (
    CLIENT_FEEDS,
    assert_same_tensor,
    client_types_model,
    run_in_process,
    start_replica,
    triton_inputs,
    write_model,
)
from tests.serving.router_fixtures import Fleet, RouterProcess, wait_for_assignments, write_table

pytestmark = pytest.mark.slow

MODEL, VERSION, LIMIT = "client-types", "0.1.0", 64 * 1024


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RouterProcess, Path, Path]]:
    folder = tmp_path_factory.mktemp("router-binary")
    path, digest = write_model(client_types_model(), folder / "model.onnx")
    with start_replica(MODEL, VERSION, path, digest) as (url, _):
        table = folder / "table.json"
        route = {"version": VERSION, "weight": 100, "digest": digest, "replicas": [url]}
        write_table(table, {"apiVersion": "modelcat/routing-v1", "application": "shop", "sticky_key": "x-user-id",
                            "models": [{"name": MODEL, "routes": [route]}]})  # fmt: skip
        fleet = Fleet(folder)
        try:
            router = fleet.router(table, "--max-request-bytes", str(LIMIT), analytics=folder / "analytics")
            yield router, path, folder / "analytics"
        finally:
            fleet.close()


def test_tritonclient_with_its_defaults_through_the_router(routed: tuple[RouterProcess, Path, Path]) -> None:
    import tritonclient.http as httpclient

    router, path, analytics = routed
    inputs = triton_inputs()  # binary, tritonclient's default
    with httpclient.InferenceServerClient(url=router.url.removeprefix("http://")) as client:
        result = client.infer(MODEL, inputs, headers={"x-user-id": "u-1"})  # outputs: binary_data_output
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    for name, want in run_in_process(path, CLIENT_FEEDS).items():
        assert_same_tensor(name, result.as_numpy(name), want)
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])
    [logged] = wait_for_assignments(analytics, "shop", 1)
    assert (logged["version"], logged["status"]) == (VERSION, 200)


def _binary_body(size: int) -> tuple[bytes, str]:
    x = np.zeros((size // 16, 4), np.float32)
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                     "parameters": {"binary_data_size": x.nbytes}}]}).encode()  # fmt: skip
    return header + x.tobytes(), str(len(header))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_binary_body_over_the_limit_is_refused_by_the_router(
    routed: tuple[RouterProcess, Path, Path], chunked: bool
) -> None:
    router, _, _ = routed
    body, length = _binary_body(2 * LIMIT)
    content: bytes | Iterator[bytes] = iter([body[:1000], body[1000:]]) if chunked else body
    with httpx.Client(timeout=30, trust_env=False) as client:
        response = client.post(f"{router.url}/v2/models/{MODEL}/infer", content=content,
                               headers={"Inference-Header-Content-Length": length})  # fmt: skip
        assert response.status_code == 413, response.text
        assert f"over the router's limit of {LIMIT:,}" in response.json()["error"]
        assert client.get(f"{router.url}/v2/health/ready").status_code == 200


def test_a_bad_binary_request_gets_the_replicas_reason_through_the_router(
    routed: tuple[RouterProcess, Path, Path],
) -> None:
    router, _, _ = routed
    body, length = _binary_body(64)
    response = httpx.post(f"{router.url}/v2/models/{MODEL}/infer", content=body[:-4],
                          headers={"Inference-Header-Content-Length": length}, trust_env=False)  # fmt: skip
    assert response.status_code == 400
    assert "binary_data_size 64 runs past the end of the body" in response.json()["error"]


@pytest.mark.parametrize("suffix", ["", f"/versions/{VERSION}"], ids=["model", "version"])
def test_model_config_through_the_router_names_the_metadata_endpoint(
    routed: tuple[RouterProcess, Path, Path], suffix: str
) -> None:
    router, _, _ = routed
    response = httpx.get(f"{router.url}/v2/models/{MODEL}{suffix}/config", trust_env=False)
    assert response.status_code == 404
    assert f"GET /v2/models/{MODEL}{suffix} answers the model's metadata" in response.json()["error"]
