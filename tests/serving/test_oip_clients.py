"""Third-party OIP v2 clients with their defaults, every output equal to what onnxruntime computes in
process: tritonclient's HTTP client (binary tensors unless told otherwise), KServe's REST client (FP16
only as binary), tritonclient.grpc and KServe's gRPC client.

The issue's matrix: each client on a model of each datatype (FP32, FP16, INT64, BYTES), against a
replica and the router, and the HTTP clients against ``modelcat serve`` too (SageMaker's container
speaks HTTP only). Then one model of every datatype (BOOL too) in one request, and the clients' other options."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalog.serving.oip import datatype_of
from tests.serving.oip_grpc_clients import run_client
from tests.serving.oip_servers import SERVERS, Served, oip_servers
from tests.serving.replica_fixtures import (
    CLIENT_FEEDS,
    DATATYPE_FEEDS,
    assert_same_tensor,
    client_types_model,
    run_in_process,
    single_type_model,
    start_replica,
    triton_inputs,
    write_model,
)

pytestmark = pytest.mark.slow

MODEL, VERSION = "client-types", "0.1.0"
FEEDS = CLIENT_FEEDS


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path, digest = write_model(client_types_model(), tmp_path_factory.mktemp("clients") / "model.onnx")
    with start_replica(MODEL, VERSION, path, digest) as (url, _):
        yield url, path


# --- the matrix: client x datatype x server ----------------------------------------------------------

Facts = dict[str, Any]  # what the client was told besides the outputs: liveness, readiness, the id echoed
Client = Callable[[Served, dict[str, np.ndarray], Path], tuple[Facts, dict[str, np.ndarray]]]


def triton_http(served: Served, feeds: dict[str, np.ndarray], folder: Path) -> tuple[Facts, dict[str, np.ndarray]]:
    import tritonclient.http as httpclient

    with httpclient.InferenceServerClient(url=served.url.removeprefix("http://")) as client:
        facts = {
            "live": client.is_server_live(),
            "ready": client.is_server_ready(),
            "model_ready": client.is_model_ready(served.model, served.version),
            "inputs": [tensor["name"] for tensor in client.get_model_metadata(served.model, served.version)["inputs"]],
        }
        result = client.infer(served.model, triton_inputs(feeds), request_id="triton-1")
    response = result.get_response()
    facts["id"] = response["id"]
    # no outputs named: tritonclient asks binary_data_output, so every output comes back as binary
    facts["binary_outputs"] = all(
        "binary_data_size" in o["parameters"] and "data" not in o for o in response["outputs"]
    )
    return facts, {output["name"]: result.as_numpy(output["name"]) for output in response["outputs"]}


async def kserve_infer(url: str, model: str, feeds: dict[str, np.ndarray], binary_outputs: bool = False) -> Any:
    """KServe's REST client, inputs set as its defaults set them (binary data: FP16 cannot go as JSON)."""
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    inputs = []
    for name, array in feeds.items():
        tensor = InferInput(name, list(array.shape), datatype_of(array.dtype))
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    parameters = {"binary_data_output": True} if binary_outputs else None
    request = InferRequest(model_name=model, infer_inputs=inputs, request_id="kserve-1", parameters=parameters)
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        return await client.infer(url, request, model_name=model)
    finally:
        await client.close()


def kserve_rest(served: Served, feeds: dict[str, np.ndarray], folder: Path) -> tuple[Facts, dict[str, np.ndarray]]:
    from kserve import InferenceRESTClient, RESTConfig

    async def facts() -> Facts:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            return {
                "live": await client.is_server_live(served.url),
                "ready": await client.is_server_ready(served.url),
                "model_ready": await client.is_model_ready(served.url, served.model),
            }
        finally:
            await client.close()

    told = asyncio.run(facts())
    response = asyncio.run(kserve_infer(served.url, served.model, feeds))
    return told | {"id": response.id}, {output.name: output.as_numpy() for output in response.outputs}


def grpc_client(which: str) -> Client:
    def run(served: Served, feeds: dict[str, np.ndarray], folder: Path) -> tuple[Facts, dict[str, np.ndarray]]:
        assert served.grpc is not None, f"{served.server} serves no gRPC"
        return run_client([which, served.grpc, served.model, served.version], feeds, folder)

    return run


