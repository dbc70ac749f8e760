"""The checked-in Python of catalog/serving/oip_grpc/inference.proto is what protoc writes from it,
and its messages live in a descriptor pool of their own, so they share a process with Triton's and
KServe's client libraries (which define the same message names in protobuf's default pool)."""

from __future__ import annotations

import subprocess
import sys

from catalog.serving.oip_grpc.generate import drift
from tests.helpers import ROOT


def test_generated_grpc_code_has_not_drifted() -> None:
    difference = drift()
    assert not difference, "catalog/serving/oip_grpc is stale; run `make grpc-code`\n" + difference


def test_grpc_messages_share_a_process_with_tritonclient_and_kserve() -> None:
    # a process of its own: the two client libraries cannot share one with each other (same names,
    # same default pool), and later tests may import either
    for library in ("tritonclient.grpc", "kserve"):
        code = (
            f"import {library}\n"
            "from catalog.serving.oip_grpc import inference_pb2, inference_pb2_grpc\n"
            "request = inference_pb2.ModelInferRequest(model_name='m', raw_input_contents=[b'x'])\n"
            "assert inference_pb2.ModelInferRequest.FromString(request.SerializeToString()) == request\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert run.returncode == 0, f"with {library}:\n{run.stderr}"
