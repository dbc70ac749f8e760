"""The shadow step's pure parts: which requests are mirrored (a draw from the request id) and when a
mirrored answer agrees with the live one (labels equal, scores within the tolerance)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from catalog.serving.mirror import compare_answers, compare_outputs, grpc_outputs, mirror_draw
from catalog.serving.oip_answer import encode_body
from catalog.serving.oip_grpc import inference_pb2 as pb


def _answer(*outputs: tuple[str, str, list[int], list[Any]]) -> bytes:
    tensors = [{"name": n, "datatype": d, "shape": s, "data": v} for n, d, s, v in outputs]
    return json.dumps({"model_name": "m", "outputs": tensors}).encode()


def test_the_mirror_draw_is_a_function_of_the_request_id_and_takes_its_percent() -> None:
    ids = [f"request-{i}" for i in range(20_000)]
    drawn = [rid for rid in ids if mirror_draw(rid, "fraud-scorer", 20)]
    assert drawn == [rid for rid in ids if mirror_draw(rid, "fraud-scorer", 20)]  # the same every time
    assert 0.19 <= len(drawn) / len(ids) <= 0.21
    assert set(drawn) <= {rid for rid in ids if mirror_draw(rid, "fraud-scorer", 50)}  # a larger share keeps these
    assert all(mirror_draw(rid, "fraud-scorer", 100) for rid in ids[:500])
    other = [rid for rid in ids if mirror_draw(rid, "recommender", 20)]
    assert 0.15 < len(set(drawn) & set(other)) / len(drawn) < 0.25  # another model draws independently


def test_scores_agree_within_the_tolerance_and_labels_only_when_equal() -> None:
    live = _answer(("score", "FP32", [2, 1], [[0.5], [0.25]]), ("label", "INT64", [2], [1, 0]))
    near = _answer(("score", "FP32", [2, 1], [[0.54], [0.21]]), ("label", "INT64", [2], [1, 0]))
    far = _answer(("score", "FP32", [2, 1], [[0.56], [0.25]]), ("label", "INT64", [2], [1, 1]))
    assert compare_answers(live, near, 0.05) == {"score": True, "label": True}
    assert compare_answers(live, far, 0.05) == {"score": False, "label": False}
    assert compare_answers(live, far, 0.1) == {"score": True, "label": False}
    assert compare_answers(live, live, 0.0) == {"score": True, "label": True}


@pytest.mark.parametrize(
    ("live", "copy", "agree"),
    [
        (("flag", "BOOL", [2], [True, False]), ("flag", "BOOL", [2], [True, False]), True),
        (("flag", "BOOL", [2], [True, False]), ("flag", "BOOL", [2], [True, True]), False),
        (("word", "BYTES", [1], ["fraud"]), ("word", "BYTES", [1], ["fraud"]), True),
        (("word", "BYTES", [1], ["fraud"]), ("word", "BYTES", [1], ["ok"]), False),
        (("class", "INT64", [1], [3]), ("class", "INT32", [1], [3]), False),  # a label's type is part of it
        (("score", "FP32", [2], [0.5, 0.5]), ("score", "FP64", [2], [0.5, 0.51]), True),  # scores of any width
        (("score", "FP32", [2], [0.5, 0.5]), ("score", "FP32", [1, 2], [[0.5, 0.5]]), False),  # another shape
        (("score", "FP32", [2], [0.5, 0.5]), ("score", "FP32", [3], [0.5, 0.5, 0.5]), False),
        (("score", "FP32", [1], ["0.5"]), ("score", "FP32", [1], [0.5]), False),  # a string is no score
        (("score", "FP64", [1], ["NaN"]), ("score", "FP64", [1], ["NaN"]), True),  # JSON's NaN, as OIP writes it
        (("score", "FP64", [1], ["NaN"]), ("score", "FP64", [1], [0.0]), False),
        (("score", "FP64", [1], ["Infinity"]), ("score", "FP64", [1], ["Infinity"]), True),
        (("score", "FP64", [1], ["Infinity"]), ("score", "FP64", [1], [1e308]), False),
        (("score", "FP64", [1], ["Infinity"]), ("score", "FP64", [1], ["-Infinity"]), False),
        (("score", "FP32", [1], [0.5]), ("label", "FP32", [1], [0.5]), False),  # no output of that name
    ],
)
def test_an_output_agrees_by_its_kind(live: tuple[Any, ...], copy: tuple[Any, ...], agree: bool) -> None:
    assert compare_answers(_answer(live), _answer(copy), 0.05) == {live[0]: agree}


def test_outputs_only_the_copy_has_are_not_compared() -> None:
    live = _answer(("score", "FP32", [1], [0.5]))
    assert compare_answers(live, _answer(("score", "FP32", [1], [0.5]), ("extra", "BOOL", [1], [True])), 0.0) == {
        "score": True
    }


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"outputs": [{"data": [1]}]}', b'{"outputs": 3}'])
def test_an_answer_that_is_no_inference_response_cannot_be_compared(body: bytes) -> None:
    live = _answer(("score", "FP32", [1], [0.5]))
    with pytest.raises(ValueError, match="the mirrored answer is not an inference response"):
        compare_answers(live, body, 0.05)
    with pytest.raises(ValueError, match="the live answer is not an inference response"):
        compare_answers(body, live, 0.05)


def _binary_answer(*outputs: tuple[str, str, list[int], np.ndarray]) -> tuple[bytes, str]:
    body, json_length = encode_body("m", "1", {n: a.reshape(s) for n, _, s, a in outputs}, binary={"score", "label"})
    assert json_length is not None
    return body, str(json_length)


def test_binary_answers_compare_as_their_json_would() -> None:
    scores, labels = np.array([0.5, np.nan], np.float32), np.array(["fraud", "ok"], dtype=object)
    live, live_length = _binary_answer(("score", "FP32", [2, 1], scores), ("label", "BYTES", [2], labels))
    near = _answer(("score", "FP32", [2, 1], [0.52, "NaN"]), ("label", "BYTES", [2], ["fraud", "ok"]))
    far = _answer(("score", "FP32", [2, 1], [0.7, "NaN"]), ("label", "BYTES", [2], ["ok", "ok"]))
    assert compare_answers(live, near, 0.05, live_length) == {"score": True, "label": True}
    assert compare_answers(live, far, 0.05, live_length) == {"score": False, "label": False}
    assert compare_answers(live, live, 0.0, live_length, live_length) == {"score": True, "label": True}
    with pytest.raises(ValueError, match="the live answer is not an inference response"):
        compare_answers(live[:-3], near, 0.05, live_length)  # its binary data cut short


def _grpc_answer(raw: bool, score: list[float], label: list[bool]) -> bytes:
    response = pb.ModelInferResponse(model_name="m", model_version="1")
    score_tensor = response.outputs.add(name="score", datatype="FP32", shape=[len(score)])
    label_tensor = response.outputs.add(name="label", datatype="BOOL", shape=[len(label)])
    if raw:
        response.raw_output_contents.extend(
            [np.array(score, dtype="<f4").tobytes(), np.array(label, dtype=np.bool_).tobytes()]
        )
    else:
        score_tensor.contents.fp32_contents.extend(score)
        label_tensor.contents.bool_contents.extend(label)
    return response.SerializeToString()


def test_grpc_answers_compare_by_the_same_rules_raw_or_typed() -> None:
    live = grpc_outputs(_grpc_answer(True, [0.25, 0.5], [True, False]), "live")
    assert compare_outputs(live, grpc_outputs(_grpc_answer(False, [0.25, 0.5], [True, False]), "copy"), 0.0) == {
        "score": True,
        "label": True,
    }
    far = grpc_outputs(_grpc_answer(True, [1.25, 1.5], [True, False]), "copy")
    assert compare_outputs(live, far, 0.05) == {"score": False, "label": True}
    assert compare_outputs(live, far, 1.0) == {"score": True, "label": True}
    with pytest.raises(ValueError, match="the mirrored answer is not an inference response"):
        grpc_outputs(b"\xff\xff", "mirrored")
    short = pb.ModelInferResponse.FromString(_grpc_answer(True, [0.25], [True]))
    short.raw_output_contents[0] = b"\x00\x00"
    with pytest.raises(ValueError, match="the live answer is not an inference response"):
        grpc_outputs(short.SerializeToString(), "live")
