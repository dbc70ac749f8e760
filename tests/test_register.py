"""register adds a new model; what it writes keeps the file's layout and reads back as written."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.helpers import register, sha256_file, snapshot
from tests.onnx_models import dense_model, dynamo_like, save


def register_new(cli, workspace: Path, artifact: Path, *extra: str):
    return cli(
        "register", "fraud-explainer", "--version", "0.1.0", "--artifact", artifact,
        "--catalog", workspace / "models.yaml", "--trained-at", "2026-11-20", *extra,
    )  # fmt: skip


# --- register creates a new model -----------------------------------------------------------------


def test_register_creates_a_new_model(cli, workspace: Path):
    before = (workspace / "models.yaml").read_text()
    artifact = save(dense_model(seed=69), workspace / "explainer.onnx")
    result = register_new(cli, workspace, artifact, "--owner", "risk-ml@example.com", "--task", "classification")
    assert result.exit_code == 0, result.output
    assert "registered fraud-explainer 0.1.0 (a new model)" in result.stdout
    after = (workspace / "models.yaml").read_text()
    digest = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    registered_at = re.search(r"registered_at: (\S+)\n        stage: candidate\n\napplications:", after)
    assert registered_at, after
    block = (
        "  - name: fraud-explainer\n"
        "    owner: risk-ml@example.com\n"
        "    task: classification\n"
        "    versions:\n"
        "      - version: 0.1.0\n"
        "        artifact:\n"
        f"          uri: artifacts/sha256/{digest[7:9]}/{digest[7:]}\n"
        f"          digest: {digest}\n"
        f"          size_bytes: {artifact.stat().st_size}\n"
        "        signature:\n"
        "          inputs:\n"
        "            - {name: features, dtype: float32, shape: [batch, 16]}\n"
        "          outputs:\n"
        "            - {name: fraud_probability, dtype: float32, shape: [batch, 1]}\n"
        "        trained_at: 2026-11-20\n"
        f"        registered_at: {registered_at.group(1)}\n"
        "        stage: candidate\n"
    )
    # appended after the last model, set off by a blank line as the others are; the rest untouched
    assert after == before.replace("\napplications:\n", "\n" + block + "\napplications:\n", 1)
    assert cli("validate", workspace / "models.yaml").exit_code == 0
    assert cli("verify", "--model", "fraud-explainer", "--catalog", workspace / "models.yaml").exit_code == 0
    again = register_new(cli, workspace, save(dense_model(seed=70), workspace / "v2.onnx"))
    assert again.exit_code == 1 and "fraud-explainer already has version 0.1.0" in again.stderr


@pytest.mark.parametrize(
    "extra,words",
    [
        ((), "no model 'fraud-explainer' in"),
        (("--owner", "risk-ml@example.com"), "give --task too"),
        (("--task", "classification"), "give --owner too"),
        (("--owner", "x", "--task", "classification", "--label", "Bad Key=v"), "labels"),
    ],
    ids=["neither", "no task", "no owner", "invalid version field"],
)
def test_a_new_model_needs_owner_and_task(cli, workspace: Path, extra: tuple[str, ...], words: str):
    before, store = sha256_file(workspace / "models.yaml"), snapshot(workspace / "artifacts")
    result = register_new(cli, workspace, save(dense_model(seed=71), workspace / "m.onnx"), *extra)
    assert result.exit_code == 1, result.output
    assert words in result.stderr and "internal error" not in result.stderr
    if not extra:
        assert "to add it as a new model, give --owner and --task" in result.stderr
    assert sha256_file(workspace / "models.yaml") == before and snapshot(workspace / "artifacts") == store


def test_a_new_model_name_must_be_a_dns_label(cli, workspace: Path):
    before = sha256_file(workspace / "models.yaml")
    artifact = save(dense_model(seed=72), workspace / "m.onnx")
    result = cli(
        "register", "Fraud_Explainer", "--version", "0.1.0", "--artifact", artifact,
        "--catalog", workspace / "models.yaml", "--owner", "x@example.com", "--task", "classification",
    )  # fmt: skip
    assert result.exit_code == 1 and "model name 'Fraud_Explainer'" in result.stderr
    assert sha256_file(workspace / "models.yaml") == before


def test_owner_or_task_of_an_existing_model_must_agree(cli, workspace: Path):
    artifact = save(dense_model(seed=73), workspace / "m.onnx")
    other = register(cli, workspace, artifact, "1.5.0", "--owner", "someone@example.com")
    assert other.exit_code == 1
    assert "fraud-scorer's owner is risk-ml@example.com, not someone@example.com" in other.stderr
    task = register(cli, workspace, artifact, "1.5.0", "--task", "regression")
    assert task.exit_code == 1 and "fraud-scorer's task is classification, not regression" in task.stderr
    same = register(cli, workspace, artifact, "1.5.0", "--owner", "risk-ml@example.com", "--task", "classification")
    assert same.exit_code == 0, same.output


def test_a_new_model_is_appended_in_the_layout_of_a_catalog_ending_with_models(cli, tmp_path: Path):
    catalog = tmp_path / "models.yaml"
    text = (
        "apiVersion: modelcat/v1\n"
        "models:\n"
        "- name: first\n"
        "  owner: a@example.com\n"
        "  task: other\n"
        "  versions:\n"
        "  - version: 1.0.0\n"
        f"    artifact: {{uri: artifacts/sha256/aa/{'a' * 64}, digest: sha256:{'a' * 64}, size_bytes: 1}}\n"
        "    signature:\n"
        "      inputs: [{name: x, dtype: float32, shape: [1]}]\n"
        "      outputs: [{name: y, dtype: float32, shape: [1]}]\n"
        "    trained_at: 2026-01-01\n"
        "    registered_at: 2026-01-01T00:00:00Z  # the first one\n"
        "# end of the models\n"
    )
    catalog.write_text(text)
    artifact = save(dense_model(seed=74), tmp_path / "m.onnx")
    result = cli(
        "register", "second", "--version", "1.0.0", "--artifact", artifact, "--catalog", catalog,
        "--owner", "b@example.com", "--task", "other", "--trained-at", "2026-11-20",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    after = catalog.read_text()
    head = text.removesuffix("# end of the models\n")
    assert after.startswith(
        head + "- name: second\n  owner: b@example.com\n  task: other\n  versions:\n  - version: 1.0.0\n"
    )
    assert after.endswith("    stage: candidate\n# end of the models\n")


def ranker_model() -> onnx.ModelProto:
    """query_doc_features float32[batch, 20, 8] -> MatMul [8, 16] -> ReduceSum -> relevance [batch, 20]."""
    weights = np.random.default_rng(76).standard_normal((8, 16)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["query_doc_features", "w"], ["h"]),
            helper.make_node("ReduceSum", ["h", "axes"], ["relevance"], keepdims=0),
        ],
        "ranker",
        [helper.make_tensor_value_info("query_doc_features", TensorProto.FLOAT, ["batch", 20, 8])],
        [helper.make_tensor_value_info("relevance", TensorProto.FLOAT, ["batch", 20])],
        [numpy_helper.from_array(weights, "w"), helper.make_tensor("axes", TensorProto.INT64, [1], [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_register_of_a_version_to_the_last_model_keeps_the_blank_line_before_applications(cli, workspace: Path):
    artifact = save(ranker_model(), workspace / "ranker.onnx")
    result = cli(
        "register", "search-ranker", "--version", "3.3.0", "--artifact", artifact,
        "--catalog", workspace / "models.yaml", "--trained-at", "2026-11-20",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    after = (workspace / "models.yaml").read_text()
    assert re.search(r"registered_at: 2026-10-02T13:30:00Z\n        stage: production\n      - version: 3.3.0\n", after)
    assert re.search(r"        stage: candidate\n\napplications:\n", after)


# --- what register writes reads back as written ------------------------------------------------


def test_register_takes_exporter_dims_and_long_names(cli, workspace: Path):
    path = save(dynamo_like(), workspace / "dynamo.onnx")
    result = register_new(cli, workspace, path, "--owner", "ml@example.com", "--task", "classification")
    assert result.exit_code == 0, result.output
    text = (workspace / "models.yaml").read_text()
    assert f'- {{name: {"x" * 300}, dtype: float32, shape: ["2*s0", 16]}}' in text
    assert '- {name: fraud_probability, dtype: float32, shape: ["s0 + 1", 1]}' in text
    assert cli("verify", "--model", "fraud-explainer", "--catalog", workspace / "models.yaml").exit_code == 0


@pytest.mark.parametrize("name", ["null", "true", "~", ".inf", "1e3", "- x", "a: b", "#x", "yes"])
def test_register_writes_tensor_names_yaml_would_read_as_something_else(cli, workspace: Path, name: str):
    path = save(dense_model(seed=62, input_name=name), workspace / "m.onnx")
    result = cli(
        "register", "odd-names", "--version", "1.0.0", "--artifact", path, "--catalog", workspace / "models.yaml",
        "--owner", "ml@example.com", "--task", "other",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cli("verify", "--model", "odd-names", "--catalog", workspace / "models.yaml").exit_code == 0
