"""`modelcat analyze` takes requests, errors and latency from the telemetry over the assignment log's."""

from __future__ import annotations

from dataclasses import replace

from catalog.analysis.data import ArmData
from catalog.analysis.run import with_telemetry
from catalog.telemetry.reading import TelemetryReading, VersionTelemetry
from tests.analysis.helpers import OBSERVATIONS

LOG = replace(OBSERVATIONS, telemetry_source="assignment-log", queries={"assignments": "select ..."}, notes=())


def test_telemetry_replaces_the_assignment_logs_counts_and_names_its_source():
    reading = TelemetryReading(
        "prometheus",
        {
            "2.1.0": VersionTelemetry("2.1.0", 3300, 3, 40.0, 190.0, 25),
            "2.3.0": VersionTelemetry("2.3.0", 10, 0, 30.0, 60.0, 0),
        },
        {"requests": "sum by (version) (...)"},
        ("Prometheus at http://127.0.0.1:9090",),
    )
    merged = with_telemetry(LOG, reading)
    arms = {a.version: a for a in merged.arms}
    assert (arms["2.1.0"].requests, arms["2.1.0"].errors, arms["2.1.0"].latency_p99_ms) == (3300, 3, 190.0)
    assert arms["2.1.0"].units == 2900 and arms["2.1.0"].outcomes == LOG.arms[0].outcomes  # the log's
    # a version Prometheus has no series of: no numbers (the analysis holds on it), not the log's
    assert (arms["2.2.0"].requests, arms["2.2.0"].latency_p99_ms, arms["2.2.0"].units) == (0, None, 2100)
    assert arms["2.3.0"] == ArmData("2.3.0", 0, 10, 0, 30.0, 60.0, 0)
    assert merged.telemetry_source == "prometheus"
    assert merged.queries == {"assignments": "select ...", "requests": "sum by (version) (...)"}
    assert merged.notes == ("Prometheus at http://127.0.0.1:9090",)


def test_without_any_telemetry_series_the_assignment_logs_counts_stay_and_the_notes_say_so():
    reading = TelemetryReading("router-counters", {}, {}, ("no router answered",))
    merged = with_telemetry(LOG, reading)
    assert merged.arms == LOG.arms and merged.telemetry_source == "assignment-log"
    assert merged.notes == (
        "no router answered",
        "no telemetry series: requests, errors and latency are the assignment log's",
    )


def test_a_prometheus_behind_the_assignment_log_is_said_to_be_behind():
    # scraped every few seconds: right after the traffic, the last requests are in the log and not yet in it
    reading = TelemetryReading(
        "prometheus",
        {"2.1.0": VersionTelemetry("2.1.0", 3000, 0, 40.0, 190.0, 0), "2.2.0": VersionTelemetry("2.2.0", 2250, 0)},
        {},
        (),
    )
    merged = with_telemetry(LOG, reading)
    stale = (
        "prometheus counted fewer requests than the assignment log (2.1.0 3000 of 3100): its last scrape is"
        " behind the log; analyze again in a few seconds for the whole period"
    )
    assert merged.notes == (stale,)
