"""The router's state: the table in force (swapped whole on reload), replica choice, the file watcher."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from catalog.domain.routing import bucket_ranges, bucket_table
from catalog.errors import ModelcatError, RoutingTableInvalid
from catalog.serving.table import LoadedTable, TableMirror, TableRoute, load_table

__all__ = ["CompiledModel", "LiveTable", "ReplicaPool", "TableWatcher", "compile_table"]

log = logging.getLogger("catalog.serving.router")


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """One model's split, ready for per-request use."""

    name: str
    sticky_key: str | None
    routes: dict[str, TableRoute]
    slots: tuple[str, ...]
    primary: str  # the version with the largest weight (the first such): metadata for unkeyed callers
    mirror: TableMirror | None = None  # a shadow step in force (``catalog.serving.mirror``)


@dataclass(frozen=True, slots=True)
class LiveTable:
    """An immutable snapshot: a request takes one and uses it to the end, whatever reloads meanwhile."""

    loaded: LoadedTable
    models: dict[str, CompiledModel]
    generation: int
    loaded_at: datetime
    # the application declares a label outcome: each answered inference records its prediction
    # (``catalog.domain.live_metrics``), for the live metrics
    predicts: bool = False

    @property
    def application(self) -> str:
        return self.loaded.table.application


def compile_table(loaded: LoadedTable, generation: int) -> LiveTable:
    table = loaded.table
    models: dict[str, CompiledModel] = {}
    for model in table.models:
        routes = {route.version: route for route in model.routes}
        slots = bucket_table((route.version, route.weight) for route in model.routes)
        primary = max(model.routes, key=lambda r: r.weight).version
        models[model.name] = CompiledModel(model.name, table.sticky_key_of(model), routes, slots, primary, model.mirror)
    predicts = "label" in table.outcomes.values()
    return LiveTable(loaded, models, generation, datetime.now(UTC), predicts)


def describe(live: LiveTable, pool: ReplicaPool, last_error: str | None) -> dict[str, object]:
    """The table in force, as ``GET /routing`` shows it."""
    return {
        "application": live.application,
        "table": {
            "path": live.loaded.path,
            "sha256": live.loaded.sha256,
            "generation": live.generation,
            "loaded_at": live.loaded_at.isoformat().replace("+00:00", "Z"),
            "last_error": last_error,
        },
        "models": [
            {
                "name": m.name,
                "sticky_key": m.sticky_key,
                "routes": [
                    {
                        "version": r.version,
                        "weight": r.weight,
                        "digest": r.digest,
                        "buckets": [list(span) for span in bucket_ranges(m.slots).get(r.version, [])],
                        "replicas": [{"url": url, "up": pool.is_up(url)} for url in r.replicas],
                        "grpc_replicas": [{"address": a, "up": pool.is_up(a)} for a in r.grpc_replicas or ()],
                    }
                    for r in m.routes.values()
                ],
                "mirror": m.mirror.model_dump() if m.mirror else None,
            }
            for m in live.models.values()
        ],
    }


@dataclass
class ReplicaPool:
    """Round robin over a version's replicas, skipping for a while those that refused a connection.

    A replica that fails to connect is ejected for ``eject_seconds``: it is tried only after the
    others, so one dead replica costs one failed connection per ejection period, not one per
    request. Cursors and ejections are keyed by URL and version, so they survive table reloads.
    """

    eject_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _cursor: dict[tuple[str, str], int] = field(default_factory=dict)
    _down_until: dict[str, float] = field(default_factory=dict)

    def order(self, model: str, version: str, replicas: list[str]) -> list[str]:
        """Replicas in the order to try them: the live ones round robin, then the ejected ones."""
        now = self.clock()
        up = [url for url in replicas if self._down_until.get(url, 0.0) <= now]
        down = [url for url in replicas if self._down_until.get(url, 0.0) > now]
        key = (model, version)
        turn = self._cursor.get(key, 0)
        self._cursor[key] = turn + 1
        if up:
            start = turn % len(up)
            up = up[start:] + up[:start]
        return up + down

    def failed(self, url: str) -> None:
        self._down_until[url] = self.clock() + self.eject_seconds

    def succeeded(self, url: str) -> None:
        self._down_until.pop(url, None)

    def is_up(self, url: str) -> bool:
        return self._down_until.get(url, 0.0) <= self.clock()


def _signature(path: Path) -> tuple[int, ...] | str:
    try:
        st = os.stat(path)
    except OSError as e:
        return f"error:{e.errno}"
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class TableWatcher:
    """Polls the table file's identity (device, inode, size, mtime, ctime) and reloads on a change.

    A table that fails to load leaves the one in force untouched; the failure is logged once per
    change of the file and reported through ``on_error``.
    """

    def __init__(
        self,
        path: Path,
        on_table: Callable[[LoadedTable], None],
        on_error: Callable[[ModelcatError], None],
        interval: float = 0.25,
    ) -> None:
        self.path = path
        self.interval = interval
        self._on_table = on_table
        self._on_error = on_error
        self._signature = _signature(path)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a bug here must not stop the watching: the old table keeps serving
                log.exception("routing table %s: unexpected error while reloading; still watching", self.path)

    async def check(self) -> None:
        signature = _signature(self.path)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            loaded = await asyncio.to_thread(load_table, self.path)
        except ModelcatError as e:
            if isinstance(e, RoutingTableInvalid):
                details = "; ".join(f"{p.path or p.file}: {p.message}" for p in e.problems)
                log.error("routing table %s refused, the previous table stays in force: %s", self.path, details)
            else:
                log.error("routing table not reloaded, the previous table stays in force: %s", e)
            self._on_error(e)
            return
        self._on_table(loaded)
