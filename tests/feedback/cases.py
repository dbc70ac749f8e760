"""Outcome events, good and bad, with the field each bad one is refused for: one list that the
validator, the router's POST /v2/feedback and ``modelcat feedback import`` are all tested on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

RECEIVED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OUTCOMES: dict[str, Any] = {"conversion": "proportion", "basket_value": "mean", "is_fraud": "label"}

GOOD = {"event_id": "e-1", "request_id": "8f3a0c", "outcome": "conversion", "value": 1}


def event(**changes: Any) -> dict[str, Any]:
    """The good event with ``changes`` (a value of None removes the field)."""
    return {k: v for k, v in {**GOOD, **changes}.items() if v is not None}


# (what, event, the field it is refused for, or None when it is accepted)
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("a request's conversion", event(), None),
    ("a unit's conversion, true", event(request_id=None, unit="alice", value=True), None),
    ("a basket value", event(outcome="basket_value", value=42.5), None),
    ("a fraud label", event(outcome="is_fraud", value=0), None),
    ("a time with an offset", event(time="2026-12-06T13:00:00+02:00"), None),
    ("a time 4 minutes ahead", event(time="2026-12-06T12:04:00Z"), None),
    ("no event_id", event(event_id=None), "event_id"),
    ("an empty event_id", event(event_id=""), "event_id"),
    ("an event_id of 129 characters", event(event_id="e" * 129), "event_id"),
    ("an event_id with a newline", event(event_id="e\n1"), "event_id"),
    ("a number for an event_id", event(event_id=7), "event_id"),
    ("neither request_id nor unit", event(request_id=None), "request_id"),
    ("both request_id and unit", event(unit="alice"), "request_id"),
    ("a request_id with a space", event(request_id="8f3a 0c"), "request_id"),
    ("an empty unit", event(request_id=None, unit=""), "unit"),
    ("an undeclared outcome", event(outcome="convrsion"), "outcome"),
    ("no outcome", event(outcome=None), "outcome"),
    ("no value", event(value=None), "value"),
    ("a conversion of 2", event(value=2), "value"),
    ("a conversion of 0.5", event(value=0.5), "value"),
    ("a conversion of 'yes'", event(value="yes"), "value"),
    ("a basket value of true", event(outcome="basket_value", value=True), "value"),
    ("a basket value that is text", event(outcome="basket_value", value="12"), "value"),
    ("a label of 3", event(outcome="is_fraud", value=3), "value"),
    ("a time without an offset", event(time="2026-12-06T12:00:00"), "time"),
    ("a date for a time", event(time="2026-12-06"), "time"),
    ("a time 6 minutes ahead", event(time="2026-12-06T12:06:00Z"), "time"),
    ("a time that is no time", event(time="2026-13-45T99:00:00Z"), "time"),
    ("an unknown field", event(valeu=1), "valeu"),
]
BAD = [case for case in CASES if case[2] is not None]


def received_at(row: dict[str, Any], received: datetime) -> dict[str, Any]:
    """``row`` as if received at ``received`` rather than ``RECEIVED``: its time (when it is one with
    an offset) moved by the difference, so "6 minutes ahead" stays 6 minutes ahead."""
    try:
        moment = datetime.fromisoformat(row["time"])
    except (KeyError, TypeError, ValueError):
        return row
    if moment.tzinfo is None:
        return row
    return {**row, "time": (moment + (received - RECEIVED)).isoformat()}
