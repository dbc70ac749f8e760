"""Real ONNX exports: what inspect shows, and what it refuses and how (register refuses the same)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from catalog.artifacts.onnx_facts import inspect_onnx
from catalog.domain.contract import signature_changes
from catalog.domain.models import Signature, TensorSpec
from catalog.errors import ArtifactError
from catalog.validate import validate_bytes
from tests.helpers import register, sha256_file, snapshot
from tests.onnx_models import (
    dense_model,
    dynamo_like,
    identity_model,
    point_external_data_at,
    save,
    save_with_external_data,
    zipmap_classifier,
)


def refused(cli, workspace: Path, artifact: Path, *args: str) -> str:
    """``inspect`` and ``register`` both refuse ``artifact`` with exit 1; nothing is written.
    Returns inspect's message (register's is the same)."""
    catalog, store = sha256_file(workspace / "models.yaml"), snapshot(workspace / ".modelcat")
    shown = cli("inspect", artifact)
    assert shown.exit_code == 1, shown.output
    assert "internal error" not in shown.stderr
    registered = register(cli, workspace, artifact, "1.5.0", *args)
    assert registered.exit_code == 1, registered.output
    message = shown.stderr.removeprefix("error: ").strip()
    assert message in registered.stderr
    assert sha256_file(workspace / "models.yaml") == catalog
    assert snapshot(workspace / ".modelcat") == store
    return message


# --- inspect shows the digest and size that models.yaml records --------------------------------


@pytest.mark.parametrize("external", [False, True], ids=["single file", "external data"])
def test_inspect_shows_the_digest_and_size_register_records(cli, workspace: Path, external: bool):
    model = dense_model(seed=60)
    path = save_with_external_data(model, workspace / "ext") if external else save(model, workspace / "m.onnx")
    shown = cli("inspect", path, "--format", "json")
    assert shown.exit_code == 0, shown.output
    facts = json.loads(shown.stdout)
    text = cli("inspect", path).stdout
    assert f"  digest: {facts['digest']}\n" in text and f"  size_bytes: {facts['size_bytes']}\n" in text
    registered = register(cli, workspace, path, "1.5.0", "--format", "json")
    assert registered.exit_code == 0, registered.output
    body = json.loads(registered.stdout)
    assert (facts["digest"], facts["size_bytes"]) == (body["digest"], body["size_bytes"])
    if not external:
        assert facts["digest"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        assert facts["size_bytes"] == path.stat().st_size
    else:
        assert facts["size_bytes"] == path.stat().st_size + (path.parent / "weights.bin").stat().st_size


# --- sequence, map and optional values are named, with the fix ---------------------------------


def test_skl2onnx_zipmap_output_is_refused_naming_it_and_the_fix(cli, workspace: Path):
    message = refused(cli, workspace, save(zipmap_classifier(), workspace / "clf.onnx"))
    assert "output 'output_probability' is a sequence of maps from int64 to float32 tensors" in message
    assert "seq(map(int64,tensor(float)))" in message and "not a tensor" in message
    assert "options={id(clf): {'zipmap': False}}" in message
    assert "element type 0" not in message


FLOAT_TENSOR = helper.make_tensor_type_proto(TensorProto.FLOAT, [None])


@pytest.mark.parametrize(
    "value_type,words",
    [
        (helper.make_sequence_type_proto(FLOAT_TENSOR), "a sequence of float32 tensors (seq(tensor(float)))"),
        (helper.make_optional_type_proto(FLOAT_TENSOR), "an optional float32 tensor (optional(tensor(float)))"),
        (
            helper.make_optional_type_proto(helper.make_sequence_type_proto(FLOAT_TENSOR)),
            "an optional sequence of float32 tensors (optional(seq(tensor(float))))",
        ),
    ],
    ids=["sequence", "optional", "optional sequence"],
)
def test_sequence_and_optional_values_are_refused_naming_what_they_are(cli, workspace, value_type, words):
    message = refused(cli, workspace, save(identity_model(value_type), workspace / "m.onnx"))
    assert f"input 'x' is {words}, not a tensor" in message


def test_map_input_is_refused_naming_it(cli, workspace: Path):
    graph = helper.make_graph(
        [helper.make_node("CastMap", ["x"], ["y"], domain="ai.onnx.ml")],
        "castmap",
        [
            helper.make_value_info(
                "x", helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
            )
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    message = refused(cli, workspace, save(model, workspace / "m.onnx"))
    assert "input 'x' is a map from int64 to float32 tensors (map(int64,tensor(float))), not a tensor" in message


# --- newer element types are named -------------------------------------------------------------


@pytest.mark.parametrize(
    "element", ["FLOAT8E4M3FN", "FLOAT8E5M2", "FLOAT8E4M3FNUZ", "INT4", "UINT4", "FLOAT4E2M1", "COMPLEX64"]
)
def test_newer_element_types_are_named_not_numbered(cli, workspace: Path, element: str):
    number = TensorProto.DataType.Value(element)
    value_type = helper.make_tensor_type_proto(number, ["batch", 4])
    message = refused(cli, workspace, save(identity_model(value_type), workspace / "m.onnx"))
    assert f"input 'x' has element type {element}, which the catalog does not support" in message
    assert "float32" in message  # the supported types are listed
    assert f"element type {number}" not in message


# --- exporters' symbolic dimensions and long names ----------------------------------------------


def test_exporter_dims_and_long_names_are_accepted_by_inspect(cli, workspace: Path):
    path = save(dynamo_like(), workspace / "dynamo.onnx")
    facts = inspect_onnx(path)
    assert facts.signature.inputs[0].name == "x" * 300
    assert facts.signature.inputs[0].shape == ["2*s0", 16] and facts.signature.outputs[0].shape == ["s0 + 1", 1]
    shown = cli("inspect", path)
    assert shown.exit_code == 0, shown.output
    assert f"input  {'x' * 300}: float32[2*s0, 16]" in shown.stdout
    assert "output fraud_probability: float32[s0 + 1, 1]" in shown.stdout


def _spec(*shape: int | str, name: str = "x") -> Signature:
    tensor = TensorSpec(name=name, dtype="float32", shape=list(shape))
    return Signature(inputs=[tensor], outputs=[tensor.model_copy(update={"name": "y"})])


@pytest.mark.parametrize(
    "old,new,expected",
    [
        (("batch", 16), ("2*s0", 16), [("breaking", "input 'x': dimension 0 batch -> 2*s0")]),
        (("s0 + 1",), ("s0+1",), []),  # the same expression, spaced otherwise
        (("s0 + 1",), ("s0 + 2",), [("breaking", "input 'x': dimension 0 s0 + 1 -> s0 + 2")]),
        (("2*s0",), ("batch",), [("additive", "input 'x': dimension 0 2*s0 relaxed to batch")]),
        ((4,), ("2*s0",), [("breaking", "input 'x': dimension 0 4 -> 2*s0")]),
        (("2*s0",), (4,), [("breaking", "input 'x': dimension 0 2*s0 fixed to 4")]),
        (("batch",), ("n",), []),  # a free dimension renamed
    ],
)
def test_contract_check_compares_symbolic_expressions(old, new, expected):
    changes = [(c.kind, c.text) for c in signature_changes(_spec(*old), _spec(*new)) if c.text.startswith("input")]
    assert changes == expected


@pytest.mark.parametrize("dim", ["batch size", "Max(1, s0)", "((s0 - 1)//2) + 1", "floor(s0/2)", "s0**2", "?"])
def test_the_catalog_takes_exporter_dims(dim: str):
    TensorSpec(name="x", dtype="float32", shape=[dim])


@pytest.mark.parametrize("dim", ["", "16", "2*3", " s0", "s0 ", "s0  + 1", "s0\n", "a;b", "x" * 257, -1])
def test_the_catalog_refuses_what_is_not_a_dim(dim: object):
    with pytest.raises(ValueError, match="a dimension is"):
        TensorSpec(name="x", dtype="float32", shape=[dim])


def test_a_catalog_with_exporter_dims_and_long_names_validates(demo_text: str):
    text = demo_text.replace(
        "{name: relevance, dtype: float32, shape: [batch, 20]}",
        '{name: relevance, dtype: float32, shape: ["s0 + 1", 20]}',
    ).replace("{name: account_features,", "{name: " + "a" * 300 + ",")
    report = validate_bytes(text.encode(), "models.yaml")
    assert not report.errors, report.errors


def test_a_name_longer_than_the_catalog_takes_is_refused_clearly(cli, workspace: Path):
    message = refused(cli, workspace, save(dense_model(seed=63, input_name="n" * 5000), workspace / "m.onnx"))
    assert "input 'nnnn" in message and "name" in message and "4096" in message


def test_negative_dim_values_read_as_unknown_dims(workspace: Path):
    model = dense_model(seed=64)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1  # old converters write -1 for "any"
    assert inspect_onnx(save(model, workspace / "m.onnx")).signature.inputs[0].shape == ["?", 16]


# --- external data that is the model itself, or takes the stored model's name ----------------


def test_external_data_that_is_the_model_file_itself_is_refused(cli, workspace: Path):
    path = save_with_external_data(dense_model(seed=65), workspace / "ext")
    point_external_data_at(path, "model.onnx")
    message = refused(cli, workspace, path)
    assert "external data 'model.onnx' of model.onnx is the model file itself" in message


def test_external_data_named_model_onnx_beside_another_model_name_is_refused(cli, workspace: Path):
    path = workspace / "ext" / "fraud.onnx"
    path.parent.mkdir()
    onnx.save_model(
        dense_model(seed=66), str(path), save_as_external_data=True, location="model.onnx", size_threshold=0
    )
    message = refused(cli, workspace, path)
    assert "external data 'model.onnx' of fraud.onnx" in message and "the name the stored model file takes" in message


@pytest.mark.parametrize(
    "location,words",
    [
        ("weights\x00.bin", "NUL"),
        ("model.onnx/weights.bin", "cannot be read"),
        ("w" * 5000, "cannot be read"),
    ],
    ids=["nul byte", "through a file", "name too long"],
)
def test_unreadable_external_data_locations_are_refused_clearly(cli, workspace: Path, location: str, words: str):
    path = save_with_external_data(dense_model(seed=67), workspace / "ext")
    point_external_data_at(path, location)
    assert words in refused(cli, workspace, path)


def test_external_data_spelled_with_a_dot_segment_verifies_after_register(cli, workspace: Path):
    path = save_with_external_data(dense_model(seed=68), workspace / "ext")
    point_external_data_at(path, "./weights.bin")
    facts = json.loads(cli("inspect", path, "--format", "json").stdout)
    result = register(cli, workspace, path, "1.5.0", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["digest"] == facts["digest"]
    verify = cli("verify", "--model", "fraud-scorer", "--catalog", workspace / "models.yaml")
    assert verify.exit_code == 0, verify.output


def test_inspect_refusals_are_artifact_errors_naming_the_file(workspace: Path):
    path = save(zipmap_classifier(), workspace / "clf.onnx")
    with pytest.raises(ArtifactError) as caught:
        inspect_onnx(path)
    assert caught.value.path == str(path)


# --- every model of the onnx package's backend test data ----------------------------------------

BACKEND_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
# What a refusal may be about: one input or output, named; or the model as a whole.
_NAMED_VALUE = re.compile(r"^(input|output) '[^']+'( \(.*\))?:? (is|has) ")
_WHOLE_MODEL = ("has no graph inputs",)


@pytest.mark.slow
def test_inspect_over_the_onnx_backend_test_data_never_crashes(cli):
    paths = sorted(BACKEND_DATA.rglob("model.onnx"))
    assert len(paths) > 1500, f"the onnx package ships {len(paths)} backend test models"
    outcomes: dict[str, int] = {}
    for path in paths:
        result = cli("inspect", path, "--format", "json")  # in process; an unexpected exception propagates
        body = json.loads(result.stdout)
        assert "internal error" not in result.output, (path, result.output)
        if result.exit_code == 0:
            assert body["digest"].startswith("sha256:") and body["size_bytes"] > 0
            outcomes["ok"] = outcomes.get("ok", 0) + 1
            continue
        assert result.exit_code == 1 and body["ok"] is False, (path, result.output)
        assert body["error"]["code"] in ("not_onnx", "unsupported_model"), (path, body)
        message = body["error"]["message"]
        assert message.startswith(f"{path}: "), (path, message)
        detail = message.removeprefix(f"{path}: ")
        assert _NAMED_VALUE.match(detail) or detail in _WHOLE_MODEL, (path, detail)
        assert not re.search(r"element type \d", detail), (path, detail)
        outcomes[detail.split(" ", 2)[0]] = outcomes.get(detail.split(" ", 2)[0], 0) + 1
    assert outcomes["ok"] > 1500, outcomes
