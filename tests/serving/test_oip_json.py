"""Large JSON requests decoded in bounded memory (``oip_json``): the same answer and the same errors as
``oip.parse_request`` (a replica's memory for them: test_replica_memory.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.serving import oip_json
from catalog.serving.oip import DATATYPES, InvalidRequest, TensorMeta, parse_request
from catalog.serving.oip_json import parse_request_bounded

INPUTS = (
    TensorMeta("a", "FP32", ("batch", 3)),
    TensorMeta("b", "INT64", ("batch",)),
    TensorMeta("c", "BOOL", (2, 2)),
    TensorMeta("d", "FP16", (None,), rank_known=False),
    TensorMeta("e", "UINT8", (2, "n", 2)),
    TensorMeta("s", "BYTES", ("m",)),
)
OUTPUTS = (TensorMeta("y", "FP32", ("batch",)),)
SPACE = st.sampled_from(["", "", " ", "\n", "\t ", "\r\n  "])
ODD = st.sampled_from(
    ["1e400", "-1e400", "-0", "0e0", "1E5", "-1.5e-3", "65504", "65520", "3.5e38", "2e-45", "1.0", "2**63",
     "9223372036854775808", "-1", "256", "true", "false", "null", '"NaN"', '"Infinity"', '"-Infinity"', '"x"',
     "{}", "[]", "NaN", "Infinity", "01", "1.", ".5", "+1", "0x10", "1_0", "--1"]
)  # fmt: skip
ELEMENT = {  # elements each datatype takes
    "FP32": st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False).map(repr), st.integers().map(str),
                      st.sampled_from(['"NaN"', '"Infinity"', '"-Infinity"'])),
    "FP16": st.floats(width=16, allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.5e}"),
    "INT64": st.integers(-(2**63), 2**63 - 1).map(str),
    "UINT8": st.integers(0, 255).map(str),
    "BOOL": st.sampled_from(["true", "false"]),
    "BYTES": st.text(max_size=4).map(json.dumps),
}  # fmt: skip


def model_input(name: str) -> TensorMeta:
    return next(m for m in INPUTS if m.name == name)


@st.composite
def array_text(draw: st.DrawFn, dims: list[int], element: st.SearchStrategy[str], nested: bool, clean: bool) -> str:
    """JSON text of an array of ``prod(dims)`` elements, flat or nested as ``dims``; unless ``clean``,
    sometimes one element too many or too few, a row too short, or an odd element."""
    odd = element if clean else st.one_of(element, element, element, element, ODD)
    sizes = st.just(0) if clean else st.sampled_from([0] * 9 + [1, -1])

    def items(depth: int) -> list[str]:
        size = max(dims[depth] + draw(sizes), 0)
        if depth == len(dims) - 1:
            return [draw(odd) for _ in range(size)]
        return [render(items(depth + 1)) for _ in range(size)]

    def render(parts: list[str]) -> str:
        return "[" + ",".join(draw(SPACE) + part + draw(SPACE) for part in parts) + "]"

    if nested and len(dims) >= 2:
        return render(items(0))
    return render([draw(odd) for _ in range(max(int(np.prod(dims)) + draw(sizes), 0))])


@st.composite
def request_text(draw: st.DrawFn) -> str:
    """A request for INPUTS as JSON text: well formed (``clean``), or wrong here and there."""
    clean = draw(st.booleans())

    def now_and_then(rate: int) -> bool:  # one time in ``rate``, unless clean
        return not clean and draw(st.integers(1, rate)) == 1

    batch, n, m = draw(st.integers(0, 4)), draw(st.integers(0, 3)), draw(st.integers(0, 3))
    d = draw(st.sampled_from([[3], [2, 2], [], [2, 1], [2, 0], [1, 1, 1]]))
    shapes = {"a": [batch, 3], "b": [batch], "c": [2, 2], "d": d, "e": [2, n, 2], "s": [m]}
    names = list(draw(st.permutations(list(shapes))))
    if now_and_then(10):
        del names[draw(st.integers(0, len(names) - 1))]  # an input missing
    if now_and_then(10):
        names.append(draw(st.sampled_from(names)))  # an input given twice
    entries = []
    for name in names:
        datatype = model_input(name).datatype
        datatype = draw(st.sampled_from([*DATATYPES, "FLOAT"])) if now_and_then(20) else datatype
        dims = shapes[name]
        data = draw(array_text(dims, ELEMENT.get(datatype, ELEMENT["FP32"]), draw(st.booleans()), clean))
        shape = draw(st.sampled_from([[*dims, 1], [-1], [*dims[:-1]]])) if now_and_then(10) else dims
        fields = {"name": json.dumps(name), "datatype": json.dumps(datatype), "shape": json.dumps(shape), "data": data}
        if now_and_then(10):
            fields["parameters"] = json.dumps({"binary_data_size": 4})
        if now_and_then(10):
            del fields[draw(st.sampled_from(sorted(fields)))]
        order = draw(st.permutations(sorted(fields)))
        key = {"data": draw(st.sampled_from(['"data"', '"data"', '"data"', '"d\\u0061ta"']))}
        entries.append("{" + ",".join(f"{key.get(k, json.dumps(k))}:{draw(SPACE)}{fields[k]}" for k in order) + "}")
    top = {"inputs": "[" + ",".join(entries) + "]"}
    if draw(st.booleans()):
        top["id"] = json.dumps(draw(st.text(max_size=4)))
    if draw(st.booleans()):
        top["outputs"] = json.dumps([{"name": "y", "parameters": {"binary_data": draw(st.booleans())}}])
    if draw(st.booleans()):
        top["parameters"] = json.dumps({"data": [1, 2], "inputs": [{"data": [3]}]})
    return draw(SPACE) + "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in top.items()) + "}" + draw(SPACE)


def outcome(
    parse: Any, body: bytes, header_length: str | None = None, inputs: tuple[TensorMeta, ...] = INPUTS
) -> tuple[Any, ...]:
    """What a parser answers, comparable: the error's message, or every field of the request with
    each array's datatype, shape and bytes (BYTES: its strings)."""
    try:
        request = parse(body, inputs, OUTPUTS, header_length)
    except InvalidRequest as e:
        return ("error", str(e))
    arrays = {
        name: (array.dtype.str, array.shape, array.tolist() if array.dtype.kind == "O" else array.tobytes())
        for name, array in request.inputs.items()
    }
    return ("ok", arrays, request.outputs, request.id, request.parameters, request.binary_outputs)


