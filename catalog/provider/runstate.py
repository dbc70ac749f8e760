"""Run-state records: what the provider started, kept in its run directory for later commands.

Layout under ``run_dir`` (each JSON file replaced atomically: temp file, fsync, rename)::

    endpoints/<name>.json            {name, model, version, digest, artifact, artifact_ref, host,
                                      replicas, labels, secrets: {NAME: {vault, version, field}},
                                      release, signing,
                                      instances: [{pid, start_time, url, log, secrets_dir, grpc}]}
                                     (``release``: the replicas' release-check flags, see
                                     ``catalog.provider.signatures``, and ``signing`` the body's
                                     signature fields; both empty for an unsigned version)
                                     (a process is on record from the moment it is spawned: its
                                     url is "" until it listens; a secret's path and the version
                                     its replicas were handed, never its value)
    endpoints/deposed/<name>.<pid>-<start>.json
                                     an endpoint being replaced (create_before_destroy) whose
                                     instances still run until Terraform deletes it
    routes/<application>.json        {application, url, pid, start_time, table, analytics_dir,
                                      log, host, port, grpc}
                                     (``grpc``: where the router serves OIP over gRPC, host:port;
                                     "" for one started before routers did)
    routes/<application>.table.json  the routing table the router serves (modelcat/routing-v1):
                                     the route's model blocks
    metrics/                         the stack's Prometheus (catalog.telemetry.prometheus): its
                                     record, configuration, TSDB and scrape target files, one per
                                     route and endpoint record, written and removed with it
    signing/                         the replicas' trust files and signing bundles
                                     (``catalog.provider.signatures``)
    logs/                            one log per process
    secrets/<name>-<random>/         (0700) a replica's secrets, one file each (0400), removed
                                     when it stops (catalog.provider.secrets)
    analytics/                       the routers' assignments and routing tables, the outcome
                                     events (catalog.feedback.logs: segmented, Parquet once closed)

``artifact`` is the resolved local path the replicas load, ``artifact_ref`` the value written in
the configuration. ``start_time`` is the process start time from /proc/<pid>/stat, so a pid the
kernel reused is never taken for ours. The read API for ``modelcat status``:
``load_endpoint_records``, ``load_route_records``, ``probe_endpoint`` and ``probe_route``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog.errors import RunStateError
from catalog.files import atomic_write
from catalog.layout import analytics_dir
from catalog.provider.processes import ProcessId, http_client, is_alive
from catalog.serving.signature import signature_text
from catalog.telemetry.prometheus import MetricsDir, write_targets

if TYPE_CHECKING:
    import httpx

__all__ = [
    "NAME",
    "EndpointRecord",
    "Instance",
    "InstanceStatus",
    "RouteRecord",
    "RouteStatus",
    "RunDir",
    "has_records",
    "load_endpoint_records",
    "load_route_records",
    "probe_endpoint",
    "probe_instance",
    "probe_route",
]

NAME = r"^[A-Za-z0-9](?!.*\.\.)[A-Za-z0-9._-]{0,199}$"  # endpoint and application names: safe file names


@dataclass(frozen=True, slots=True)
class Instance:
    """One replica process of an endpoint."""

    pid: int
    start_time: int
    url: str
    log: str
    secrets_dir: str = ""  # the folder of its secrets' files, if its endpoint has secrets
    grpc: str = ""  # where it serves OIP over gRPC (host:port); "" for one started before replicas did

    @property
    def ident(self) -> ProcessId:
        return ProcessId(self.pid, self.start_time)


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    name: str
    model: str
    version: str
    digest: str
    artifact: str
    host: str
    instances: tuple[Instance, ...] = ()
    artifact_ref: str = ""
    replicas: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name: {vault, version[, field]}
    release: tuple[str, ...] = ()  # the replicas' --trust, --bundle, --bundle-digest flags
    signing: dict[str, Any] = field(default_factory=dict)  # the body's signature fields (an import restores them)
    deposed: bool = False  # not stored: true for an endpoint read from a deposed-* file
    file: str = ""  # not stored: the file it was read from

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for transient in ("deposed", "file"):
            body.pop(transient)
        body["instances"] = [asdict(i) for i in self.instances]
        body["release"] = list(self.release)
        return body

    def with_instances(self, instances: Iterable[Instance]) -> EndpointRecord:
        return replace(self, instances=tuple(instances))


@dataclass(frozen=True, slots=True)
class RouteRecord:
    application: str
    url: str
    pid: int
    start_time: int
    table: str
    analytics_dir: str
    log: str
    host: str = "127.0.0.1"
    port: int = 0  # as configured (0: any free port)
    grpc: str = ""  # where it routes OIP over gRPC (host:port); "" for one started before routers did
    file: str = ""  # not stored

    @property
    def ident(self) -> ProcessId:
        return ProcessId(self.pid, self.start_time)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("file")
        return body


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """What a probe of one replica found; ``healthy`` means alive, ready and the right bytes."""

    pid: int
    url: str
    alive: bool
    ready: bool
    digest: str | None
    expected: str
    log: str
    error: str = ""
    signature: dict[str, Any] | None = None  # who signed the bytes, as the replica verified it

    @property
    def healthy(self) -> bool:
        return self.alive and self.ready and self.digest == self.expected

    @property
    def signed(self) -> str:
        """ "signed by KEY vN, verified" (what the replica checked before it listened), or "unsigned"."""
        return signature_text(self.signature)


@dataclass(frozen=True, slots=True)
class RouteStatus:
    application: str
    pid: int
    url: str
    alive: bool
    table_sha256: str | None  # the table the router has in force
    generation: int | None
    last_error: str | None
    error: str = ""
    models: tuple[dict[str, Any], ...] | None = None  # GET /routing's models, None when it did not answer


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RunStateError(str(path), f"unreadable run-state record: {e}") from e
    if not isinstance(data, dict):
        raise RunStateError(str(path), "a run-state record is a JSON object")
    return data


def _write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())


def _endpoint_from(body: dict[str, Any], path: Path) -> EndpointRecord:
    try:
        instances = tuple(
            Instance(
                int(i["pid"]),
                int(i["start_time"]),
                str(i["url"]),
                str(i.get("log", "")),
                str(i.get("secrets_dir", "")),
                str(i.get("grpc", "")),
            )
            for i in body.get("instances", [])
        )
        return EndpointRecord(
            name=str(body["name"]),
            model=str(body["model"]),
            version=str(body["version"]),
            digest=str(body["digest"]),
            artifact=str(body["artifact"]),
            host=str(body.get("host", "127.0.0.1")),
            instances=instances,
            artifact_ref=str(body.get("artifact_ref", body["artifact"])),
            replicas=int(body.get("replicas", len(instances))),
            labels={str(k): str(v) for k, v in (body.get("labels") or {}).items()},
            secrets={str(k): dict(v) for k, v in (body.get("secrets") or {}).items()},
            release=tuple(str(flag) for flag in body.get("release") or ()),
            signing=dict(body.get("signing") or {}),
            deposed=path.parent.name == "deposed",
            file=str(path),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise RunStateError(str(path), f"not an endpoint record ({type(e).__name__}: {e})") from e


def _route_from(body: dict[str, Any], path: Path) -> RouteRecord:
    try:
        return RouteRecord(
            application=str(body["application"]),
            url=str(body["url"]),
            pid=int(body["pid"]),
            start_time=int(body["start_time"]),
            table=str(body["table"]),
            analytics_dir=str(body.get("analytics_dir", "")),
            log=str(body.get("log", "")),
            host=str(body.get("host", "127.0.0.1")),
            port=int(body.get("port", 0)),
            grpc=str(body.get("grpc", "")),
            file=str(path),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise RunStateError(str(path), f"not a route record ({type(e).__name__}: {e})") from e


class RunDir:
    """The provider's run directory and the paths of everything in it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.endpoints = self.root / "endpoints"
        self.routes = self.root / "routes"
        self.logs = self.root / "logs"
        self.secrets = self.root / "secrets"
        self.signing = self.root / "signing"  # the replicas' trust files and bundles
        self.metrics = MetricsDir(self.root)

    def endpoint_file(self, name: str) -> Path:
        return self.endpoints / f"{name}.json"

    def route_file(self, application: str) -> Path:
        return self.routes / f"{application}.json"

    def table_file(self, application: str) -> Path:
        return self.routes / f"{application}.table.json"

    @property
    def analytics(self) -> Path:
        """The stack's analytics folder: the routers' assignments and tables, the outcome events."""
        return analytics_dir(self.root)

    def log_file(self, stem: str) -> Path:
        return self.logs / f"{stem}.log"

    # -- endpoints --------------------------------------------------------------------------------

    def read_endpoint(self, name: str) -> EndpointRecord | None:
        path = self.endpoint_file(name)
        body = _read_json(path)
        return None if body is None else _endpoint_from(body, path)

    def endpoint_records(self, name: str) -> list[EndpointRecord]:
        """The current record of ``name`` (first, if any) and those of its deposed predecessors."""
        found = [r for r in [self.read_endpoint(name)] if r is not None]
        for path in sorted((self.endpoints / "deposed").glob("*.json")):
            body = _read_json(path)
            if body is not None and body.get("name") == name:
                found.append(_endpoint_from(body, path))
        return found

    def write_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        path = Path(record.file) if record.file else self.endpoint_file(record.name)
        _write_json(path, record.as_dict())
        self._write_endpoint_targets(path, record)
        return replace(record, file=str(path))

    def _write_endpoint_targets(self, path: Path, record: EndpointRecord) -> None:
        """The scrape targets of ``record``'s replicas that listen (Prometheus follows them)."""
        labels = {
            "application": record.labels.get("modelcat/application", ""),
            "model": record.model,
            "version": record.version,
            "endpoint": record.name,
            "role": "replica",
        }
        urls = [instance.url for instance in record.instances]
        write_targets(self.metrics.endpoint_targets(path), urls, {k: v for k, v in labels.items() if v})

    def depose_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        """Move the current record aside: its instances belong to an object being replaced."""
        first = record.instances[0] if record.instances else Instance(0, 0, "", "")
        target = self.endpoints / "deposed" / f"{record.name}.{first.pid}-{first.start_time}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        source = Path(record.file or self.endpoint_file(record.name))
        source.replace(target)
        self.metrics.endpoint_targets(source).unlink(missing_ok=True)
        self._write_endpoint_targets(target, record)
        return replace(record, deposed=True, file=str(target))

    def remove_record(self, record: EndpointRecord | RouteRecord) -> None:
        path = Path(record.file) if record.file else None
        if path is not None:
            path.unlink(missing_ok=True)
            targets = self.metrics.router_targets(record.application) if isinstance(record, RouteRecord) else None
            (targets or self.metrics.endpoint_targets(path)).unlink(missing_ok=True)

    # -- routes -----------------------------------------------------------------------------------

    def read_route(self, application: str) -> RouteRecord | None:
        path = self.route_file(application)
        body = _read_json(path)
        return None if body is None else _route_from(body, path)

    def write_route(self, record: RouteRecord) -> RouteRecord:
        path = self.route_file(record.application)
        _write_json(path, record.as_dict())
        labels = {"application": record.application, "role": "router"}
        write_targets(self.metrics.router_targets(record.application), [record.url], labels)
        return replace(record, file=str(path))


