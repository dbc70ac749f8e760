"""What runs, compared with what the catalog says: per application the router and its weights in
force, per replica its pid, port, readiness and the digest it serves, a consistency verdict and
the drift list.

Read from the local target's run records (``catalog.provider.runstate``) and from the processes
themselves (each replica is asked which bytes it serves, each router which table it has in
force); Terraform is not involved, so status is fast and works while an apply runs. Each applied
stack's Prometheus is listed with whether it runs (not running is drift).

Every stack counts, not only those the catalog declares: a stack with run records that no
application of the catalog runs in any more, a replaced endpoint whose replicas still run, or a
record the catalog accounts for nowhere is drift. A declared stack with no record at all is
reported in one line: not applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from catalog.deploy.leftovers import Leftover, find_leftovers
from catalog.deploy.stacks import select_stacks
from catalog.domain.deployment import ApplicationPlan, Environment, environments
from catalog.domain.models import Application, Catalog
from catalog.errors import UsageError
from catalog.layout import run_dir, split_stack_name, stack_name, state_root
from catalog.provider.metrics import ident_of
from catalog.provider.processes import is_alive
from catalog.provider.runstate import (
    EndpointRecord,
    InstanceStatus,
    RouteRecord,
    has_records,
    load_endpoint_records,
    load_route_records,
    probe_endpoint,
    probe_route,
)
from catalog.telemetry.prometheus import MetricsDir, PrometheusRecord
from catalog.validate import validate_file
from catalog.wording import plural

__all__ = [
    "ApplicationStatus",
    "EndpointStatus",
    "PrometheusStatus",
    "StackStatus",
    "Status",
    "catalog_status",
    "collect_status",
    "router_record",
]

Weights = dict[str, dict[str, int]]  # model -> version -> weight


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    model: str
    version: str
    digest: str  # what the catalog names
    wanted: int  # replicas the catalog asks for
    replicas: tuple[InstanceStatus, ...]
    deposed: bool = False  # an old endpoint still draining during a replacement

    @property
    def healthy(self) -> int:
        return sum(r.healthy for r in self.replicas)


@dataclass
class ApplicationStatus:
    name: str
    environment: str
    url: str | None
    router_alive: bool
    in_force: Weights
    in_catalog: Weights
    endpoints: list[EndpointStatus] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    grpc: str | None = None  # where the router serves OIP over gRPC (host:port), when it does

    @property
    def consistent(self) -> bool:
        return not self.drift


@dataclass(frozen=True, slots=True)
class PrometheusStatus:
    """The stack's Prometheus as its record says, and whether that very process runs."""

    url: str
    pid: int
    alive: bool


@dataclass
class StackStatus:
    """One stack: whether the catalog declares it, whether anything of it is on record, its
    applications and what runs that the catalog does not account for."""

    name: str
    environment: str
    declared: bool
    applied: bool
    applications: list[ApplicationStatus] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)
    prometheus: PrometheusStatus | None = None  # of a declared, applied stack

    @property
    def prometheus_drift(self) -> list[str]:
        """A declared, applied stack whose Prometheus is not on record or not running."""
        if not (self.declared and self.applied):
            return []
        if self.prometheus is None:
            return [f"{self.name}: no Prometheus is recorded; modelcat apply starts it"]
        if not self.prometheus.alive:
            return [f"{self.name}: Prometheus (pid {self.prometheus.pid}) is not running; modelcat apply restarts it"]
        return []

    @property
    def drift(self) -> list[str]:
        if self.declared and not self.applied:
            return [f"{self.name}: not applied; run modelcat apply"]
        gone = f"{self.name}: no application of the catalog runs in {self.environment} any more"
        head = [] if self.declared else [f"{gone}; modelcat apply destroys this stack"]
        head += self.prometheus_drift
        apps = [f"{a.name}: {d}" for a in self.applications for d in a.drift]
        return head + apps + [f"{self.name}: {leftover.line()}" for leftover in self.leftovers]


@dataclass
class Status:
    stacks: list[StackStatus]

    @property
    def applications(self) -> list[ApplicationStatus]:
        return [a for s in self.stacks for a in s.applications]

    @property
    def consistent(self) -> bool:
        return not self.drift

    @property
    def drift(self) -> list[str]:
        return [d for s in self.stacks for d in s.drift]