@contextmanager
def pieces_of(size: int) -> Iterator[list[int]]:
    """Make the bounded decoder take every array of any size, in pieces of about ``size`` bytes; yield
    the list of how many requests it read without ``json.loads`` of the whole text."""
    read: list[int] = []
    load = oip_json._load

    def counted(text: bytes | bytearray) -> Any:
        payload = load(text)
        read.append(1)
        return payload

    with (
        mock.patch.object(oip_json, "MIN_BYTES", 0),
        mock.patch.object(oip_json, "PIECE_BYTES", size),
        mock.patch.object(oip_json, "_load", counted),
    ):
        yield read


@given(request_text(), st.integers(1, 40))
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_bounded_decoder_answers_every_request_as_parse_request_does(text: str, piece: int) -> None:
    body = text.encode()
    with pieces_of(piece):
        assert outcome(parse_request_bounded, body) == outcome(parse_request, body)


@given(request_text(), st.integers(1, 40), st.data())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_bounded_decoder_answers_a_damaged_body_as_parse_request_does(
    text: str, piece: int, data: st.DataObject
) -> None:
    body = bytearray(text.encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body)))
        cut = data.draw(st.integers(0, 2))
        insert = data.draw(st.sampled_from(["", ",", "[", "]", '"', "{", "}", ":", " ", "\\", "0", "-", "e", "\x00",
                                            "\xe9", '"data":[1],', "null", "[[1]]"]))  # fmt: skip
        body[at : at + cut] = insert.encode()
    with pieces_of(piece):
        assert outcome(parse_request_bounded, bytes(body)) == outcome(parse_request, bytes(body))


@given(st.integers(0, 4), st.booleans(), st.integers(1, 40))
@settings(max_examples=100, deadline=None)
def test_a_well_formed_request_is_read_in_pieces(batch: int, nested: bool, piece: int) -> None:
    a = np.arange(batch * 3, dtype=np.float32).reshape(batch, 3) / 7
    b = np.arange(batch, dtype=np.int64) - 2**40
    data = {"a": a.tolist() if nested else a.reshape(-1).tolist(), "b": b.tolist()}
    entries = [{"name": n, "datatype": d, "shape": list(x.shape), "data": data[n]} for n, d, x in
               (("a", "FP32", a), ("b", "INT64", b))]  # fmt: skip
    body = json.dumps({"inputs": entries}).encode()
    with pieces_of(piece) as read:
        answer = outcome(parse_request_bounded, body, inputs=INPUTS[:2])
    assert read == [1] and answer == outcome(parse_request, body, inputs=INPUTS[:2])
    assert answer[1]["a"][2] == a.tobytes() and answer[1]["b"][2] == b.tobytes()


