"""Third-party OIP v2 clients with their defaults against a replica: tritonclient's HTTP client (binary
tensors unless told otherwise) and KServe's REST client (FP16 only as binary), for FP32, FP16, INT64,
BYTES and BOOL tensors; every output equal to what onnxruntime computes in process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving.replica_fixtures import (
    CLIENT_DATATYPES,
    CLIENT_FEEDS,
    assert_same_tensor,
    client_types_model,
    run_in_process,
    start_replica,
    triton_inputs,
    write_model,
)

pytestmark = pytest.mark.slow

MODEL, VERSION = "client-types", "0.1.0"
DATATYPES, FEEDS = CLIENT_DATATYPES, CLIENT_FEEDS


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path, digest = write_model(client_types_model(), tmp_path_factory.mktemp("clients") / "model.onnx")
    with start_replica(MODEL, VERSION, path, digest) as (url, _):
        yield url, path


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


async def kserve_infer(url: str, binary_outputs: bool) -> Any:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    inputs = []
    for name, array in FEEDS.items():
        tensor = InferInput(name, list(array.shape), DATATYPES[name])
        tensor.set_data_from_numpy(array, binary_data=True)  # FP16 cannot go as JSON in this client
        inputs.append(tensor)
    parameters = {"binary_data_output": True} if binary_outputs else None
    request = InferRequest(model_name=MODEL, infer_inputs=inputs, request_id="kserve-1", parameters=parameters)
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        return await client.infer(url, request, model_name=MODEL)
    finally:
        await client._client.aclose()


@pytest.mark.parametrize("binary_outputs", [True, False], ids=["binary-outputs", "json-outputs"])
def test_kserve_rest_client_sends_fp16_as_binary_and_matches_onnxruntime(
    replica: tuple[str, Path], binary_outputs: bool
) -> None:
    url, path = replica
    response = asyncio.run(kserve_infer(url, binary_outputs))
    assert response.id == "kserve-1"
    got = {output.name: output.as_numpy() for output in response.outputs}
    for name, want in run_in_process(path, FEEDS).items():
        assert_same_tensor(name, got[name], want)
