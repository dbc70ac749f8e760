"""Build tiny, deterministic demo ONNX models and store them content-addressed.

Each model version is written to ``<out>/sha256/<hh>/<sha256 hex>`` where the
name is the sha256 of the file's bytes. Weights come from a numpy RNG seeded by
a hash of "model/version", so regenerating yields byte-identical files.

Usage: python artifacts/make_demo_models.py [--out DIR] [--check]
       python artifacts/make_demo_models.py --new MODEL VERSION FILE

``--new`` builds a version the catalog does not have yet (a demo model's signature, weights seeded
by the new "model/version") into FILE, to try ``modelcat register`` with.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from catalog.files import atomic_write

IR_VERSION = 9
OPSET = 17
BATCH = "batch"
Dim = int | str


@dataclass(frozen=True)
class ModelSpec:
    model: str
    version: str
    input_name: str
    input_shape: tuple[Dim, ...]
    output_name: str
    output_shape: tuple[Dim, ...]
    kind: str  # "binary", "softmax" or "ranker"
    hidden: int


SPECS: list[ModelSpec] = [
    *(
        ModelSpec("fraud-scorer", v, "features", (BATCH, 16), "fraud_probability", (BATCH, 1), "binary", 32)
        for v in ("1.2.0", "1.3.0", "1.4.0")
    ),
    *(
        ModelSpec("recommender", v, "user_features", (BATCH, 24), "item_scores", (BATCH, 50), "softmax", 32)
        for v in ("2.0.0", "2.1.0", "2.2.0")
    ),
    *(
        ModelSpec("churn-predictor", v, "account_features", (BATCH, 12), "churn_probability", (BATCH, 1), "binary", 16)
        for v in ("0.9.0", "1.0.0", "1.1.0")
    ),
    *(
        ModelSpec("search-ranker", v, "query_doc_features", (BATCH, 20, 8), "relevance", (BATCH, 20), "ranker", 32)
        for v in ("3.1.0", "3.2.0")
    ),
]


def seed_for(spec: ModelSpec) -> int:
    """Stable 32-bit seed derived from "model/version"."""
    return int.from_bytes(hashlib.sha256(f"{spec.model}/{spec.version}".encode()).digest()[:4], "big")


def _value_info(name: str, shape: tuple[Dim, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _dense(rng: np.random.Generator, prefix: str, n_in: int, n_out: int) -> list[onnx.TensorProto]:
    weight = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
    bias = (rng.standard_normal(n_out) * 0.1).astype(np.float32)
    return [numpy_helper.from_array(weight, f"{prefix}_W"), numpy_helper.from_array(bias, f"{prefix}_b")]


def _mlp_nodes(x: str) -> list[onnx.NodeProto]:
    """Dense(fc1) -> Relu -> Dense(fc2), producing the tensor "logits"."""
    return [
        helper.make_node("MatMul", [x, "fc1_W"], ["fc1_mm"]),
        helper.make_node("Add", ["fc1_mm", "fc1_b"], ["fc1_pre"]),
        helper.make_node("Relu", ["fc1_pre"], ["fc1_out"]),
        helper.make_node("MatMul", ["fc1_out", "fc2_W"], ["fc2_mm"]),
        helper.make_node("Add", ["fc2_mm", "fc2_b"], ["logits"]),
    ]


def build_model(spec: ModelSpec) -> onnx.ModelProto:
    """Build one checked ONNX model for ``spec`` with deterministic weights."""
    rng = np.random.default_rng(seed_for(spec))
    n_in, n_out = int(spec.input_shape[-1]), int(spec.output_shape[-1])
    if spec.kind == "ranker":
        n_out = 1  # per-document score, the trailing [.., 1] is summed away
    inits = _dense(rng, "fc1", n_in, spec.hidden) + _dense(rng, "fc2", spec.hidden, n_out)
    nodes = _mlp_nodes(spec.input_name)
    if spec.kind == "binary":
        nodes.append(helper.make_node("Sigmoid", ["logits"], [spec.output_name]))
    elif spec.kind == "softmax":
        nodes.append(helper.make_node("Softmax", ["logits"], [spec.output_name], axis=-1))
    elif spec.kind == "ranker":  # [batch, 20, 1] -> [batch, 20]; opset 17 takes axes as an input
        inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "reduce_axes"))
        nodes.append(helper.make_node("ReduceSum", ["logits", "reduce_axes"], [spec.output_name], keepdims=0))
    else:
        raise ValueError(f"unknown model kind {spec.kind!r}")

    graph = helper.make_graph(
        nodes,
        spec.model.replace("-", "_"),
        [_value_info(spec.input_name, spec.input_shape)],
        [_value_info(spec.output_name, spec.output_shape)],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        ir_version=IR_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="modelcat-demo",
        producer_version="1",
        doc_string=f"modelcat demo model {spec.model} {spec.version} (synthetic weights)",
        model_version=1,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def build_all() -> list[tuple[ModelSpec, bytes]]:
    """Serialize every demo model in memory."""
    return [(spec, build_model(spec).SerializeToString()) for spec in SPECS]


def build_new_version(model: str, version: str) -> tuple[ModelSpec, bytes]:
    """A new version of the demo model ``model``: its signature, weights seeded by "model/version"."""
    like = next((spec for spec in SPECS if spec.model == model), None)
    if like is None:
        known = ", ".join(dict.fromkeys(spec.model for spec in SPECS))
        raise SystemExit(f"no demo model {model!r}; the demo models are {known}")
    spec = dataclasses.replace(like, version=version)
    return spec, build_model(spec).SerializeToString()


def relative_blob_path(digest_hex: str) -> Path:
    return Path("sha256") / digest_hex[:2] / digest_hex


def _io_entries(values: list[onnx.ValueInfoProto]) -> list[dict]:
    entries = []
    for value in values:
        tensor_type = value.type.tensor_type
        shape = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        entries.append({"name": value.name, "dtype": dtype, "shape": shape})
    return entries


def describe(spec: ModelSpec, data: bytes, path: str) -> dict:
    """Catalog-friendly summary of one built model."""
    graph = onnx.load_from_string(data).graph
    return {
        "model": spec.model,
        "version": spec.version,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "path": path,
        "inputs": _io_entries(list(graph.input)),
        "outputs": _io_entries(list(graph.output)),
    }


def main(argv: list[str] | None = None) -> int:
    default_out = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out, help="output folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="verify files match; exit 1 if missing or different")
    parser.add_argument(
        "--new",
        nargs=3,
        metavar=("MODEL", "VERSION", "FILE"),
        help="build a new version of a demo model (its signature, new weights) into FILE, to try modelcat register",
    )
    args = parser.parse_args(argv)
    if args.new:
        model, version, file = args.new
        spec, data = build_new_version(model, version)
        atomic_write(Path(file), data)
        print(json.dumps(describe(spec, data, file), indent=2))
        return 0
    out: Path = args.out.resolve()
    # Paths are shown from the repo root for the default folder, else relative to --out.
    shown_root = out.parent if out == default_out else out

    ok = True
    report = []
    for spec, data in build_all():
        target = out / relative_blob_path(hashlib.sha256(data).hexdigest())
        if args.check:
            if not target.is_file() or target.read_bytes() != data:
                print(f"mismatch or missing: {target}", file=sys.stderr)
                ok = False
        elif not (target.is_file() and target.read_bytes() == data):
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
        report.append(describe(spec, data, target.relative_to(shown_root).as_posix()))
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
