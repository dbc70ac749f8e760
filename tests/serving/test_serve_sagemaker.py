"""`modelcat serve`, the SageMaker container contract: configured by the environment, the artifact found
in the model directory, verified before listening, /ping and /invocations next to the OIP routes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from catalog.artifacts.hashing import hash_file, manifest_digest
from catalog.cli.serve_command import find_artifact, serve
from catalog.errors import UsageError
from catalog.serving.replica import create_app
from catalog.serving.replica_model import load_verified
from tests.onnx_models import dense_model, save_with_external_data
from tests.serving.replica_fixtures import (
    FRAUD,
    ROOT,
    ReplicaProcess,
    RunningReplica,
    free_port,
    stop_replica,
)

pytestmark = pytest.mark.slow

SAGEMAKER_VARS = ("MODELCAT_MODEL", "MODELCAT_VERSION", "MODELCAT_DIGEST", "MODELCAT_ARTIFACT", "SM_MODEL_DIR",
                  "SAGEMAKER_BIND_TO_PORT")  # fmt: skip
X = np.random.default_rng(11).standard_normal((3, 16)).astype(np.float32)
TENSOR = {"name": "features", "shape": [3, 16], "datatype": "FP32", "data": X.reshape(-1).tolist()}


def container_env(model_dir: Path, port: int, **overrides: str | None) -> dict[str, str]:
    """This process's environment without any SageMaker or modelcat setting, then the container's."""
    env = {k: v for k, v in os.environ.items() if k not in SAGEMAKER_VARS}
    env |= {"MODELCAT_MODEL": FRAUD.model, "MODELCAT_VERSION": FRAUD.version, "MODELCAT_DIGEST": FRAUD.digest,
            "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port)}  # fmt: skip
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def start_serve(env: dict[str, str]) -> ReplicaProcess:
    """`modelcat serve` exactly as the image's entrypoint gets it from SageMaker (no other argument
    but --host: 0.0.0.0 would listen beyond loopback)."""
    command = [sys.executable, "-m", "catalog.cli.main", "serve", "--host", "127.0.0.1"]
    return ReplicaProcess(command, cwd=ROOT, env=env)


def finished(process: ReplicaProcess, timeout: float = 30.0) -> ReplicaProcess:
    """Wait for a process that should exit on its own (stopping it if it does not)."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_replica(process)
        pytest.fail(f"serve kept running:\n{process.stdout_text()}\n{process.stderr_text()}")
    process._reader.join(5)
    return process


def port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def sagemaker_model_dir(parent: Path) -> Path:
    """/opt/ml/model as an uncompressed S3Object leaves it: one file named after the key's last part."""
    model_dir = parent / "opt-ml-model"
    model_dir.mkdir()
    shutil.copyfile(FRAUD.artifact, model_dir / f"{FRAUD.digest.removeprefix('sha256:')}.onnx")
    return model_dir


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningReplica]:
    port = free_port()
    process = start_serve(container_env(sagemaker_model_dir(tmp_path_factory.mktemp("sm")), port))
    try:
        process.listening.wait(30)
        assert process.url == f"http://127.0.0.1:{port}", process.stderr_text()
        yield RunningReplica(process.url, process)
    finally:
        stop_replica(process)
        process._reader.join(5)


@pytest.fixture(scope="module")
def client(container: RunningReplica) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=container.url, timeout=10.0) as c:
        yield c


