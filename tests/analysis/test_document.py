"""The decision document: deterministic bytes, every field of the design, and valid against
schemas/analysis.schema.json (whose objects allow no undocumented field)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import jsonschema
import pytest

from catalog.analysis.data import Decision, EpochCheck, MetricResult, VersionDecision
from catalog.analysis.document import SCHEMA, analysis_document, dump_document, observations_at, rounded
from tests.analysis.helpers import DECISION, LOOKS, OBSERVATIONS, OFFLINE, PLAN, TIMES
from tests.helpers import ROOT

SCHEMA_PATH = ROOT / "schemas" / "analysis.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def document(**changes: object) -> dict:
    return json.loads(dump(**changes))


def dump(**changes: object) -> str:
    args = {"plan": PLAN, "observations": OBSERVATIONS, "decision": DECISION} | changes
    return dump_document(
        analysis_document(args["plan"], args["observations"], args["decision"], offline_metrics=OFFLINE, looks=LOOKS)
    )


def test_the_same_data_gives_the_same_bytes_whatever_the_order_it_arrives_in():
    first = dump()
    rebuilt = replace(
        OBSERVATIONS,
        arms=tuple(reversed(copy.deepcopy(OBSERVATIONS.arms))),
        epochs=tuple(reversed(OBSERVATIONS.epochs)),
        queries=dict(reversed(list(OBSERVATIONS.queries.items()))),
    )
    assert dump(observations=rebuilt) == first
    assert first.endswith("}\n") and json.loads(first)["schema"] == SCHEMA == "modelcat/analysis-v1"
    keys = list(json.loads(first))
    assert keys == sorted(keys)


def test_floats_are_rounded_to_six_significant_digits_and_nan_is_null():
    assert rounded({"a": 210.123456789, "b": [1 / 3, float("nan")], "c": float("inf"), "d": 7, "e": True}) == {
        "a": 210.123,
        "b": [0.333333, None],
        "c": None,
        "d": 7,
        "e": True,
    }
    candidate = document()["versions"][1]
    assert candidate["latency_ms"]["p99"] == 210.123
    assert candidate["error_rate"] == 0.004  # 9 / 2250


def test_the_document_carries_every_version_epoch_join_and_the_source():
    doc = document()
    assert [(v["version"], v["role"], v["verdict"]) for v in doc["versions"]] == [
        ("2.1.0", "baseline", None),
        ("2.2.0", "candidate", "promote"),
    ]
    baseline, candidate = doc["versions"]
    assert baseline["metrics"] == [] and baseline["reasons"] == []
    assert baseline["outcomes"]["conversion"] == {"n": 2900, "mean": 0.1}
    assert baseline["offline_metrics"] == {"ndcg@10": 0.41}
    assert (candidate["units"], candidate["requests"], candidate["errors"]) == (2100, 2250, 9)
    assert candidate["latency_ms"] == {"p50": 44.0, "p99": 210.123}
    assert candidate["reasons"] == ["conversion: +3 points [+1.2, +4.8] at alpha 0.05", "every guardrail passed"]
    primary = candidate["metrics"][0]
    assert primary == {
        "name": "conversion",
        "kind": "primary",
        "estimate": 0.03,
        "difference": 0.03,
        "interval": [0.012, 0.048],
        "p_value": 0.0021,
        "p_adjusted": None,
        "vote": "pass",
        "reason": "2.2.0 converts better than 2.1.0 at alpha 0.05",
    }
    assert [(e["start"], e["chi_square"], e["srm"]) for e in doc["epochs"]] == [
        (TIMES[0], 0.0, False),
        (TIMES[1], 1.2, False),
        (TIMES[2], 0.8, False),
    ]
    assert doc["epochs"][2]["declared"] == {"2.1.0": 50, "2.2.0": 50}
    assert doc["joins"]["unattributed"] == 120 and doc["joins"]["out_of_window"] == 40
    assert doc["source"]["telemetry"] == "prometheus"
    assert "modelcat_router_requests_total" in doc["source"]["queries"]["requests"]
    assert doc["plan"]["primary"]["outcome"] == "conversion"
    assert doc["plan"]["guardrails"]["outcomes"] == [
        {"outcome": "basket_value", "kind": "mean", "max_drop": 2.0, "direction": "increase"}
    ]
    assert (doc["since"], doc["until"], doc["environment"]) == (TIMES[0], TIMES[3], "production")


def test_the_history_has_a_point_per_look_and_version_with_the_units_then():
    history = document()["history"]
    assert [(p["time"], p["version"], p["units"]) for p in history] == [
        (TIMES[1], "2.1.0", 900),
        (TIMES[1], "2.2.0", 100),
        (TIMES[2], "2.1.0", 1700),
        (TIMES[2], "2.2.0", 400),
        (TIMES[3], "2.1.0", 2900),
        (TIMES[3], "2.2.0", 2100),
    ]
    first = history[1]["metrics"][0]
    assert first == {"name": "conversion", "difference": 0.05, "interval": [-0.04, 0.14], "vote": "hold"}
    assert history[0]["metrics"] == []  # the baseline is not compared with itself


def test_observations_at_a_time_are_the_snapshots_up_to_it():
    then = observations_at(OBSERVATIONS, TIMES[2])
    assert [(a.version, a.units, a.requests) for a in then.arms] == [("2.1.0", 1700, 0), ("2.2.0", 400, 0)]
    assert then.until == TIMES[2] and then.epochs == ()
    assert then.arms[1].outcomes["conversion"].n == 400
    before = observations_at(OBSERVATIONS, TIMES[0])
    assert [a.units for a in before.arms] == [0, 0] and before.arms[0].outcomes == {}


def test_an_epoch_the_statistics_did_not_check_is_listed_with_nulls():
    unchecked = replace(DECISION, epochs=DECISION.epochs[1:])
    epochs = document(decision=unchecked)["epochs"]
    assert (epochs[0]["start"], epochs[0]["chi_square"], epochs[0]["p_value"]) == (TIMES[0], None, None)
    assert len(epochs) == 3


def test_an_srm_withholds_and_the_document_says_so():
    flagged = Decision(
        (EpochCheck(OBSERVATIONS.epochs[0], 31.5, 2e-8, True), *DECISION.epochs[1:]),
        True,
        (VersionDecision("2.2.0", "hold", ("sample ratio mismatch in the epoch from 2026-12-01",), ()),),
    )
    doc = document(decision=flagged)
    assert doc["srm"] is True and doc["epochs"][0]["srm"] is True
    assert doc["versions"][1]["verdict"] == "hold"
    assert list(validator().iter_errors(doc)) == []


@pytest.mark.parametrize(
    "variant",
    ["full", "no primary, no data", "a version no longer routed"],
)
def test_the_document_validates_against_the_json_schema(variant: str):
    if variant == "full":
        doc = document()
    elif variant == "no primary, no data":
        plan = replace(PLAN, primary=None, max_error_rate=None, max_p99_latency_ms=None, outcome_guardrails=())
        empty = replace(OBSERVATIONS, arms=(), epochs=(), queries={}, notes=("no Prometheus",), since="", until="")
        hold = MetricResult("error_rate", "guardrail", "hold", "no data")
        doc = json.loads(
            dump_document(analysis_document(plan, empty, Decision((), False, (VersionDecision("2.2.0", "hold", ("no data",), (hold,)),))))
        )  # fmt: skip
        assert doc["versions"][1]["requests"] == 0 and doc["versions"][1]["error_rate"] is None
    else:
        doc = document(plan=replace(PLAN, candidates=()))
        assert [v["version"] for v in doc["versions"]] == ["2.1.0", "2.2.0"]
    assert list(validator().iter_errors(doc)) == []


def test_the_schema_refuses_a_field_it_does_not_document():
    doc = document()
    doc["versions"][1]["surprise"] = 1
    errors = list(validator().iter_errors(doc))
    assert errors and "surprise" in errors[0].message


def test_the_schema_takes_a_further_join_count_but_only_a_count():
    doc = document()
    doc["joins"]["elsewhere"] = 3
    assert list(validator().iter_errors(doc)) == []
    doc["joins"]["elsewhere"] = "three"
    assert list(validator().iter_errors(doc))