def _catalog_weights(app: ApplicationPlan) -> Weights:
    return {b.model: {r.version: r.weight for r in b.routes} for b in app.bindings}


def _application_status(
    app: ApplicationPlan,
    route: RouteRecord | None,
    records: dict[tuple[str, str, str], list[EndpointRecord]],
    probes: dict[str, list[InstanceStatus]],
) -> ApplicationStatus:
    status = ApplicationStatus(app.name, app.environment, None, False, {}, _catalog_weights(app))
    served: dict[tuple[str, str], set[str]] = {}  # (model, version) -> healthy replica URLs
    for binding in app.bindings:
        for planned in binding.routes:
            endpoint = planned.endpoint
            found = records.get((app.name, endpoint.model, endpoint.version), [])
            for record in found:
                replicas = tuple(probes.get(record.file, ()))
                status.endpoints.append(
                    EndpointStatus(
                        endpoint.model,
                        endpoint.version,
                        endpoint.digest,
                        endpoint.serving.replicas,
                        replicas,
                        record.deposed,
                    )
                )
                if record.digest != endpoint.digest and not record.deposed:
                    status.drift.append(
                        f"{endpoint.model} {endpoint.version} runs {record.digest}, the catalog names {endpoint.digest}"
                    )
                for replica in replicas:
                    if replica.healthy and record.digest == endpoint.digest:
                        served.setdefault((endpoint.model, endpoint.version), set()).add(replica.url)
                    elif not record.deposed:
                        status.drift.append(f"{endpoint.model} {endpoint.version} replica {replica.url} "
                                            f"(pid {replica.pid}): {replica.error or 'unhealthy'}")  # fmt: skip
            healthy = len(served.get((endpoint.model, endpoint.version), ()))
            if healthy != endpoint.serving.replicas:
                status.drift.append(
                    f"{endpoint.model} {endpoint.version}: {plural(healthy, 'healthy replica')}, "
                    f"the catalog asks for {endpoint.serving.replicas}"
                )
    if route is None:
        status.drift.append("no router is recorded (not applied yet?)")
        return status
    status.url, status.grpc = route.url, route.grpc or None
    router = probe_route(route)
    status.router_alive = router.alive
    if router.models is None:
        status.drift.append(f"router {route.url} (pid {route.pid}) does not answer: {router.error or 'no /routing'}")
        return status
    for model in router.models:
        status.in_force[model["name"]] = {r["version"]: r["weight"] for r in model["routes"]}
        for r in model["routes"]:
            urls = {replica["url"] for replica in r["replicas"]}
            stray = urls - served.get((model["name"], r["version"]), set())
            if stray:
                status.drift.append(
                    f"router lists {', '.join(sorted(stray))} for {model['name']} {r['version']}: "
                    "not a healthy replica of the catalog's bytes"
                )
    if status.in_force != status.in_catalog:
        status.drift.append(f"weights in force {status.in_force} differ from the catalog's {status.in_catalog}")
    mirrors = {m["name"]: m["mirror"] for m in router.models if m.get("mirror")}
    if mirrors != _catalog_mirrors(app):
        status.drift.append(
            f"mirrors in force {mirrors or 'none'} differ from the catalog's {_catalog_mirrors(app) or 'none'}"
        )
    return status


def _catalog_mirrors(app: ApplicationPlan) -> dict[str, dict[str, object]]:
    """Per model in a shadow step, its mirror as the router's ``GET /routing`` shows it."""
    return {
        b.model: {
            "version": b.mirror.version,
            "percent": b.mirror.percent,
            "max_abs_difference": b.mirror.max_abs_difference,
        }
        for b in app.bindings
        if b.mirror is not None
    }


def _endpoints_by_application(endpoints: list[EndpointRecord]) -> dict[tuple[str, str, str], list[EndpointRecord]]:
    by_key: dict[tuple[str, str, str], list[EndpointRecord]] = {}
    for record in endpoints:
        application = record.labels.get("modelcat/application") or record.name.split(".")[0]
        by_key.setdefault((application, record.model, record.version), []).append(record)
    return by_key


def _accounted_for(
    apps: tuple[ApplicationPlan, ...], routes: dict[str, RouteRecord], endpoints: list[EndpointRecord]
) -> set[str]:
    """The record files the catalog's applications account for (deposed ones are not)."""
    wanted = {(a.name, b.model, r.version) for a in apps for b in a.bindings for r in b.routes}
    by_key = _endpoints_by_application(endpoints)
    files = {r.file for key in wanted for r in by_key.get(key, []) if not r.deposed}
    return files | {routes[a.name].file for a in apps if a.name in routes}