# each client, the servers it is tested against, and the request id it sends
CLIENTS: dict[str, tuple[Client, tuple[str, ...], str]] = {
    "tritonclient.http": (triton_http, SERVERS, "triton-1"),
    "kserve-rest": (kserve_rest, SERVERS, "kserve-1"),
    "tritonclient.grpc": (grpc_client("triton"), ("replica", "router"), "triton-1"),
    "kserve-grpc": (grpc_client("kserve"), ("replica", "router"), "kserve-1"),
}
CELLS = [(client, server) for client, (_, servers, _) in CLIENTS.items() for server in servers]
MATRIX_MODELS = {datatype: f"only-{datatype.lower()}" for datatype in DATATYPE_FEEDS}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], Served]]:
    models = {name: single_type_model(datatype) for datatype, name in MATRIX_MODELS.items()}
    with oip_servers(models, tmp_path_factory.mktemp("matrix")) as served:
        yield served


@pytest.mark.parametrize("client,server", CELLS, ids=[f"{c}-{s}" for c, s in CELLS])
@pytest.mark.parametrize("datatype", list(DATATYPE_FEEDS))
def test_client_with_its_defaults_matches_onnxruntime(
    matrix: dict[tuple[str, str], Served], datatype: str, client: str, server: str, tmp_path: Path
) -> None:
    served = matrix[(server, MATRIX_MODELS[datatype])]
    feeds = {"x": DATATYPE_FEEDS[datatype]}
    call, _, request_id = CLIENTS[client]
    facts, outputs = call(served, feeds, tmp_path)
    assert facts["live"] and facts["ready"] and facts["model_ready"], facts
    assert facts["id"] == request_id
    assert facts.get("binary_outputs", True), "tritonclient's default asks every output as binary"
    assert facts.get("inputs", ["x"]) == ["x"]
    [(name, want)] = run_in_process(served.artifact, feeds).items()
    assert set(outputs) == {name}
    assert_same_tensor(name, outputs[name], want)


# --- one model of every datatype, and the clients' options -------------------------------------------

# --- tritonclient.http ------------------------------------------------------------------------------


@pytest.mark.parametrize("named", [False, True], ids=["outputs-default", "outputs-named"])
def test_tritonclient_with_its_defaults_matches_onnxruntime(replica: tuple[str, Path], named: bool) -> None:
    import tritonclient.http as httpclient

    url, path = replica
    inputs = triton_inputs()
    # no outputs: tritonclient asks binary_data_output; named: InferRequestedOutput's binary_data=True
    outputs = [httpclient.InferRequestedOutput(f"{name}_out") for name in FEEDS] if named else None
    with httpclient.InferenceServerClient(url=url.removeprefix("http://")) as client:
        result = client.infer(MODEL, inputs, model_version=VERSION, outputs=outputs, request_id="triton-1")
    assert result.get_response()["id"] == "triton-1"
    for output in result.get_response()["outputs"]:
        assert "binary_data_size" in output["parameters"] and "data" not in output  # answered as binary
    for name, want in run_in_process(path, FEEDS).items():
        assert_same_tensor(name, result.as_numpy(name), want)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_compressed_requests_match_onnxruntime(replica: tuple[str, Path], algorithm: str) -> None:
    import tritonclient.http as httpclient

    url, path = replica
    with httpclient.InferenceServerClient(url=url.removeprefix("http://")) as client:
        result = client.infer(MODEL, triton_inputs(), request_compression_algorithm=algorithm)
    for name, want in run_in_process(path, FEEDS).items():
        assert_same_tensor(name, result.as_numpy(name), want)


def test_tritonclient_model_config_names_the_metadata_endpoint(replica: tuple[str, Path]) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    url, _ = replica
    with httpclient.InferenceServerClient(url=url.removeprefix("http://")) as client:
        with pytest.raises(InferenceServerException, match=f"GET /v2/models/{MODEL}/versions/{VERSION}"):
            client.get_model_config(MODEL, VERSION)
        assert client.get_model_metadata(MODEL, VERSION)["name"] == MODEL


# --- KServe's REST client ---------------------------------------------------------------------------


@pytest.mark.parametrize("binary_outputs", [True, False], ids=["binary-outputs", "json-outputs"])
def test_kserve_rest_client_sends_fp16_as_binary_and_matches_onnxruntime(
    replica: tuple[str, Path], binary_outputs: bool
) -> None:
    url, path = replica
    response = asyncio.run(kserve_infer(url, MODEL, FEEDS, binary_outputs))
    assert response.id == "kserve-1"
    got = {output.name: output.as_numpy() for output in response.outputs}
    for name, want in run_in_process(path, FEEDS).items():
        assert_same_tensor(name, got[name], want)