def in_process(x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(FRAUD.artifact.read_bytes(), providers=["CPUExecutionProvider"])
    return session.run(["fraud_probability"], {"features": x})[0]


# --- the container over HTTP -------------------------------------------------------------------


def test_ping_answers_200_once_listening(client: httpx.Client, container: RunningReplica) -> None:
    response = client.get("/ping")
    assert response.status_code == 200 and len(response.content) <= 16
    assert response.headers["x-model-digest"] == FRAUD.digest
    assert f"serve {FRAUD.model} {FRAUD.version} {FRAUD.digest}" in container.process.stdout_text()


def test_invocations_return_what_onnxruntime_computes_in_process(client: httpx.Client) -> None:
    response = client.post("/invocations", json={"id": "sm-1", "inputs": [TENSOR]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (FRAUD.model, FRAUD.version, "sm-1")
    [out] = body["outputs"]
    assert out["name"] == "fraud_probability" and out["shape"] == [3, 1]
    got = np.array(out["data"], dtype=np.float32).reshape(out["shape"])
    assert np.allclose(got, in_process(X), rtol=1e-6, atol=1e-7)
    assert response.headers["x-model-version"] == FRAUD.version


@pytest.mark.parametrize("path", ["/invocations", f"/v2/models/{FRAUD.model}/infer"])
def test_serve_speaks_the_binary_tensor_extension(client: httpx.Client, path: str) -> None:
    header = {"inputs": [{"name": "features", "shape": [3, 16], "datatype": "FP32",
                          "parameters": {"binary_data_size": X.nbytes}}],
              "outputs": [{"name": "fraud_probability", "parameters": {"binary_data": True}}]}  # fmt: skip
    text = json.dumps(header).encode()
    response = client.post(
        path, content=text + X.tobytes(), headers={"Inference-Header-Content-Length": str(len(text))}
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    [out] = json.loads(response.content[:length])["outputs"]
    assert out["parameters"] == {"binary_data_size": 12} and out["shape"] == [3, 1]
    got = np.frombuffer(response.content[length:], dtype="<f4").reshape(3, 1)
    assert np.allclose(got, in_process(X), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "body,headers",
    [
        (b'{"inputs": [{"name": "feature", "shape": [1], "datatype": "FP32", "data": [1]}]}', {}),
        (b'{"inputs": [', {}),
        (b'{"inputs": []}', {"inference-header-content-length": "10"}),
    ],
    ids=["unknown input", "not JSON", "binary extension"],
)
def test_invocations_fail_exactly_as_infer_does(client: httpx.Client, body: bytes, headers: dict[str, str]) -> None:
    headers = {"content-type": "application/json", **headers}
    invoked = client.post("/invocations", content=body, headers=headers)
    inferred = client.post(f"/v2/models/{FRAUD.model}/infer", content=body, headers=headers)
    assert invoked.status_code == inferred.status_code == 400
    assert invoked.json() == inferred.json() and invoked.json()["error"]


def test_the_oip_routes_are_served_too_and_metrics_label_the_sagemaker_routes(client: httpx.Client) -> None:
    assert client.get(f"/v2/models/{FRAUD.model}/versions/{FRAUD.version}/ready").json()["ready"] is True
    assert client.get("/ping").status_code == 200
    assert client.post("/invocations", json={"inputs": [TENSOR]}).status_code == 200
    assert client.post("/invocations", json={"inputs": []}).status_code == 400
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "modelcat_replica_requests_total" and sample.labels["model"] == FRAUD.model:
                counts[sample.labels["route"], sample.labels["code"]] = sample.value
    assert counts[("ping", "200")] >= 1
    assert counts[("invocations", "200")] >= 1 and counts[("invocations", "400")] >= 1


# --- refusing to start -------------------------------------------------------------------------


def test_wrong_digest_exits_1_naming_both_and_never_listens(tmp_path: Path) -> None:
    model_dir = sagemaker_model_dir(tmp_path)
    wrong = "sha256:" + "0" * 64
    port = free_port()
    process = finished(start_serve(container_env(model_dir, port, MODELCAT_DIGEST=wrong)))
    assert process.returncode == 1
    assert "digest mismatch" in process.stderr_text()
    assert wrong in process.stderr_text() and FRAUD.digest in process.stderr_text()
    assert "listening" not in process.stdout_text()
    assert port_is_closed(port)


def test_two_files_in_the_model_dir_exit_2_naming_the_directory(tmp_path: Path) -> None:
    model_dir = sagemaker_model_dir(tmp_path)
    (model_dir / "notes.txt").write_text("left over\n")
    port = free_port()
    process = finished(start_serve(container_env(model_dir, port)))
    assert process.returncode == 2
    stderr = process.stderr_text()
    assert f"the model directory {model_dir} holds 2 entries" in stderr and "notes.txt" in stderr
    assert "MODELCAT_ARTIFACT" in stderr
    assert port_is_closed(port)


def test_missing_environment_exits_2_naming_every_missing_variable(tmp_path: Path) -> None:
    env = container_env(sagemaker_model_dir(tmp_path), free_port(), MODELCAT_VERSION=None, MODELCAT_DIGEST="")
    process = finished(start_serve(env))
    assert process.returncode == 2
    assert "error: MODELCAT_VERSION, MODELCAT_DIGEST are not set" in process.stderr_text()


# --- in process: the command's settings, the app's option --------------------------------------


def call(app: Starlette, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request to ``app`` in this process (httpx's ASGI transport, no socket)."""

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as c:
            return await c.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(send())


def test_options_override_the_environment_and_a_bad_port_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = sagemaker_model_dir(tmp_path)
    for key, value in container_env(model_dir, 0, MODELCAT_DIGEST="sha256:" + "1" * 64).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(serve, ["--digest", "sha256:" + "2" * 64, "--port", "0", "--host", "127.0.0.1"])
    assert result.exit_code == 1 and "expected sha256:" + "2" * 64 in result.output  # the option won
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "http")
    result = CliRunner().invoke(serve, [])
    assert result.exit_code == 2 and "SAGEMAKER_BIND_TO_PORT='http' is not a TCP port" in result.output


def test_find_artifact_in_each_layout_sagemaker_can_leave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SM_MODEL_DIR", raising=False)
    single = sagemaker_model_dir(tmp_path)
    [only] = single.iterdir()
    assert find_artifact(None, str(single)) == only
    monkeypatch.setenv("SM_MODEL_DIR", str(single))
    assert find_artifact(None, None) == only
    assert find_artifact(str(FRAUD.artifact), None) == FRAUD.artifact  # MODELCAT_ARTIFACT wins

    flat = tmp_path / "prefix"  # an S3Prefix of a multi-file artifact: the directory is the artifact
    save_with_external_data(dense_model(), flat)
    assert find_artifact(None, str(flat)) == flat
    nested = tmp_path / "nested"
    save_with_external_data(dense_model(), nested / "fraud")
    assert find_artifact(None, str(nested)) == nested / "fraud"

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=f"the model directory {empty} is empty"):
        find_artifact(None, str(empty))
    (tmp_path / "folder" / "stray").mkdir(parents=True)
    with pytest.raises(UsageError, match="holds only stray, which is a folder without model.onnx"):
        find_artifact(None, str(tmp_path / "folder"))
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "model-link.onnx").symlink_to(FRAUD.artifact)
    with pytest.raises(UsageError, match="which is a symbolic link"):
        find_artifact(None, str(linked))
    with pytest.raises(UsageError, match=f"cannot read the model directory {tmp_path / 'absent'}"):
        find_artifact(None, str(tmp_path / "absent"))
    with pytest.raises(UsageError, match="MODELCAT_ARTIFACT"):
        find_artifact(str(tmp_path / "absent.onnx"), None)


def test_a_multi_file_artifact_found_in_the_model_dir_is_served(tmp_path: Path) -> None:
    flat = tmp_path / "prefix"
    save_with_external_data(dense_model(seed=4), flat)
    files = sorted(p for p in flat.rglob("*") if p.is_file())
    digest = manifest_digest([(p.relative_to(flat).as_posix(), hash_file(str(p))) for p in files])
    loaded = load_verified(find_artifact(None, str(flat)), digest)
    response = call(create_app(loaded, "dense", "4", sagemaker=True), "POST", "/invocations", json={"inputs": [TENSOR]})
    assert response.status_code == 200, response.text
    expected = ort.InferenceSession(str(flat / "model.onnx")).run(None, {"features": X})[0]
    got = np.array(response.json()["outputs"][0]["data"], dtype=np.float32).reshape(expected.shape)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_the_sagemaker_routes_are_only_there_when_asked_for() -> None:
    loaded = load_verified(FRAUD.artifact, FRAUD.digest)
    plain = create_app(loaded, FRAUD.model, FRAUD.version)
    assert call(plain, "GET", "/ping").status_code == 404
    assert call(plain, "POST", "/invocations", json={"inputs": [TENSOR]}).status_code == 404
    assert call(plain, "GET", "/v2/health/ready").status_code == 200
    sagemaker = create_app(loaded, FRAUD.model, FRAUD.version, sagemaker=True)
    assert call(sagemaker, "GET", "/ping").status_code == 200
    assert call(sagemaker, "POST", "/invocations", json={"inputs": [TENSOR]}).status_code == 200
    assert call(sagemaker, "GET", "/invocations").status_code == 405


def test_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    """SageMaker stops a container with SIGTERM (SIGKILL 30 s later): it drains and exits 0."""
    process = start_serve(container_env(sagemaker_model_dir(tmp_path), free_port()))
    try:
        process.listening.wait(30)
        assert process.url is not None, process.stderr_text()
        assert httpx.get(f"{process.url}/ping", timeout=5).status_code == 200
    finally:
        returncode = stop_replica(process)
        process._reader.join(5)
    assert returncode == 0 and "stopped (SIGTERM)" in process.stderr_text()
