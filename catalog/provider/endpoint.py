"""Resource ``modelcat_endpoint``: N local replica processes serving one verified model version.

Terraform's view of an endpoint is its healthy replicas: ``read`` keeps only instances that run
(identity-checked) and answer ready with the expected digest, and sets ``replicas`` to their
number, so a dead replica shows up in the next plan as ``replicas: 1 -> 2`` and ``apply`` heals
it. Changing model, version, digest, artifact, host, bundle or require_signatures replaces the
endpoint; with ``create_before_destroy`` the new replicas start (and the old record is set aside
as deposed) before the old ones are stopped. A change of the ``trusted_key`` blocks alone (a nested
block, which cannot require replacement) is an update that does the same within the record: new
replicas verify under the new keys, then the old ones stop; if they cannot, the old ones are left
running and the apply fails with the reason.

Before a replica starts, the bundle is fetched and the trust file written
(``catalog.provider.signatures``); the replica verifies them before it listens
(``catalog.serving.signature``), and its refusal (exit 1 with the reason) fails the create.

Secrets (``secret`` blocks, ``catalog.provider.secrets``): read from Vault before any replica
starts (a missing path, Vault down or sealed, or a token refused, even one expiring mid-apply, fails
the create naming the path, with Vault's hint, and nothing of that endpoint starts), handed to
each replica as files in a private folder, and recorded by path and version (``secret_versions``).
``plan`` compares those versions with the ones Vault would give now (a new KV version of a secret
not pinned, or a pinned version changed): a difference is an update, which restarts the replicas
one at a time on their own ports, so the router always has the others to send to.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

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
from tf.types import List, Map, Number, String, Unknown
from tf.utils import Diagnostics

from catalog.domain.bodies import DEFAULT_HOST, EndpointBody
from catalog.errors import ModelcatError, VaultError
from catalog.provider.body_schema import body_schema, is_whole
from catalog.provider.config import RunResource
from catalog.provider.processes import (
    ProcessId,
    process_cmdline,
    replica_argv,
    start_process,
    start_time_of,
    stop_process,
    wait_port_free,
    wait_replica_ready,
)
from catalog.provider.runstate import NAME, EndpointRecord, Instance, probe_endpoint
from catalog.provider.secrets import (
    SECRETS_DIR_ENV,
    SecretValues,
    read_secrets,
    remove_secrets_folder,
    secret_specs,
    wanted_versions,
    write_secrets_folder,
)

__all__ = ["EndpointResource", "parallel"]

_RELEASE_FLAGS = ("--trust", "--bundle", "--bundle-digest")  # a replica's release check (see _release)
_SIGNING = ("bundle", "bundle_digest", "require_signatures", "trusted_key")  # what the replicas verify
_T = TypeVar("_T")
_R = TypeVar("_R")


def parallel(func: Callable[[_T], _R], items: Sequence[_T]) -> list[_R | BaseException]:
    """``func`` over ``items`` in threads; each result, or the exception it raised, in order."""
    if not items:
        return []

    def guarded(item: _T) -> _R | BaseException:
        try:
            return func(item)
        except Exception as e:  # noqa: BLE001  (handed back to the caller, which reports it)
            return e

    with ThreadPoolExecutor(max_workers=min(len(items), 16)) as pool:
        return list(pool.map(guarded, items))


def _instance(ident: ProcessId, url: str, log: Path, secrets_dir: Path | None = None, grpc: str = "") -> Instance:
    return Instance(ident.pid, ident.start_time, url, str(log), str(secrets_dir or ""), grpc)


def _port(url: str) -> int:
    """The port of a replica's base URL (``http://127.0.0.1:PORT``) or gRPC address (``127.0.0.1:PORT``)."""
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _held_versions(state: State) -> dict[str, int]:
    held = state.get("secret_versions")
    return {str(k): int(v) for k, v in held.items()} if isinstance(held, dict) else {}


def _count(value: object) -> int | None:
    return int(value) if is_whole(value) else None


def _reason(e: ModelcatError) -> str:
    """A diagnostic's detail: the error, and for Vault's refusals what to do (log in again, unseal,
    ...), the hint the CLI would print had the error not crossed Terraform."""
    return f"{e}\nhint: {e.hint}" if isinstance(e, VaultError) else str(e)


