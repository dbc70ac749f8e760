"""Third-party gRPC clients of the Open Inference Protocol, run as a process of their own:
``python -m tests.serving.oip_grpc_clients CLIENT ADDRESS MODEL VERSION INPUTS.npz OUTPUTS.npz``, or
``python -m tests.serving.oip_grpc_clients triton-calls ADDRESS CALLS.json INPUTS.npz OUTPUTS.npz`` for a
series of tritonclient.grpc inferences (``triton_calls``).

CLIENT is ``triton`` (tritonclient.grpc) or ``kserve`` (kserve's InferenceGRPCClient), each used
with its defaults (``set_data_from_numpy``: raw contents). A process each, because the two libraries
define the same protobuf names in protobuf's default pool and cannot be imported together.
Prints one JSON line: the server's liveness, readiness and the model's readiness and metadata.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

DATATYPES = {"float32": "FP32", "float16": "FP16", "int64": "INT64", "object": "BYTES", "bool": "BOOL"}


def triton(address: str, model: str, version: str, inputs: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(address)
    facts = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model, version),
        "inputs": [i.name for i in client.get_model_metadata(model, version).inputs],
    }
    tensors = []
    for name, array in inputs.items():
        tensor = grpcclient.InferInput(name, list(array.shape), DATATYPES[array.dtype.name])
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    result = client.infer(model, tensors, model_version=version, request_id="triton-1")
    facts["id"] = result.get_response().id
    outputs = {o.name: result.as_numpy(o.name) for o in result.get_response().outputs}
    return facts, outputs


def triton_calls(address: str, calls: list[dict[str, Any]], inputs: dict[str, np.ndarray]) -> tuple[list, dict]:
    """tritonclient.grpc's ``infer`` once per call (``{"model", "version", "headers", "request_id"}``,
    each optional but the model), with ``inputs``: per call the version and id answered, or the
    error's status and message; the outputs of the first call answered."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(address)
    tensors = []
    for name, array in inputs.items():
        tensor = grpcclient.InferInput(name, list(array.shape), DATATYPES[array.dtype.name])
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    answers: list[dict[str, Any]] = []
    outputs: dict[str, np.ndarray] = {}
    for call in calls:
        try:
            result = client.infer(call["model"], tensors, model_version=call.get("version", ""),
                                  request_id=call.get("request_id", ""), headers=call.get("headers"))  # fmt: skip
        except InferenceServerException as e:
            answers.append({"status": e.status(), "message": e.message()})
            continue
        response = result.get_response()
        answers.append({"status": "OK", "version": response.model_version, "id": response.id})
        if not outputs:
            outputs = {o.name: result.as_numpy(o.name) for o in response.outputs}
    client.close()
    return answers, outputs


def kserve(address: str, model: str, version: str, inputs: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict]:
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    async def run() -> tuple[dict[str, Any], dict]:
        client = InferenceGRPCClient(address)
        try:
            facts = {
                "live": await client.is_server_live(),
                "ready": await client.is_server_ready(),
                "model_ready": await client.is_model_ready(model),
            }
            tensors = []
            for name, array in inputs.items():
                tensor = InferInput(name, list(array.shape), DATATYPES[array.dtype.name])
                tensor.set_data_from_numpy(array)
                tensors.append(tensor)
            request = InferRequest(model, tensors, request_id="kserve-1", model_version=version)
            response = await client.infer(request)
            facts["id"] = response.id
            return facts, {o.name: o.as_numpy() for o in response.outputs}
        finally:
            await client.close()

    return asyncio.run(run())


def run_client(args: list[str], inputs: dict[str, np.ndarray], folder: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """Run this module (``CLIENT ADDRESS ...`` or ``triton-calls ADDRESS CALLS.json``: ``args``) in a
    process of its own on ``inputs``, with its files in ``folder``; what it printed and the outputs."""
    np.savez(folder / "in.npz", **inputs)
    run = subprocess.run(
        [sys.executable, "-m", "tests.serving.oip_grpc_clients", *args, str(folder / "in.npz"), str(folder / "out.npz")],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with np.load(folder / "out.npz", allow_pickle=True) as saved:
        outputs = {name: saved[name] for name in saved.files}
    return json.loads(run.stdout.strip().splitlines()[-1]), outputs


def main(argv: list[str]) -> int:
    which, address, *rest, inputs_path, outputs_path = argv
    with np.load(inputs_path, allow_pickle=True) as saved:
        inputs = {name: saved[name] for name in saved.files}
    facts: Any
    if which == "triton-calls":
        with open(rest[0], encoding="utf-8") as handle:
            facts, outputs = triton_calls(address, json.load(handle), inputs)
    else:
        model, version = rest
        facts, outputs = {"triton": triton, "kserve": kserve}[which](address, model, version, inputs)
    np.savez(outputs_path, **outputs)
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
