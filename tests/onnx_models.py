"""Small real ONNX models for tests, built with onnx's own helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def dense_model(
    n_in: int = 16,
    n_out: int = 1,
    *,
    hidden: int = 32,
    seed: int = 0,
    input_name: str = "features",
    output_name: str = "fraud_probability",
    extra_output: bool = False,
) -> onnx.ModelProto:
    """x[batch, n_in] -> dense(hidden) -> relu -> dense(n_out) -> sigmoid, float32 (~4*(n_in+n_out)*hidden bytes)."""
    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    weights = [tensor("w1", n_in, hidden), tensor("b1", hidden), tensor("w2", hidden, n_out), tensor("b2", n_out)]
    nodes = [
        helper.make_node("MatMul", [input_name, "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["z0"]),
        helper.make_node("Add", ["z0", "b2"], ["z"]),
        helper.make_node("Sigmoid", ["z"], [output_name]),
    ]
    outputs = [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", n_out])]
    if extra_output:
        nodes.append(helper.make_node("Identity", ["z"], ["logits"]))
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_out]))
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", n_in])]
    graph = helper.make_graph(nodes, "dense", inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-tests")
    model.ir_version = 9
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def save_with_external_data(model: onnx.ModelProto, folder: Path, location: str = "weights.bin") -> Path:
    """model.onnx in ``folder`` with every initializer in the external file ``location``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(
        model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location, size_threshold=0
    )
    return path


def point_external_data_at(path: Path, location: str) -> None:
    """Rewrite every external-data location in the model file at ``path`` (for hostile fixtures)."""
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


def zipmap_classifier(n_features: int = 4, classes: tuple[int, ...] = (0, 1, 2)) -> onnx.ModelProto:
    """What skl2onnx writes for a classifier by default: ``output_label`` int64[N] and
    ``output_probability``, a ZipMap of the scores: ``seq(map(int64, tensor(float)))``."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node(
            "LinearClassifier",
            ["float_input"],
            ["label", "probabilities"],
            domain="ai.onnx.ml",
            classlabels_ints=list(classes),
            coefficients=rng.standard_normal(len(classes) * n_features).astype(np.float32).tolist(),
            intercepts=[0.0] * len(classes),
            multi_class=1,
            post_transform="SOFTMAX",
        ),
        helper.make_node("Identity", ["label"], ["output_label"]),
        helper.make_node(
            "ZipMap", ["probabilities"], ["output_probability"], domain="ai.onnx.ml", classlabels_int64s=list(classes)
        ),
    ]
    probability_map = helper.make_map_type_proto(
        TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])
    )
    outputs = [
        helper.make_tensor_value_info("output_label", TensorProto.INT64, [None]),
        helper.make_value_info("output_probability", helper.make_sequence_type_proto(probability_map)),
    ]
    inputs = [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, n_features])]
    graph = helper.make_graph(nodes, "skl2onnx-like", inputs, outputs)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="skl2onnx")
    model.ir_version = 9
    return model


def identity_model(value_type: onnx.TypeProto, *, opset: int = 25) -> onnx.ModelProto:
    """Input ``x`` of ``value_type`` passed through Identity to output ``y`` (any tensor element
    type, sequence or optional value the opset's Identity takes)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_value_info("x", value_type)],
        [helper.make_value_info("y", value_type)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="modelcat-tests")


def dynamo_like(name: str = "x" * 300) -> onnx.ModelProto:
    """A dense model with the dims torch.onnx.export(dynamo=True) writes and a 300-character input."""
    model = dense_model(seed=61, input_name=name)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "2*s0"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "s0 + 1"
    return model