def catalog_status(catalog_path: Path, target: str = "local", only: Iterable[str] = ()) -> Status:
    """What runs for the catalog at ``catalog_path`` (its environments ``only``, or all) deployed
    to ``target``, compared with it; with the applied stacks of ``target`` it no longer declares.
    CatalogInvalid when the catalog is, UsageError when ``only`` names an unknown environment."""
    catalog = validate_file(catalog_path).raise_for_errors()
    declared, orphans = select_stacks(catalog_path, catalog, only)
    orphans = [s for s in orphans if split_stack_name(s)[1] == target]
    return collect_status(environments(catalog, declared), state_root(catalog_path), target, orphans)


def collect_status(
    environments: list[Environment], state_root: Path, target: str = "local", orphans: Iterable[str] = ()
) -> Status:
    """Status of every application of ``environments``, whose run records are in the run
    directory of its stack (``catalog.synth.base.run_dir``) under the ``.modelcat`` folder
    ``state_root``, and of the ``orphans``: applied stacks the catalog no longer declares."""
    stacks: list[tuple[StackStatus, Environment | None, dict[str, RouteRecord], list[EndpointRecord]]] = []
    for env in environments:
        name = stack_name(env.name, target)
        records = run_dir(state_root, name)
        applied = records.is_dir() and has_records(records)
        routes = {r.application: r for r in load_route_records(records)} if applied else {}
        endpoints = load_endpoint_records(records) if applied else []
        stack = StackStatus(name, env.name, declared=True, applied=applied)
        if applied:
            accounted = _accounted_for(env.applications, routes, endpoints)
            stack.leftovers = [
                leftover
                for leftover in find_leftovers(records, name, everything=True)
                if leftover.running
                and not isinstance(leftover.record, PrometheusRecord)  # the stack's own
                and leftover.record.file not in accounted
            ]
            prometheus = PrometheusRecord.read(MetricsDir(records))
            if prometheus is not None:
                stack.prometheus = PrometheusStatus(prometheus.url, prometheus.pid, is_alive(ident_of(prometheus)))
        stacks.append((stack, env, routes, endpoints))
    for name in orphans:
        records = run_dir(state_root, name)
        stack = StackStatus(name, split_stack_name(name)[0], declared=False, applied=has_records(records))
        stack.leftovers = [leftover for leftover in find_leftovers(records, name, everything=True) if leftover.running]
        stacks.append((stack, None, {}, []))
    every_record = [r for _, _, _, endpoints in stacks for r in endpoints]
    with ThreadPoolExecutor(8) as pool:  # replicas answer in parallel
        probed = dict(zip([r.file for r in every_record], pool.map(probe_endpoint, every_record), strict=True))
    for stack, declared, routes, endpoints in stacks:
        if declared is not None and stack.applied:
            by_key = _endpoints_by_application(endpoints)
            stack.applications = [
                _application_status(app, routes.get(app.name), by_key, probed) for app in declared.applications
            ]
    return Status([stack for stack, _, _, _ in stacks])


def find_application(catalog_path: Path, catalog: Catalog, application: str) -> Application:
    """The application named ``application`` of ``catalog`` (read from ``catalog_path``); UsageError
    naming the ones it has when there is none."""
    app = next((a for a in catalog.applications if a.name == application), None)
    if app is None:
        known = ", ".join(a.name for a in catalog.applications)
        raise UsageError(f"no application {application!r} in {catalog_path} (applications: {known})")
    return app


def router_record(
    catalog_path: Path, catalog: Catalog, application: str, target: str = "local"
) -> tuple[RouteRecord, Application]:
    """``application``'s router as its stack's run records say (its URL, its gRPC address), and the application.
    UsageError when ``catalog`` (read from ``catalog_path``) has no such application, or no router
    of it is on record (not applied yet)."""
    app = find_application(catalog_path, catalog, application)
    records = run_dir(state_root(catalog_path), stack_name(app.environment, target))
    routes = {r.application: r for r in load_route_records(records)} if records.exists() else {}
    if application not in routes:
        raise UsageError(f"{application} has no router running: run 'modelcat apply' first")
    return routes[application], app