def load_endpoint_records(run_dir: str | Path) -> list[EndpointRecord]:
    """Every endpoint record (deposed ones too), sorted by name; RunStateError on a broken one."""
    folder = RunDir(run_dir).endpoints
    records = []
    for path in sorted([*folder.glob("*.json"), *folder.glob("deposed/*.json")]):
        body = _read_json(path)
        if body is not None:
            records.append(_endpoint_from(body, path))
    return sorted(records, key=lambda r: (r.name, r.deposed, r.file))


def load_route_records(run_dir: str | Path) -> list[RouteRecord]:
    """Every route record, sorted by application (table files are not records)."""
    folder = RunDir(run_dir).routes
    records = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(".table.json"):
            continue
        body = _read_json(path)
        if body is not None:
            records.append(_route_from(body, path))
    return records


def has_records(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds any endpoint, route or Prometheus record (without reading them)."""
    folder = RunDir(run_dir)
    endpoints = [*folder.endpoints.glob("*.json"), *folder.endpoints.glob("deposed/*.json")]
    routes = any(not p.name.endswith(".table.json") for p in folder.routes.glob("*.json"))
    return bool(endpoints) or routes or folder.metrics.record.exists()


def probe_instance(client: httpx.Client, record: EndpointRecord, instance: Instance) -> InstanceStatus:
    """Probe one replica: identity-checked liveness, /v2/health/ready, the digest it serves."""
    import httpx

    def status(**found: Any) -> InstanceStatus:
        base = {"alive": False, "ready": False, "digest": None, "error": "", "signature": None}
        return InstanceStatus(instance.pid, instance.url, expected=record.digest, log=instance.log, **(base | found))

    if not is_alive(instance.ident):
        return status(error="not running")
    if not instance.url:
        return status(alive=True, error="started, not listening yet")
    try:
        ready = client.get(f"{instance.url}/v2/health/ready").status_code == 200
        meta = client.get(f"{instance.url}/v2/models/{record.model}/versions/{record.version}")
        parameters = (meta.json().get("parameters") or {}) if meta.status_code == 200 else {}
        digest, signature = parameters.get("model_digest"), parameters.get("model_signature")
    except (httpx.HTTPError, ValueError, AttributeError) as e:
        return status(alive=True, error=f"{type(e).__name__}: {e}")
    error = "" if digest == record.digest else f"serves {digest}, not {record.digest}"
    signature = signature if isinstance(signature, dict) else None
    return status(alive=True, ready=ready, digest=digest, error=error if ready else "not ready", signature=signature)


def probe_endpoint(record: EndpointRecord, timeout: float = 2.0) -> list[InstanceStatus]:
    """Per recorded instance: pid, url, alive (identity-checked), ready, the digest it serves."""
    with http_client(timeout) as client:
        return [probe_instance(client, record, instance) for instance in record.instances]


def probe_route(record: RouteRecord, timeout: float = 2.0) -> RouteStatus:
    """Whether the router runs (identity-checked) and which table it has in force."""
    import httpx

    base = RouteStatus(record.application, record.pid, record.url, False, None, None, None)
    if not is_alive(record.ident):
        return replace(base, error="not running")
    try:
        with http_client(timeout) as client:
            routing = client.get(f"{record.url}/routing").json()
        table = routing.get("table") or {}
        models = tuple(routing.get("models") or ())
    except (httpx.HTTPError, ValueError, AttributeError) as e:
        return replace(base, alive=True, error=f"{type(e).__name__}: {e}")
    return replace(
        base,
        alive=True,
        table_sha256=table.get("sha256"),
        generation=table.get("generation"),
        last_error=table.get("last_error"),
        models=models,
    )
