"""Resource ``modelcat_route``: one application's router process and the routing table it serves.

The ``model`` blocks, each with its ``route`` blocks, are the routing table (``modelcat/routing-v1``,
see ``catalog.serving.table``), validated by the router's own parser before it is written
atomically. A change of routes rewrites the table and waits until the running router reports
the new table's sha256 on ``GET /routing``: the router is not restarted. ``read`` returns the
models in the table file, so a hand edit shows up in the next plan; a dead router (checked by
pid and start time) makes the route gone, and the next apply starts it again.

A model block may hold one ``mirror`` block (a shadow step in force: the table's ``mirror``);
Terraform states hold it as a list of zero or one block. A route block's ``grpc_replicas`` (the
endpoint's ``grpc_addresses``) are where the router's gRPC side sends that version's requests; the
router serves gRPC on a port of its own, ``grpc_address`` (kept when it is restarted, as ``url``'s).

Schema version 4; version 0 (before the model blocks) had one flat ``route`` block per version,
naming its model: ``upgrade`` groups them by model, as the table file always was; version 1 had no
declared ``outcomes``, version 2 no ``mirror`` blocks (``upgrade`` writes none) and version 3 no
gRPC (no ``grpc_replicas``, no ``grpc_address``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tf.iface import (
    CreateContext,
    DeleteContext,
    ImportContext,
    PlanContext,
    ReadContext,
    State,
    UpdateContext,
    UpgradeContext,
)
from tf.schema import Attribute, Schema
from tf.types import Number, String, Unknown
from tf.utils import Diagnostics

from catalog.domain.bodies import DEFAULT_HOST, RouteBody, RouterBody
from catalog.domain.routing import BUCKETS, SPLIT_HINT, split_problem
from catalog.errors import ModelcatError, ProcessFailed, RoutingTableInvalid
from catalog.files import atomic_write
from catalog.provider.body_schema import body_schema, is_whole
from catalog.provider.config import RunResource, problem_text
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
from catalog.provider.runstate import NAME, RouteRecord

__all__ = ["SCHEMA_VERSION", "RouteResource", "models_of_flat_routes", "state_models", "table_bytes"]

SCHEMA_VERSION = 4  # 0: flat route blocks, each naming its model; 1: model blocks, no outcomes; 2: no mirror;
# 3: no gRPC


def table_bytes(application: str, models: list[dict[str, Any]], outcomes: dict[str, str] | None = None) -> bytes:
    """The routing table of ``models`` (``model`` blocks) and the application's declared
    ``outcomes``, as the router reads it.

    Raises RoutingTableInvalid (the router's own checks) with every problem.
    """
    from catalog.serving.table import parse_table, table_document

    document = table_document(application, models, outcomes)
    for model in document["models"]:
        mirror = model.get("mirror")
        if mirror is not None and isinstance(mirror["max_abs_difference"], str):
            # Terraform sends a number float64 does not hold exactly (0.05) as its decimal text
            mirror["max_abs_difference"] = _decimal(mirror["max_abs_difference"])
    data = (json.dumps(document, indent=2) + "\n").encode()
    parse_table(data, f"routing table of {application}")
    return data


def _decimal(text: str) -> float | str:
    """A number's decimal text as a float (the text itself when it is none: the table refuses it)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def models_of_flat_routes(routes: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Schema 0's flat ``route`` blocks (each naming its model, and the model's sticky key) as
    ``model`` blocks: grouped by model in first-seen order, as schema 0 wrote its table."""
    models: dict[str, dict[str, Any]] = {}
    for route in routes or []:
        model = models.setdefault(route["model"], {"name": route["model"], "sticky_key": None, "route": []})
        model["sticky_key"] = route.get("sticky_key") or model["sticky_key"]
        model["route"].append({name: route.get(name) for name in RouteBody.model_fields})
    return list(models.values())


def state_models(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``model`` blocks as a Terraform state holds them: each ``mirror`` a list of zero or one block."""
    return [{**model, "mirror": [model["mirror"]] if model.get("mirror") else []} for model in models]


def _mirror_problems(models: list[Any]) -> list[tuple[str, list[Any]]]:
    """Each known mirror percent that is no integer from 1 to ``BUCKETS``: (message, attribute path)."""
    problems: list[tuple[str, list[Any]]] = []
    for i, model in enumerate(models):
        mirrors = model.get("mirror") if isinstance(model, dict) else None
        for j, mirror in enumerate(mirrors if isinstance(mirrors, list) else []):
            percent = mirror.get("percent") if isinstance(mirror, dict) else None
            if percent not in (None, Unknown) and not (is_whole(percent) and 1 <= percent <= BUCKETS):
                message = (
                    f"the mirror of {model.get('name')} copies {percent} %: it must be an integer from 1 to {BUCKETS}"
                )
                problems.append((message, ["model", (i,), "mirror", (j,), "percent"]))
    return problems


def _weight_problems(models: list[Any]) -> list[tuple[str, list[Any]]]:
    """Each known weight that is no integer percent, and each model whose weights (all known) do
    not sum to ``BUCKETS``: (message, attribute path)."""
    problems: list[tuple[str, list[Any]]] = []
    for i, model in enumerate(models):
        routes = model.get("route") if isinstance(model, dict) else None
        if not isinstance(routes, list):
            continue
        weights = [route.get("weight") if isinstance(route, dict) else Unknown for route in routes]
        for j, weight in enumerate(weights):
            if weight not in (None, Unknown) and not (is_whole(weight) and 0 <= weight <= BUCKETS):
                where = f"{model.get('name')} {routes[j].get('version')}"
                message = f"the weight of {where} is {weight}: it must be an integer from 0 to {BUCKETS}"
                problems.append((message, ["model", (i,), "route", (j,), "weight"]))
        whole = [w for w in weights if is_whole(w)]
        if weights and len(whole) == len(weights):
            unbalanced = split_problem(int(w) for w in whole)
            if unbalanced:
                problems.append((f"model {model.get('name')!r}: {unbalanced}", ["model", (i,), "route"]))
    return problems


class RouteResource(RunResource):
    """A router for one application, serving the routes of its ``route`` blocks."""

    @classmethod
    def get_name(cls) -> str:
        return "route"

    @classmethod
    def get_schema(cls) -> Schema:
        return body_schema(
            RouterBody,
            computed=[
                Attribute("url", String(), description="The router's base URL", computed=True),
                Attribute(
                    "grpc_address",
                    String(),
                    description="Where the router serves OIP over gRPC (host:port)",
                    computed=True,
                ),
                Attribute("pid", Number(), description="The router's process id", computed=True),
                Attribute(
                    "table_path", String(), description="The routing table file the router watches", computed=True
                ),
            ],
            version=SCHEMA_VERSION,
        )

    def validate(self, diags: Diagnostics, type_name: str, config: dict[str, Any]) -> None:
        super().validate(diags, type_name, config)
        application = config.get("application")
        if isinstance(application, str) and not re.fullmatch(NAME, application):
            diags.add_error(f"{type_name}: application {application!r} is not a name", path=["application"])
        models = config.get("model")
        for message, path in _weight_problems(models if isinstance(models, list) else []):
            diags.add_error(f"{type_name}: {message}", SPLIT_HINT, path=path)
        for message, path in _mirror_problems(models if isinstance(models, list) else []):
            diags.add_error(f"{type_name}: {message}", path=path)

    # -- helpers ----------------------------------------------------------------------------------

    def _write_table(self, diags: Diagnostics, state: State) -> tuple[Path, str] | None:
        application, models = state["application"], state.get("model") or []
        try:
            data = table_bytes(application, models, state.get("outcomes"))
        except RoutingTableInvalid as e:
            diags.add_error(f"modelcat_route {application}: the routes make an invalid table", problem_text(e.problems))
            return None
        path = self.run.table_file(application)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        return path, hashlib.sha256(data).hexdigest()

    def _start(self, state: State, table: Path, sha256: str, port: int, grpc_port: int = 0) -> RouteRecord:
        application = state["application"]
        host = state.get("host") or DEFAULT_HOST
        log = self.run.log_file(f"router-{application}")
        analytics = self.run.analytics

        def record(ident: ProcessId, url: str, grpc: str = "") -> RouteRecord:
            return self.run.write_route(
                RouteRecord(
                    application=application,
                    url=url,
                    pid=ident.pid,
                    start_time=ident.start_time,
                    table=str(table),
                    analytics_dir=str(analytics),
                    log=str(log),
                    host=host,
                    port=int(state.get("port") or 0),
                    grpc=grpc,
                )
            )

        argv = router_argv(table, host, port, analytics, grpc_port)
        try:  # on record from the moment it exists: whatever stops this provider, it is never lost
            started = start_process(argv, log, f"router of {application}", on_spawn=lambda ident: record(ident, ""))
        except ProcessFailed:  # it exited, or was stopped
            self.run.route_file(application).unlink(missing_ok=True)
            raise
        written = record(started.ident, started.url, started.grpc)
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
        grpc = state.get("grpc_address") or ""
        return RouteRecord(state["application"], state.get("url") or "", int(pid), start, table, "", "", grpc=grpc)

    @staticmethod
    def _with(state: State, record: RouteRecord) -> State:
        grpc = record.grpc or None
        return {**state, "url": record.url, "grpc_address": grpc, "pid": record.pid, "table_path": record.table}

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
        from catalog.serving.table import load_table, model_blocks

        try:
            record = self._live_record(current)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_route {current.get('application')}: {e}")
            return current
        if record is None:
            return None  # the router is gone: the next apply starts it again
        try:
            table = load_table(record.table).table
            models, outcomes = state_models(model_blocks(table)), table.outcomes or None
        except ModelcatError as e:
            ctx.diagnostics.add_warning(f"modelcat_route {record.application}: table unusable, will rewrite", str(e))
            models, outcomes = [], None
        return {**self._with(current, record), "outcomes": outcomes, "model": models}

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State | None:
        if current is not None and self._live_record(current) is None:  # died since the refresh: update restarts it
            planned = {**planned, "url": Unknown, "grpc_address": Unknown, "pid": Unknown}
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
            else:  # died after the plan: start it again, on the ports it had
                port = urlsplit(current.get("url") or "").port or int(planned.get("port") or 0)
                grpc_port = urlsplit(f"grpc://{current.get('grpc_address') or ''}").port or 0
                record = self._start(planned, *written, port=port, grpc_port=grpc_port)
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
        from catalog.serving.table import load_table, model_blocks

        try:
            record = self.run.read_route(id)
            if record is None:
                ctx.diagnostics.add_error(
                    f"modelcat_route {id}: no record", f"{self.run.route_file(id)} does not exist"
                )
                return None
            table = load_table(record.table).table
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_route {id}: {e}")
            return None
        state = {
            "application": record.application,
            "port": record.port,
            "host": record.host,
            "outcomes": table.outcomes or None,
            "model": state_models(model_blocks(table)),
        }
        return self._with(state, record)

    def upgrade(self, ctx: UpgradeContext, version: int, old: State) -> State | None:
        """A state of an older schema in this one's shape (``old`` is the raw state Terraform stored)."""
        if version >= SCHEMA_VERSION:
            return old
        state = dict(old)
        if version < 1:
            state = {key: value for key, value in old.items() if key != "route"}
            state["model"] = models_of_flat_routes(old.get("route"))
        state.setdefault("outcomes", None)  # schema 2 added the declared outcomes (none before)
        if version < 3:  # schema 3 added the mirror blocks (none before)
            state["model"] = [{**model, "mirror": model.get("mirror") or []} for model in state.get("model") or []]
        if version < 4:  # schema 4 added gRPC: no route's replicas had a gRPC address, the router none
            state["model"] = [
                {**model, "route": [{**route, "grpc_replicas": None} for route in model.get("route") or []]}
                for model in state.get("model") or []
            ]
            state.setdefault("grpc_address", None)
        return state