@pytest.mark.parametrize(
    "text",
    [
        '{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3], "data": [4, 5, 6]}]}',
        '{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3], "data": null}]}',
        '{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3], "d\\u0061ta": null}]}',
        '{"inputs": [], "inputs": [{"name": "b", "datatype": "INT64", "shape": [1], "data": [7]}]}',
        '{"id": "\\"data\\": [1, 2, 3]", "inputs": [{"name": "b", "datatype": "INT64", "shape": [1], "data": [7]}]}',
        '{"inputs": [{"name": "b", "datatype": "INT64", "shape": [2], "data": [7,, 8]}]}',
        '{"inputs": [{"name": "b", "datatype": "INT64", "shape": [2], "data": [7, 8,]}]}',
        '{"inputs": [{"name": "b", "datatype": "INT64", "shape": [1], "data": [7]}]} [1]',
        '{"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 3], "data": [[1, 2, 3] [4, 5, 6]]}]}',
        '{"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 3], "data": [[1, 2, 3], 4, 5, 6]}]}',
        '{"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3, [4, 5, 6]]}]}',
        '{"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 3], "data": [[[1, 2, 3]], [[4, 5, 6]]]}]}',
        '{"inputs": [{"name": "d", "datatype": "FP16", "shape": [2, 1], "data": [[1], 2]}]}',
        '{"inputs": [{"name": "d", "datatype": "FP16", "shape": [2, 1], "data": [1, [2]]}]}',
        '{"inputs": [{"name": "d", "datatype": "FP16", "shape": [2, 0], "data": [[], [], []]}]}',
        '{"inputs": [{"name": "d", "datatype": "FP16", "shape": [2, 0], "data": [[], []]}]}',
        '{"inputs": [{"name": "b", "datatype": "INT64", "shape": [2], "data": [1e400, 9223372036854775808]}]}',
        '{"inputs": [{"name": "s", "datatype": "BYTES", "shape": [2], "data": ["[1]", "]"]}]}',
        '\ufeff{"inputs": [{"name": "b", "datatype": "INT64", "shape": [1], "data": [7]}]}',
        '{"inputs": [{"name": "b", "datatype": "INT64", "shape": [1], "data": [7]}, {"data": [1]}]}',
        '{"inputs": {"data": [1]}}',
        '[{"inputs": [{"data": [1]}]}]',
    ],
    ids=[
        "duplicate data",
        "data then null",
        "escaped duplicate",
        "duplicate inputs",
        "data in a string",
        "two commas",
        "trailing comma",
        "extra data",
        "missing comma between rows",
        "row then numbers",
        "numbers then row",
        "too deep",
        "row then number",
        "number then row",
        "an empty row too many",
        "empty rows",
        "beyond int64",
        "brackets in strings",
        "byte order mark",
        "entry without name",
        "inputs an object",
        "top an array",
    ],
)
@pytest.mark.parametrize("piece", [1, 4, 1 << 20])
def test_odd_bodies_are_answered_as_parse_request_answers_them(text: str, piece: int) -> None:
    for body in (text.encode(), text.encode("utf-16")):
        with pieces_of(piece):
            assert outcome(parse_request_bounded, body) == outcome(parse_request, body)


def test_binary_data_after_a_large_json_input_is_still_read() -> None:
    a = np.linspace(-1, 1, 3 * 5000, dtype=np.float32).reshape(5000, 3)
    b = np.arange(5000, dtype=np.int64)
    header = json.dumps({"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [5000, 3], "data": a.reshape(-1).tolist()},
        {"name": "b", "datatype": "INT64", "shape": [5000], "parameters": {"binary_data_size": b.nbytes}},
    ]}).encode()  # fmt: skip
    body = header + b.tobytes()
    with pieces_of(1 << 12) as read:
        answer = outcome(parse_request_bounded, body, str(len(header)), INPUTS[:2])
    assert read == [1] and answer == outcome(parse_request, body, str(len(header)), INPUTS[:2])
    assert answer[1]["a"][2] == a.tobytes() and answer[1]["b"][2] == b.tobytes()


@pytest.mark.parametrize(
    "layout",
    ["flat", "nested", "tall and narrow", "with many strings"],
)
def test_megabytes_of_json_with_the_default_pieces_answer_as_parse_request(layout: str) -> None:
    """The constants the replica runs with: arrays over MIN_BYTES are read in pieces of PIECE_BYTES,
    except where reading them whole is cheaper (brackets denser than their numbers, or more strings
    and punctuation than MAX_TOKENS): those bodies are read as parse_request reads them."""
    rng = np.random.default_rng(3)
    rows = 1 if layout == "tall and narrow" else 3
    a = rng.standard_normal((150_000 // rows, rows)).astype(np.float32).reshape(-1, 3 if rows == 3 else 1)
    b = rng.integers(-(2**62), 2**62, len(a))
    data = a.tolist() if layout in ("nested", "tall and narrow") else a.reshape(-1).tolist()
    entries = [{"name": "a", "datatype": "FP32", "shape": list(a.shape), "data": data},
               {"name": "b", "datatype": "INT64", "shape": [len(b)], "data": b.tolist()}]  # fmt: skip
    inputs = (TensorMeta("a", "FP32", ("batch", a.shape[1])), TensorMeta("b", "INT64", ("batch",)))
    if layout == "with many strings":
        entries.append({"name": "s", "datatype": "BYTES", "shape": [3000], "data": [f"s{i}" for i in range(3000)]})
        inputs += (TensorMeta("s", "BYTES", (3000,)),)
    body = json.dumps({"inputs": entries}).encode()
    assert len(body) > 2 * oip_json.PIECE_BYTES
    read: list[int] = []
    load = oip_json._load
    with mock.patch.object(oip_json, "_load", lambda text: (load(text), read.append(1))[0]):
        answer = outcome(parse_request_bounded, body, inputs=inputs)
    assert answer == outcome(parse_request, body, inputs=inputs) and answer[0] == "ok"
    assert read == ([] if layout == "with many strings" else [1])
