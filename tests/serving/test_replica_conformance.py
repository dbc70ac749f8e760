"""The replica against the Open Inference Protocol v2: its OpenAPI description (property-based, with
schemathesis) and a real client library of the protocol (tritonclient.http)."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.replica_fixtures import (
    FRAUD,
    RunningReplica,
    fraud_replica,  # noqa: F401  (a fixture)
)

pytestmark = pytest.mark.slow

SPEC = Path(__file__).resolve().parents[1] / "data" / "oip" / "open-inference-protocol-v2.rest.yaml"


def oip_spec() -> dict[str, Any]:
    """The upstream OpenAPI document, with one repair.

    Upstream writes path templates shell-style, ``/v2/models/${MODEL_NAME}/...``. In OpenAPI only
    ``{MODEL_NAME}`` is the template, so the ``$`` would be sent as a literal character and every
    request would name the model ``$fraud-scorer``. The protocol's prose (and every server speaking
    it) means ``/v2/models/<name>/...``, so the ``$`` is dropped from the path keys; nothing else in
    the document is touched.
    """
    raw = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    raw["paths"] = {re.sub(r"\$\{(\w+)\}", r"{\1}", path): item for path, item in raw["paths"].items()}
    return raw


def oip_schema() -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(oip_spec())
    # The path parameters are pinned to the model version this replica serves. Any other name or
    # version is answered 404, which the document does not list for these operations (it lists 200
    # and 400 only); that behaviour has a property test of its own below.
    schema.config.update(parameters={"MODEL_NAME": FRAUD.model, "MODEL_VERSION": FRAUD.version})
    return schema


# The replica's URL is known only once the fixture has started it, so it is given per call
# (schemathesis.pytest.from_fixture would defer loading instead, but 4.32 fails under pytest 9).
schema = oip_schema()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_replica_conforms_to_the_oip_openapi_document(
    case: schemathesis.Case,
    fraud_replica: RunningReplica,  # noqa: F811
) -> None:
    excluded = []
    if case.operation.method.upper() == "POST":
        # The document's inference_request accepts any tensor (any name, datatype, shape and data);
        # a model accepts only its own inputs. A schema-valid request for a tensor the model does not
        # take is rightly a 400 (with the documented inference_error_response body, which is still
        # validated). So "valid data must be accepted" cannot hold for inference; every other check
        # (status codes, content type, response schemas, negative data rejected, no 5xx) runs.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.call_and_validate(base_url=fraud_replica.url, excluded_checks=excluded)


SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-._~", min_size=1, max_size=20).filter(
    lambda s: s not in (".", "..")
)


@pytest.fixture(scope="module")
def http(fraud_replica: RunningReplica) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=fraud_replica.url, timeout=10.0) as client:
        yield client


@given(name=SEGMENT, version=SEGMENT, which=st.sampled_from(["metadata", "ready", "infer"]))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_other_model_or_version_is_404_never_served(
    http: httpx.Client,
    name: str,
    version: str,
    which: str,
) -> None:
    for model, ver in ((name, version), (FRAUD.model, version), (name, FRAUD.version)):
        if (model, ver) == (FRAUD.model, FRAUD.version):
            continue
        base = f"/v2/models/{model}/versions/{ver}"
        if which == "infer":
            body = {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.0] * 16}]}
            response = http.post(base + "/infer", json=body)
        else:
            response = http.get(base + ("/ready" if which == "ready" else ""))
        assert response.status_code == 404, (model, ver, response.text)
        assert "is not served here" in response.json()["error"]
        assert response.headers["x-model-name"] == FRAUD.model


# --- tritonclient: a real client library of the protocol -------------------------------------


@pytest.fixture(scope="module")
def triton(fraud_replica: RunningReplica) -> Iterator[Any]:  # noqa: F811
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=fraud_replica.url.removeprefix("http://"))
    yield client
    client.close()


def test_tritonclient_health_and_metadata(triton: Any) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready(FRAUD.model, FRAUD.version)
    assert not triton.is_model_ready(FRAUD.model, "9.9.9")
    meta = triton.get_model_metadata(FRAUD.model, FRAUD.version)
    assert meta["name"] == FRAUD.model and meta["versions"] == [FRAUD.version]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 16]}]
    assert meta["outputs"] == [{"name": "fraud_probability", "datatype": "FP32", "shape": [-1, 1]}]
    assert triton.get_server_metadata()["name"] == "modelcat-replica"


@pytest.mark.parametrize("requested", [True, False], ids=["outputs-named", "outputs-default"])
def test_tritonclient_infer_matches_onnxruntime(triton: Any, requested: bool) -> None:
    import tritonclient.http as httpclient

    x = np.random.default_rng(42).standard_normal((5, 16)).astype(np.float32)
    tensor = httpclient.InferInput("features", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=False)
    # Without named outputs tritonclient asks for binary outputs (binary_data_output), and gets them.
    outputs = [httpclient.InferRequestedOutput("fraud_probability", binary_data=False)] if requested else None
    result = triton.infer(FRAUD.model, [tensor], model_version=FRAUD.version, outputs=outputs, request_id="t-1")
    got = result.as_numpy("fraud_probability")
    session = ort.InferenceSession(FRAUD.artifact.read_bytes(), providers=["CPUExecutionProvider"])
    [expected] = session.run(["fraud_probability"], {"features": x})
    assert got.shape == (5, 1) and got.dtype == np.float32
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert result.get_response()["id"] == "t-1"


def test_tritonclient_sees_validation_errors(triton: Any) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    tensor = httpclient.InferInput("features", [2, 8], "FP32")
    tensor.set_data_from_numpy(np.zeros((2, 8), np.float32), binary_data=False)
    with pytest.raises(InferenceServerException, match="dimension 1 is 8 but the model fixes it at 16"):
        triton.infer(FRAUD.model, [tensor])
