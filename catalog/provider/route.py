"""Resource ``modelcat_route``: one application's router process and the routing table it serves.

The ``route`` blocks become a ``modelcat/routing-v1`` table (grouped by model, in block order;
see ``catalog.serving.table``), validated by the router's own parser before it is written
atomically. A change of routes rewrites the table and waits until the running router reports
the new table's sha256 on ``GET /routing``: the router is not restarted. ``read`` returns the
routes in the table file, so a hand edit shows up in the next plan; a dead router (checked by
pid and start time) makes the route gone, and the next apply starts it again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tf.blocks import SetNestedBlock
from tf.gen import tfplugin_pb2 as pb
from tf.iface import (
    CreateContext,
    DeleteContext,
    ImportContext,
    PlanContext,
    ReadContext,
    Resource,
    State,
    UpdateContext,
    UpgradeContext,
)
from tf.schema import Attribute, Block, Schema
from tf.types import List, Number, String, Unknown
from tf.utils import Diagnostics

from catalog.errors import ModelcatError, ProcessFailed, RoutingTableInvalid
from catalog.files import atomic_write
from catalog.provider.config import problem_text
from catalog.provider.processes import (
    ProcessId,
    is_alive,
    process_cmdline,
    router_argv,
    start_process,
    start_time_of,
    stop_process,
    wait_port_free,
    wait_router_table,
)
from catalog.provider.runstate import NAME, RouteRecord, RunDir

if TYPE_CHECKING:
    from catalog.provider.config import ProviderConfig
    from catalog.serving.table import RoutingTable

__all__ = ["ListNestedBlock", "RouteResource", "routes_of_table", "table_bytes"]

DEFAULT_HOST = "127.0.0.1"


class ListNestedBlock(SetNestedBlock):
    """A nested block list (``tf`` ships only set and single): ordered, compared item by item."""

    def to_pb(self) -> pb.Schema.NestedBlock:
        message = super().to_pb()
        message.nesting = pb.Schema.NestedBlock.NestingMode.LIST
        return message

    def decode(self, value: Any) -> Any:
        return value if value is None else super().decode(value)

    def encode(self, value: Any) -> Any:
        return value if value is None else super().encode(value)

    def semantically_equal(self, a_decoded: Any, b_decoded: Any) -> bool:
        return a_decoded == b_decoded


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def table_bytes(application: str, routes: list[dict[str, Any]]) -> bytes:
    """The routing table for ``routes`` (route blocks), grouped by model in first-seen order.

    Raises RoutingTableInvalid (the router's own checks) with every problem.
    """
    from catalog.serving.table import API_VERSION, parse_table

    models: dict[str, dict[str, Any]] = {}
    for route in routes:
        model = models.setdefault(route["model"], {"name": route["model"], "routes": []})
        if route.get("sticky_key"):
            model["sticky_key"] = route["sticky_key"]
        model["routes"].append(
            {
                "version": route["version"],
                "weight": _whole(route["weight"]),
                "digest": route["digest"],
                "replicas": list(route.get("replicas") or []),
            }
        )
    document = {"apiVersion": API_VERSION, "application": application, "models": list(models.values())}
    data = (json.dumps(document, indent=2) + "\n").encode()
    parse_table(data, f"routing table of {application}")
    return data


def routes_of_table(table: RoutingTable, order: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Route blocks from a table, in the order of ``order`` (prior route blocks) where they match."""
    routes = [
        {
            "model": model.name,
            "version": route.version,
            "weight": route.weight,
            "digest": route.digest,
            "sticky_key": table.sticky_key_of(model),
            "replicas": list(route.replicas),
        }
        for model in table.models
        for route in model.routes
    ]
    rank = {(r.get("model"), r.get("version")): i for i, r in enumerate(order or [])}
    return sorted(routes, key=lambda r: rank.get((r["model"], r["version"]), len(rank)))


def _sticky_conflicts(routes: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, object] = {}
    bad = []
    for route in routes:
        model, key = route.get("model"), route.get("sticky_key")
        if model is Unknown or key is Unknown:
            continue
        if model in seen and seen[model] != key and str(model) not in bad:
            bad.append(str(model))
        seen.setdefault(str(model), key)
    return bad


class RouteResource(Resource):
    """A router for one application, serving the routes of its ``route`` blocks."""

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider

    @property
    def run(self) -> RunDir:
        return self.provider.run

    @classmethod
    def get_name(cls) -> str:
        return "route"

    @classmethod
    def get_schema(cls) -> Schema:
        route = Block(
            attributes=[
                Attribute("model", String(), description="Model name", required=True),
                Attribute("version", String(), description="Model version", required=True),
                Attribute(
                    "weight", Number(), description="Integer percent; a model's weights sum to 100", required=True
                ),
                Attribute("digest", String(), description="sha256 digest the version's replicas serve", required=True),
                Attribute(
                    "sticky_key",
                    String(),
                    description="Request header pinning a caller to one version (the same on every route of a model)",
                    optional=True,
                ),
                Attribute(
                    "replicas",
                    List(String()),
                    description="Base URLs of the version's replicas, e.g. modelcat_endpoint.x.urls",
                    required=True,
                ),
            ]
        )
        return Schema(
            attributes=[
                Attribute(
                    "application", String(), description="Application name", required=True, requires_replace=True
                ),
                Attribute(
                    "port",
                    Number(),
                    description="Port to listen on (default 0: any free port)",
                    optional=True,
                    computed=True,
                    requires_replace=True,
                    default=0,
                ),
                Attribute(
                    "host",
                    String(),
                    description=f"Address to listen on (default {DEFAULT_HOST})",
                    optional=True,
                    computed=True,
                    requires_replace=True,
                    default=DEFAULT_HOST,
                ),
                Attribute("url", String(), description="The router's base URL", computed=True),
                Attribute("pid", Number(), description="The router's process id", computed=True),
                Attribute(
                    "table_path", String(), description="The routing table file the router watches", computed=True
                ),
            ],
            block_types=[ListNestedBlock("route", route)],
        )

    def validate(self, diags: Diagnostics, type_name: str, config: dict[str, Any]) -> None:
        super().validate(diags, type_name, config)
        application = config.get("application")
        if isinstance(application, str) and not re.fullmatch(NAME, application):
            diags.add_error(f"{type_name}: application {application!r} is not a name", path=["application"])
        routes = config.get("route")
        if isinstance(routes, list):
            for model in _sticky_conflicts([r for r in routes if isinstance(r, dict)]):
                diags.add_error(
                    f"{type_name}: the routes of model {model!r} name different sticky_key values",
                    "A model has one sticky key: set the same sticky_key on each of its routes (or on none).",
                    path=["route"],
                )

    # -- helpers ----------------------------------------------------------------------------------

    def _write_table(self, diags: Diagnostics, state: State) -> tuple[Path, str] | None:
        application, routes = state["application"], state.get("route") or []
        try:
            data = table_bytes(application, routes)
        except RoutingTableInvalid as e:
            diags.add_error(f"modelcat_route {application}: the routes make an invalid table", problem_text(e.problems))
            return None
        path = self.run.table_file(application)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        return path, hashlib.sha256(data).hexdigest()

    def _start(self, state: State, table: Path, sha256: str, port: int) -> RouteRecord:
        application = state["application"]
        host = state.get("host") or DEFAULT_HOST
        log = self.run.log_file(f"router-{application}")
        assignments = self.run.assignment_log(application)

        def record(ident: ProcessId, url: str) -> RouteRecord:
            return self.run.write_route(
                RouteRecord(
                    application=application,
                    url=url,
                    pid=ident.pid,
                    start_time=ident.start_time,
                    table=str(table),
                    assignment_log=str(assignments),
                    log=str(log),
                    host=host,
                    port=int(state.get("port") or 0),
                )
            )

        argv = router_argv(table, host, port, assignments)
        try:  # on record from the moment it exists: whatever stops this provider, it is never lost
            started = start_process(argv, log, f"router of {application}", on_spawn=lambda ident: record(ident, ""))
        except ProcessFailed:  # it exited, or was stopped
            self.run.route_file(application).unlink(missing_ok=True)
            raise
        written = record(started.ident, started.url)
        wait_router_table(started.url, started.ident, sha256, log)
        return written

    def _live_record(self, state: State) -> RouteRecord | None:
        """The record of this route's router if that router runs and listens (and is the state's,
        if known); one that never got to listen is stopped by the next create."""
        record = self.run.read_route(state["application"])
        if record is None or not record.url or not is_alive(record.ident):
            return None
        pid = state.get("pid")
        return record if pid in (None, Unknown) or int(pid) == record.pid else None

    def _stop(self, record: RouteRecord, diags: Diagnostics) -> None:
        stop_process(record.ident)
        if not wait_port_free(record.url):
            diags.add_warning(f"modelcat: port of {record.url} still in use after its router stopped")

    def _adopt(self, state: State) -> RouteRecord | None:
        """With no record: the state's router, if its pid still runs the router on its table."""
        pid, table = state.get("pid"), state.get("table_path")
        if not isinstance(pid, int | float) or not table:
            return None
        argv = process_cmdline(int(pid))
        start = start_time_of(int(pid))
        if "catalog.cli.router_command" not in argv or dict(itertools.pairwise(argv)).get("--table") != table:
            return None
        if start is None:
            return None
        return RouteRecord(state["application"], state.get("url") or "", int(pid), start, table, "", "")

    @staticmethod
    def _with(state: State, record: RouteRecord) -> State:
        return {**state, "url": record.url, "pid": record.pid, "table_path": record.table}

    # -- lifecycle --------------------------------------------------------------------------------

    def create(self, ctx: CreateContext, planned: State) -> State | None:
        diags, application = ctx.diagnostics, planned["application"]
        planned = {**planned, "host": planned.get("host") or DEFAULT_HOST, "port": int(planned.get("port") or 0)}
        try:
            orphan = self.run.read_route(application)
            if orphan is not None and is_alive(orphan.ident):
                self._stop(orphan, diags)  # one router per application: a leftover one goes first
            written = self._write_table(diags, planned)
            if written is None:
                return None
            record = self._start(planned, *written, port=planned["port"])
        except ModelcatError as e:
            diags.add_error(f"modelcat_route {application}: cannot start its router", str(e))
            return None
        return self._with(planned, record)

    def read(self, ctx: ReadContext, current: State) -> State | None:
        from catalog.serving.table import load_table

        try:
            record = self._live_record(current)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_route {current.get('application')}: {e}")
            return current
        if record is None:
            return None  # the router is gone: the next apply starts it again
        try:
            routes = routes_of_table(load_table(record.table).table, current.get("route"))
        except ModelcatError as e:
            ctx.diagnostics.add_warning(f"modelcat_route {record.application}: table unusable, will rewrite", str(e))
            routes = []
        return {**self._with(current, record), "route": routes}

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State | None:
        if current is not None and self._live_record(current) is None:  # died since the refresh: update restarts it
            planned = {**planned, "url": Unknown, "pid": Unknown}
        return planned

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        diags, application = ctx.diagnostics, planned["application"]
        try:
            written = self._write_table(diags, planned)
            if written is None:
                return current
            record = self._live_record(current)
            if record is not None:
                wait_router_table(record.url, record.ident, written[1], Path(record.log))
            else:  # died after the plan: start it again, on the port it had
                port = urlsplit(current.get("url") or "").port or int(planned.get("port") or 0)
                record = self._start(planned, *written, port=port)
        except ModelcatError as e:
            diags.add_error(f"modelcat_route {application}: the router did not take the new table", str(e))
            return current
        return self._with(planned, record)

    def delete(self, ctx: DeleteContext, current: State) -> None:
        application = current["application"]
        try:
            record = self.run.read_route(application)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_route {application}: {e}")
            return
        if record is None:
            record = self._adopt(current)
            if record is None:
                return
        pid = current.get("pid")
        if pid not in (None, Unknown) and int(pid) != record.pid and is_alive(record.ident):
            return  # the record belongs to a newer router of the same application
        self._stop(record, ctx.diagnostics)
        Path(record.table).unlink(missing_ok=True)
        self.run.remove_record(record)

    def import_(self, ctx: ImportContext, id: str) -> State | None:
        from catalog.serving.table import load_table

        try:
            record = self.run.read_route(id)
            if record is None:
                ctx.diagnostics.add_error(
                    f"modelcat_route {id}: no record", f"{self.run.route_file(id)} does not exist"
                )
                return None
            routes = routes_of_table(load_table(record.table).table)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_route {id}: {e}")
            return None
        state = {"application": record.application, "port": record.port, "host": record.host, "route": routes}
        return self._with(state, record)

    def upgrade(self, ctx: UpgradeContext, version: int, old: State) -> State | None:
        return old
