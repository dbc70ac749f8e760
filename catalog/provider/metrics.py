"""Resource ``modelcat_metrics``: the stack's Prometheus (Debian's ``/usr/bin/prometheus``).

It runs on loopback with its TSDB under the run directory and a bounded retention, and scrapes
what the scrape target files list (``catalog.telemetry.prometheus``): the run records write them
as routers and replicas start and stop (``catalog.provider.runstate``), so the targets follow the
processes without a restart. ``port = 0`` takes a free port, kept in the record and the state.
Like a router, a Prometheus that died (checked by pid and start time) makes the resource gone,
and the next apply starts it again. Every setting replaces it.
"""

from __future__ import annotations

import contextlib
import functools
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tf.iface import (
    CreateContext,
    DeleteContext,
    ImportContext,
    PlanContext,
    ReadContext,
    State,
    UpdateContext,
)
from tf.schema import Attribute, Schema
from tf.types import Number, String, Unknown
from tf.utils import Diagnostics

from catalog.domain.bodies import DEFAULT_HOST, DEFAULT_RETENTION, DEFAULT_SCRAPE_INTERVAL, MetricsBody
from catalog.errors import ModelcatError, ProcessFailed
from catalog.provider.body_schema import body_schema
from catalog.provider.config import RunResource
from catalog.provider.processes import (
    ProcessId,
    http_client,
    is_alive,
    start_process,
    stop_process,
    wait_port_free,
)
from catalog.telemetry.prometheus import PROMETHEUS_BINARY, MetricsDir, PrometheusRecord, prometheus_argv

if TYPE_CHECKING:
    from catalog.provider.runstate import RunDir

__all__ = ["MetricsResource", "live_prometheus", "start_prometheus", "stop_prometheus"]

START_TIMEOUT = 60.0
_ATTEMPTS = 3  # a free port found may be taken before Prometheus binds it


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _when_ready(url: str, _log: Path, _offset: int) -> str | None:
    """``url`` once Prometheus says it is ready (``GET /-/ready``), else None."""
    import httpx

    with contextlib.suppress(httpx.HTTPError), http_client(1.0) as client:
        if client.get(f"{url}/-/ready").status_code == 200:
            return url
    return None


def ident_of(record: PrometheusRecord) -> ProcessId:
    return ProcessId(record.pid, record.start_time)


def start_prometheus(
    run: RunDir,
    host: str = DEFAULT_HOST,
    port: int = 0,
    retention: str = DEFAULT_RETENTION,
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL,
) -> PrometheusRecord:
    """Start the run directory's Prometheus (on record from the moment it exists); its record once
    it is ready. ProcessFailed if the binary is missing or it does not get ready."""
    if not Path(PROMETHEUS_BINARY).is_file():
        raise ProcessFailed(f"{PROMETHEUS_BINARY} is not installed (Debian's prometheus: make system-deps)")
    metrics = MetricsDir(run.root)
    metrics.write_config(scrape_interval)
    for attempt in range(_ATTEMPTS):
        chosen = port or _free_port(host)
        url = _url(host, chosen)

        def record(ident: ProcessId, url: str = url, chosen: int = chosen) -> PrometheusRecord:
            written = PrometheusRecord(
                url, ident.pid, ident.start_time, host, chosen, retention, scrape_interval, str(metrics.log)
            )
            written.write(metrics)
            return written

        try:
            started = start_process(
                prometheus_argv(metrics, host, chosen, retention),
                metrics.log,
                f"Prometheus of {run.root.name}",
                timeout=START_TIMEOUT,
                on_spawn=record,
                announced=functools.partial(_when_ready, url),
            )
        except ProcessFailed:
            metrics.record.unlink(missing_ok=True)
            if port or attempt == _ATTEMPTS - 1:
                raise
            continue
        return record(started.ident)
    raise AssertionError("unreachable")  # pragma: no cover


def live_prometheus(run: RunDir) -> PrometheusRecord | None:
    """The run directory's Prometheus if it runs (identity-checked)."""
    record = PrometheusRecord.read(MetricsDir(run.root))
    return record if record is not None and is_alive(ident_of(record)) else None


def stop_prometheus(run: RunDir) -> PrometheusRecord | None:
    """Stop the run directory's Prometheus, if one is recorded, and remove its record."""
    metrics = MetricsDir(run.root)
    record = PrometheusRecord.read(metrics)
    if record is None:
        return None
    if stop_process(ident_of(record)):
        wait_port_free(record.url)
    metrics.record.unlink(missing_ok=True)
    return record


class MetricsResource(RunResource):
    """The stack's Prometheus."""

    @classmethod
    def get_name(cls) -> str:
        return "metrics"

    @classmethod
    def get_schema(cls) -> Schema:
        return body_schema(
            MetricsBody,
            computed=[
                Attribute("url", String(), description="Prometheus's base URL", computed=True),
                Attribute("pid", Number(), description="Prometheus's process id", computed=True),
            ],
        )

    def validate(self, diags: Diagnostics, type_name: str, config: dict[str, Any]) -> None:
        super().validate(diags, type_name, config)
        for key in ("retention", "scrape_interval"):
            value = config.get(key)
            if isinstance(value, str) and not value.strip():
                diags.add_error(f"{type_name}: {key} is empty", "e.g. 2d, 12h, 5s", path=[key])

    @staticmethod
    def _with(state: State, record: PrometheusRecord) -> State:
        return {**state, "url": record.url, "pid": record.pid}

    def _live(self, state: State) -> PrometheusRecord | None:
        record = live_prometheus(self.run)
        pid = state.get("pid")
        if record is None or (pid not in (None, Unknown) and int(pid) != record.pid):
            return None
        return record

    def create(self, ctx: CreateContext, planned: State) -> State | None:
        planned = {
            **planned,
            "host": planned.get("host") or DEFAULT_HOST,
            "port": int(planned.get("port") or 0),
            "retention": planned.get("retention") or DEFAULT_RETENTION,
            "scrape_interval": planned.get("scrape_interval") or DEFAULT_SCRAPE_INTERVAL,
        }
        try:
            stop_prometheus(self.run)  # one per stack: a leftover one goes first
            record = start_prometheus(
                self.run, planned["host"], planned["port"], planned["retention"], planned["scrape_interval"]
            )
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_metrics {planned.get('name')}: cannot start Prometheus", str(e))
            return None
        return self._with(planned, record)

    def read(self, ctx: ReadContext, current: State) -> State | None:
        try:
            record = self._live(current)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_metrics {current.get('name')}: {e}")
            return current
        return None if record is None else self._with(current, record)

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State | None:
        return planned

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        return {**planned, "url": current.get("url"), "pid": current.get("pid")}  # every setting replaces

    def delete(self, ctx: DeleteContext, current: State) -> None:
        try:
            record = PrometheusRecord.read(MetricsDir(self.run.root))
            pid = current.get("pid")
            newer = record is not None and pid not in (None, Unknown) and int(pid) != record.pid
            if newer and record is not None and is_alive(ident_of(record)):
                return  # the record belongs to a newer Prometheus of the same stack
            stop_prometheus(self.run)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_metrics {current.get('name')}: {e}")

    def import_(self, ctx: ImportContext, id: str) -> State | None:
        try:
            record = live_prometheus(self.run)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_metrics {id}: {e}")
            return None
        if record is None:
            ctx.diagnostics.add_error(f"modelcat_metrics {id}: no Prometheus runs in {self.run.root}")
            return None
        state = {
            "name": id,
            "host": record.host,
            "port": record.port,
            "retention": record.retention,
            "scrape_interval": record.scrape_interval,
        }
        return self._with(state, record)