class EndpointResource(RunResource):
    """``replicas`` replica processes of one model version, verified against ``digest``."""

    @classmethod
    def get_name(cls) -> str:
        return "endpoint"

    @classmethod
    def get_schema(cls) -> Schema:
        return body_schema(
            EndpointBody,
            computed=[
                Attribute("urls", List(String()), description="Base URLs of the healthy replicas", computed=True),
                Attribute(
                    "grpc_addresses",
                    List(String()),
                    description="Where the healthy replicas serve OIP over gRPC (host:port), for the router",
                    computed=True,
                ),
                Attribute("pids", List(Number()), description="Process ids of the healthy replicas", computed=True),
                Attribute(
                    "secret_versions",
                    Map(Number()),
                    description="The KV version of each secret the replicas hold (never a value)",
                    computed=True,
                ),
            ],
        )

    def validate(self, diags: Diagnostics, type_name: str, config: dict[str, Any]) -> None:
        from catalog.domain.digests import DIGEST

        super().validate(diags, type_name, config)
        name, digest, replicas = config.get("name"), config.get("digest"), config.get("replicas")
        if isinstance(name, str) and not re.fullmatch(NAME, name):
            diags.add_error(
                f"{type_name}: name {name!r} is not usable as a file name",
                "use letters, digits, '.', '_' and '-' (no '..'), starting with a letter or digit, up to 200",
                path=["name"],
            )
        if isinstance(digest, str) and not re.fullmatch(DIGEST, digest):
            diags.add_error(f"{type_name}: digest {digest!r} is not sha256:<64 lowercase hex>", path=["digest"])
        if replicas is not None and replicas is not Unknown and (_count(replicas) or 0) < 1:
            diags.add_error(f"{type_name}: replicas must be a whole number >= 1, not {replicas}", path=["replicas"])

    # -- helpers ----------------------------------------------------------------------------------

    def _start(
        self,
        record: EndpointRecord,
        count: int,
        keep: Sequence[Instance] = (),
        values: SecretValues | None = None,
        port: int = 0,
        grpc_port: int = 0,
    ) -> list[Instance]:
        """Start ``count`` replicas at once (beside the running ``keep``) and wait until each serves
        the right bytes; on any failure stop those that did start and raise the first failure.
        Each gets its own folder of ``values`` (the endpoint's secrets), and listens on ``port``
        and for gRPC on ``grpc_port`` (default 0: any free one).

        Each replica is on record from the moment it is spawned, before it listens (``record`` is
        written with ``keep`` and the replicas so far): whatever stops this provider, even a
        second Ctrl-C, no replica runs that the run records do not list."""
        lock = threading.Lock()
        spawned: dict[int, Instance] = {}

        def note(slot: int, instance: Instance) -> None:
            with lock:
                spawned[slot] = instance
                self.run.write_endpoint(record.with_instances([*keep, *spawned.values()]))

        def one(slot: int) -> Instance:
            log = self.run.log_file(f"endpoint-{record.name}-{secrets.token_hex(4)}")
            argv = replica_argv(
                record.model, record.version, Path(record.artifact), record.digest, record.host, port, record.release,
                grpc_port,
            )  # fmt: skip
            what = f"replica {record.model} {record.version} of endpoint {record.name}"
            folder = write_secrets_folder(self.run.secrets, record.name, values) if values else None
            try:
                started = start_process(
                    argv,
                    log,
                    what,
                    on_spawn=lambda ident: note(slot, _instance(ident, "", log, folder)),
                    env={SECRETS_DIR_ENV: str(folder)} if folder else None,
                )
            except BaseException:
                remove_secrets_folder(folder or "")
                raise
            note(slot, _instance(started.ident, started.url, log, folder, started.grpc))
            try:
                wait_replica_ready(started, record.model, record.version, record.digest)
            except BaseException:
                stop_process(started.ident)
                remove_secrets_folder(folder or "")
                raise
            return spawned[slot]

        results = parallel(one, list(range(count)))
        ok = [r for r in results if isinstance(r, Instance)]
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self._stop(ok)
            with lock:  # the others stopped themselves or exited
                if keep:
                    self.run.write_endpoint(record.with_instances(keep))
                else:
                    Path(record.file or self.run.endpoint_file(record.name)).unlink(missing_ok=True)
            raise failed[0]
        return sorted(ok, key=lambda i: (i.start_time, i.pid))

    def _stop(self, instances: Sequence[Instance], diags: Diagnostics | None = None) -> None:
        """Stop instances (identity-checked, drained) and wait until their ports are free."""

        def one(instance: Instance) -> None:
            stop_process(instance.ident)
            remove_secrets_folder(instance.secrets_dir)
            for where in filter(None, (instance.url, instance.grpc and f"grpc://{instance.grpc}")):
                if not wait_port_free(where) and diags is not None:
                    diags.add_warning(f"modelcat: port of {where} still in use after its replica stopped")

        for result in parallel(one, list(instances)):
            if isinstance(result, BaseException) and diags is not None:
                diags.add_warning(f"modelcat: stopping a replica failed: {result}")

    def _restart(
        self, record: EndpointRecord, replicas: list[Instance], values: SecretValues | None, diags: Diagnostics
    ) -> None:
        """Replace ``replicas`` (in place) one at a time by replicas holding ``values``: stop one
        (drained), start its successor on the same port and wait until it serves, then the next;
        the router sends to the others meanwhile. On a failure ``replicas`` holds those that run."""
        for old in list(replicas):
            at = replicas.index(old)
            del replicas[at]
            self._stop([old], diags)
            self.run.write_endpoint(record.with_instances(replicas))
            ports = {"port": _port(old.url) if old.url else 0, "grpc_port": _port(old.grpc) if old.grpc else 0}
            [new] = self._start(record, 1, replicas, values, **ports)
            replicas.insert(at, new)

    def _secrets(self, state: State) -> SecretValues | None:
        """The endpoint's secrets read from Vault (None when it has none); VaultError names the path."""
        specs = secret_specs(state.get("secret"))
        if not specs:
            return None
        from catalog.vault import Vault  # hvac: only for an endpoint with secrets

        return read_secrets(specs, Vault.from_env())

    def _records_for(self, state: State) -> list[EndpointRecord]:
        """The records of this object: those holding one of its pids, else the current record if
        it names the same model, version and digest."""
        records = self.run.endpoint_records(state["name"])
        pids = {int(p) for p in state.get("pids") or [] if p is not Unknown}
        mine = [r for r in records if pids & {i.pid for i in r.instances}]
        if mine:
            return mine
        same = (state.get("model"), state.get("version"), state.get("digest"))
        return [r for r in records if not r.deposed and (r.model, r.version, r.digest) == same][:1]

    def _adopt(self, state: State) -> EndpointRecord | None:
        """With no record at all: adopt the state's processes that prove to be its replicas."""
        found, artifact, release = [], "", []
        for pid, url in zip(state.get("pids") or [], state.get("urls") or [], strict=False):
            argv = process_cmdline(int(pid))
            flags = dict(itertools.pairwise(argv))
            if "catalog.cli.replica_command" in argv and flags.get("--digest") == state["digest"]:
                start = start_time_of(int(pid))
                if start is not None:
                    found.append(Instance(int(pid), start, url, ""))
                    artifact = flags.get("--artifact", "")
                    release = [part for flag in _RELEASE_FLAGS if flag in flags for part in (flag, flags[flag])]
        if not found:
            return None
        record = self._new_record(state, artifact=artifact, release=release)
        return self.run.write_endpoint(record.with_instances(found))

    def _new_record(
        self, state: State, artifact: str, values: SecretValues | None = None, release: Sequence[str] = ()
    ) -> EndpointRecord:
        return EndpointRecord(
            name=state["name"],
            model=state["model"],
            version=state["version"],
            digest=state["digest"],
            artifact=artifact,
            host=state.get("host") or DEFAULT_HOST,
            artifact_ref=state["artifact"],
            replicas=_count(state.get("replicas")) or 0,
            labels=dict(state.get("labels") or {}),
            secrets={s.name: s.as_dict() for s in values.delivered} if values else {},
            release=tuple(release),
            signing=_signing_of(state),
        )

    def _release(self, state: State) -> list[str]:
        """The replicas' release-check flags: the bundle fetched and the trust file written (the
        store's, signing's or Vault's error when they cannot be)."""
        from catalog.provider.signatures import prepare_release_check

        check = prepare_release_check(state, self.run.signing, self.provider.catalog_dir())
        return check.argv() if check else []

    def _artifact(self, state: State) -> str:
        """The verified local path of the state's artifact (ArtifactError if it is not right)."""
        from catalog.provider.artifacts import resolve_artifact  # onnx, numpy: only when starting

        catalog = self.provider.catalog_quietly()
        base = self.provider.catalog_dir()
        return str(
            resolve_artifact(state["artifact"], state["digest"], state["model"], state["version"], base, catalog)
        )

    @staticmethod
    def _with(state: State, instances: Sequence[Instance], **changes: Any) -> State:
        grpc = [i.grpc for i in instances if i.grpc]
        return {**state, **changes, "urls": [i.url for i in instances], "grpc_addresses": grpc,
                "pids": [i.pid for i in instances]}  # fmt: skip

    # -- lifecycle --------------------------------------------------------------------------------

    def create(self, ctx: CreateContext, planned: State) -> State | None:
        diags, name = ctx.diagnostics, planned["name"]
        planned = {**planned, "host": planned.get("host") or DEFAULT_HOST}
        try:
            artifact = self._artifact(planned)
            existing = self.run.read_endpoint(name)
            if existing is not None:
                if any(s.alive for s in probe_endpoint(existing)):
                    self.run.depose_endpoint(existing)  # the object this one replaces: deleted later
                else:
                    self.run.remove_record(existing)
            values = self._secrets(planned)  # before anything starts: no secret, nothing serves
            record = self._new_record(planned, artifact, values, self._release(planned))
            instances = self._start(record, _count(planned["replicas"]) or 1, values=values)
        except ModelcatError as e:
            diags.add_error(f"modelcat_endpoint {name}: cannot start its replicas", _reason(e))
            return None
        self.run.write_endpoint(record.with_instances(instances))
        return self._with(planned, instances, secret_versions=values.versions if values else None)

    def read(self, ctx: ReadContext, current: State) -> State | None:
        try:
            records = self._records_for(current) or [r for r in [self._adopt(current)] if r is not None]
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_endpoint {current.get('name')}: {e}")
            return current
        if not records:
            return None  # no record and nothing of ours running: the endpoint is gone
        healthy = [
            instance
            for record in records
            for instance, status in zip(record.instances, probe_endpoint(record), strict=True)
            if status.healthy
        ]
        held = {name: int(s["version"]) for name, s in records[0].secrets.items()}
        return self._with(current, healthy, replicas=len(healthy), secret_versions=held or None)

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State | None:
        if current is None:
            return planned
        urls = current.get("urls")
        changed = planned.get("replicas") != current.get("replicas") or _retrusted(current, planned)
        if changed or not isinstance(urls, list) or len(urls) != _count(current.get("replicas")):
            planned = {**planned, "urls": Unknown, "grpc_addresses": Unknown, "pids": Unknown}
        specs = secret_specs(planned.get("secret"))
        held = _held_versions(current)
        if not specs and not held:
            return planned
        try:
            from catalog.vault import Vault

            wanted = wanted_versions(specs, Vault.from_env()) if specs else {}
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_endpoint {planned['name']}: cannot read its secrets", _reason(e))
            return planned
        if wanted != held:  # a new KV version, or another one pinned: the replicas restart
            planned = {
                **planned,
                "urls": Unknown,
                "grpc_addresses": Unknown,
                "pids": Unknown,
                "secret_versions": Unknown,
            }
        return planned

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        diags, name = ctx.diagnostics, planned["name"]
        want = _count(planned["replicas"]) or 1
        records = self._records_for(current)
        if records:
            record = records[0]
        else:
            try:
                record = self._new_record(planned, self._artifact(planned), release=self._release(planned))
            except ModelcatError as e:
                diags.add_error(f"modelcat_endpoint {name}: cannot resolve its artifact", _reason(e))
                return current
        keep: list[Instance] = []
        broken: list[Instance] = []
        for other in records:
            for instance, status in zip(other.instances, probe_endpoint(other), strict=True):
                (keep if status.healthy else broken).append(instance)
        self._stop(broken, diags)
        if len(keep) > want:  # scale down: the newest go first, drained
            by_age = sorted(keep, key=lambda i: (i.start_time, i.pid))
            keep, surplus = by_age[:want], by_age[want:]
            self._stop(surplus, diags)
        for other in records[1:]:
            self.run.remove_record(other)
        record = replace(record, replicas=want, labels=dict(planned.get("labels") or {}))
        held = record.secrets
        try:
            values = self._secrets(planned)
        except ModelcatError as e:  # fail closed: the replicas keep the secrets they hold
            diags.add_error(f"modelcat_endpoint {name}: cannot read its secrets", _reason(e))
            self.run.write_endpoint(record.with_instances(keep))
            return self._with(current, keep, replicas=len(keep))
        delivered = {s.name: s.as_dict() for s in values.delivered} if values else {}
        if records and _retrusted(current, planned):
            before = record
            try:  # the trusted keys changed: every replica verifies again under them, new ones first
                release = tuple(self._release(planned))
                record = replace(record, secrets=delivered, release=release, signing=_signing_of(planned))
                fresh = self._start(record, want, keep, values)
            except ModelcatError as e:
                diags.add_error(
                    f"modelcat_endpoint {name}: cannot start its replicas under the changed trusted keys "
                    "(the running ones are left as they are)",
                    _reason(e),
                )
                self.run.write_endpoint(before.with_instances(keep))
                return self._with(current, keep, replicas=len(keep))
            self._stop(keep, diags)
            keep, held = fresh, delivered  # they hold the secrets too: no rotation below
        record = replace(record, secrets=delivered)
        versions = values.versions if values else None
        try:
            if len(keep) < want and not Path(record.artifact).exists():  # e.g. an OCI cache entry cleared
                record = replace(record, artifact=self._artifact(planned))
            if record.secrets != held:  # rotated: one replica at a time, each on its own port
                self._restart(record, keep, values, diags)
            keep += self._start(record, want - len(keep), keep, values) if len(keep) < want else []
        except ModelcatError as e:
            diags.add_error(f"modelcat_endpoint {name}: cannot start its replicas", _reason(e))
            if record.secrets != held:  # not every replica got them: the next plan restarts them all again
                record = replace(record, secrets=held)
                versions = {key: int(s["version"]) for key, s in held.items()} or None
            self.run.write_endpoint(record.with_instances(keep))
            return self._with(planned, keep, replicas=len(keep), secret_versions=versions)
        keep.sort(key=lambda i: (i.start_time, i.pid))
        self.run.write_endpoint(record.with_instances(keep))
        return self._with(planned, keep, secret_versions=versions)

    def delete(self, ctx: DeleteContext, current: State) -> None:
        try:
            records = self._records_for(current) or [r for r in [self._adopt(current)] if r is not None]
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_endpoint {current.get('name')}: {e}")
            return
        for record in records:
            self._stop(record.instances, ctx.diagnostics)
            self.run.remove_record(record)

    def import_(self, ctx: ImportContext, id: str) -> State | None:
        try:
            record = self.run.read_endpoint(id)
        except ModelcatError as e:
            ctx.diagnostics.add_error(f"modelcat_endpoint {id}: {e}")
            return None
        if record is None:
            ctx.diagnostics.add_error(
                f"modelcat_endpoint {id}: no record", f"{self.run.endpoint_file(id)} does not exist"
            )
            return None
        state = {
            "name": record.name,
            "model": record.model,
            "version": record.version,
            "digest": record.digest,
            "artifact": record.artifact_ref or record.artifact,
            "host": record.host,
            "labels": record.labels or None,
            "secret": [  # a pinned version is the configuration's to say: the next plan compares
                {"name": name, "vault": s["vault"], "field": s.get("field"), "version": None}
                for name, s in record.secrets.items()
            ]
            or None,
        }
        state |= _signing(record.signing)
        versions = {name: int(s["version"]) for name, s in record.secrets.items()} or None
        return self._with(
            state, record.instances, replicas=record.replicas or len(record.instances), secret_versions=versions
        )

    def upgrade(self, ctx: UpgradeContext, version: int, old: State) -> State | None:
        """A state stored before the signature fields existed gets them, empty."""
        return _signing(old) | old


def _retrusted(current: State, planned: State) -> bool:
    """Whether the trusted keys changed: every replica then starts again, verifying under the new ones."""
    return (planned.get("trusted_key") or None) != (current.get("trusted_key") or None)


def _signing_of(state: State) -> dict[str, Any]:
    """The signature fields a state sets, kept in the endpoint's record."""
    return {key: state[key] for key in _SIGNING if state.get(key)}


def _signing(fields: Mapping[str, Any]) -> State:
    """The signature fields of a state (absent ones empty: null attributes, no ``trusted_key`` block)."""
    return {key: fields.get(key) or ([] if key == "trusted_key" else None) for key in _SIGNING}
