"""Processes the run records list that Terraform no longer accounts for, and stopping them.

An apply stopped hard (a second Ctrl-C makes Terraform exit at once) can leave run records its
state never learned of: replicas of an endpoint being created, or of a replaced ("deposed") one
whose deletion never ran. Once Terraform is done with a stack:

- in a stack the catalog declares, a deposed record with a running process is a leftover: a
  successful apply deletes every object it replaced;
- in a stack being destroyed (``destroy``, or an orphan stack ``apply`` removes), every record is
  (its Prometheus's too).

``find_leftovers`` lists them (status shows them; plan those a Terraform plan does not already
remove, see ``untracked``), ``stop_leftovers`` stops their processes (identity-checked, drained)
and removes their records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.provider.metrics import ident_of
from catalog.provider.processes import ProcessId, is_alive, stop_process, wait_port_free
from catalog.provider.runstate import EndpointRecord, RouteRecord, RunDir, load_endpoint_records, load_route_records
from catalog.telemetry.prometheus import MetricsDir, PrometheusRecord

Record = EndpointRecord | RouteRecord | PrometheusRecord

__all__ = ["Leftover", "find_leftovers", "record_subject", "stop_leftovers", "untracked"]


@dataclass(frozen=True, slots=True)
class Leftover:
    """A run record and those of its processes that still run."""

    stack: str
    subject: str  # as plan names it, e.g. "checkout: fraud-scorer 1.4.0 endpoint (replaced)"
    record: Record
    running: tuple[tuple[ProcessId, str], ...]  # (process, url)

    def line(self) -> str:
        where = ", ".join(f"pid {ident.pid} at {url}" for ident, url in self.running)
        return f"{self.subject}: still runs ({where})"

    def as_dict(self) -> dict[str, object]:
        return {
            "stack": self.stack,
            "subject": self.subject,
            "deposed": getattr(self.record, "deposed", False),
            "processes": [{"pid": ident.pid, "url": url} for ident, url in self.running],
        }


def record_subject(record: Record) -> str:
    """What a record runs, in the words of ``catalog.synth.changes``."""
    if isinstance(record, PrometheusRecord):
        return "Prometheus"
    if isinstance(record, RouteRecord):
        return f"{record.application}: router"
    application = record.labels.get("modelcat/application") or record.name.split(".")[0]
    return f"{application}: {record.model} {record.version} endpoint" + (" (replaced)" if record.deposed else "")


def _processes(record: Record) -> list[tuple[ProcessId, str]]:
    if isinstance(record, PrometheusRecord):
        return [(ident_of(record), record.url)]
    if isinstance(record, RouteRecord):
        return [(record.ident, record.url)]
    return [(instance.ident, instance.url) for instance in record.instances]


def find_leftovers(run_dir: Path, stack: str, *, everything: bool = False) -> list[Leftover]:
    """Deposed endpoint records with a process still running, or with ``everything`` every record
    (routers and Prometheus included, stale ones too: nothing of a destroyed stack stays on record)."""
    if not run_dir.is_dir():
        return []
    records: list[Record] = [r for r in load_endpoint_records(run_dir) if everything or r.deposed]
    if everything:
        records += load_route_records(run_dir)
        records += [r for r in [PrometheusRecord.read(MetricsDir(run_dir))] if r is not None]
    found = []
    for record in records:
        running = tuple((ident, url) for ident, url in _processes(record) if is_alive(ident))
        if running or everything:
            found.append(Leftover(stack, record_subject(record), record, running))
    return found


def untracked(leftovers: Iterable[Leftover], resource_changes: Iterable[Mapping[str, Any]]) -> list[Leftover]:
    """The ``leftovers`` with a running process that no resource of a Terraform plan holds
    (``resource_changes`` of ``terraform show -json``: what Terraform deletes, it stops)."""
    tracked: set[int] = set()
    for change in resource_changes:
        before = (change.get("change") or {}).get("before") or {}
        pids = [*(before.get("pids") or []), before.get("pid")]
        tracked |= {int(pid) for pid in pids if isinstance(pid, int | float)}
    return [left for left in leftovers if left.running and not {i.pid for i, _ in left.running} <= tracked]


def _stop(process: tuple[ProcessId, str]) -> None:
    ident, url = process
    if stop_process(ident):
        wait_port_free(url)


def stop_leftovers(run_dir: Path, leftovers: list[Leftover]) -> int:
    """Stop every running process of ``leftovers`` (in parallel, each drained) and remove their
    records; the number of processes stopped."""
    processes = [p for leftover in leftovers for p in leftover.running]
    if processes:
        with ThreadPoolExecutor(max_workers=min(len(processes), 16)) as pool:
            list(pool.map(_stop, processes))
    run = RunDir(run_dir)
    for leftover in leftovers:
        if isinstance(leftover.record, PrometheusRecord):
            run.metrics.record.unlink(missing_ok=True)
            continue
        if isinstance(leftover.record, RouteRecord):
            run.table_file(leftover.record.application).unlink(missing_ok=True)
        run.remove_record(leftover.record)
    return len(processes)
