"""What a catalog asks to run: per environment, the endpoints and each application's traffic split.

Pure, no IO. Every target (local processes, Kubernetes, KServe, SageMaker) compiles the same
``Environment`` objects, so a fact such as "checkout sends 10 % of fraud-scorer traffic to 1.4.0,
served by 3 replicas of sha256:344e…" has exactly one source.

An endpoint is one model version serving one application: its replicas run that version's
verified bytes and nothing else. Endpoints are per application so that each application scales
its serving independently; a disabled binding routes nothing and runs nothing.

An environment carries the target it deploys to by default and its settings for each target
(from ``environments:``; without that section, every environment is local with no settings), and
each binding the rollout that governs how a change to its routes takes effect.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from catalog.domain.analysis_plan import OutcomeKind
from catalog.domain.effective import (
    EffectiveRollout,
    EffectiveServing,
    declared_environments,
    effective_rollout,
    effective_serving,
    semver_key,
)
from catalog.domain.models import (
    Catalog,
    EnvironmentSpec,
    KServeSettings,
    KubernetesSettings,
    SageMakerSettings,
    SecretRef,
    Shadow,
    SignatureBundle,
)
from catalog.domain.trust import EnvironmentKeys, environment_keys

__all__ = [
    "ApplicationPlan",
    "BindingPlan",
    "Endpoint",
    "Environment",
    "MirrorPlan",
    "RoutePlan",
    "environments",
    "resource_id",
]

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
# A part that can be read back from its readable form: runs of letters and digits joined by single
# '.', '+' or '-' (what names and semantic versions are).
_READABLE = re.compile(r"^[A-Za-z0-9]+([.+-][A-Za-z0-9]+)*$")
_ID_HASH = 8
MAX_NAME = 200  # an endpoint's name: what a run record's file name may hold
_DEFAULT_SHADOW = Shadow(percent=1)  # the tolerance of a mirror whose rollout declares no shadow


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_ID_HASH]


def resource_id(*parts: str) -> str:
    """A Terraform identifier for ``parts``, different for different parts (by construction).

    Readable where it can be: the parts joined by '--', '.' written '_' and '+' written '__'
    (``checkout--fraud-scorer--1_3_0``, ``..--2_0_0__build_7``), with a '_' in front when that
    starts with a digit (Terraform names start with a letter or '_': ``_3d-viewer``). When a part
    cannot be read back from that (it holds '--' or another symbol, or starts or ends with one),
    a hash of the exact parts follows '---', which a readable identifier never holds.
    """
    if all(_READABLE.match(part) for part in parts):
        name = "--".join(part.replace("+", "__").replace(".", "_") for part in parts)
    else:
        readable = "--".join(_NOT_ID.sub("_", part) for part in parts)
        name = f"{readable}---{_hash(*parts)}"
    return name if name[:1].isalpha() else f"_{name}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The replicas of one model version for one application."""

    application: str
    environment: str
    model: str
    version: str
    digest: str
    artifact: str  # the catalog's artifact URI, relative to the catalog file when not a URL
    size_bytes: int
    stage: str
    serving: EffectiveServing
    secrets: tuple[SecretRef, ...] = ()  # the environment's: what its replicas read, by Vault path
    bundle: SignatureBundle | None = field(default=None, hash=False)  # the version's release signature

    @property
    def name(self) -> str:
        """``checkout.fraud-scorer.1.3.0``; a safe file name too (the local target's run records are
        named by it): a version's '+' written '_' (no semantic version holds '_'), and past
        ``MAX_NAME`` characters the head of it and a hash of the exact parts."""
        name = f"{self.application}.{self.model}.{self.version.replace('+', '_')}"
        if len(name) <= MAX_NAME:
            return name
        return f"{name[: MAX_NAME - _ID_HASH - 1]}-{_hash(self.application, self.model, self.version)}"

    @property
    def id(self) -> str:
        return resource_id(self.application, self.model, self.version)

    def labels(self) -> dict[str, str]:
        """What every object serving this endpoint is labelled with."""
        return {
            "modelcat/application": self.application,
            "modelcat/environment": self.environment,
            "modelcat/model": self.model,
            "modelcat/version": self.version,
            "modelcat/digest": self.digest,
            "modelcat/stage": self.stage,
        }


@dataclass(frozen=True, slots=True)
class RoutePlan:
    version: str
    weight: int
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class MirrorPlan:
    """A shadow step in force: ``percent`` of the binding's requests copied to ``version`` (spelled
    as the catalog's version), whose scores agree with the live ones within ``max_abs_difference``
    (the rollout's ``shadow``, else the ``Shadow`` default)."""

    version: str
    percent: int
    max_abs_difference: float


@dataclass(frozen=True, slots=True)
class BindingPlan:
    model: str
    sticky_key: str | None
    routes: tuple[RoutePlan, ...]  # in the catalog's order: it fixes which buckets each version owns
    rollout: EffectiveRollout = field(default_factory=EffectiveRollout)  # how a change to these routes takes effect
    mirror: MirrorPlan | None = None  # the binding's mirror (a rollout's shadow step), when one is in force


@dataclass(frozen=True, slots=True)
class ApplicationPlan:
    name: str
    environment: str
    owner: str
    bindings: tuple[BindingPlan, ...]  # enabled bindings only
    outcomes: tuple[tuple[str, OutcomeKind], ...] = ()  # declared outcomes, (name, kind) in order

    @property
    def id(self) -> str:
        return resource_id(self.name)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(route.endpoint for binding in self.bindings for route in binding.routes)


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    applications: tuple[ApplicationPlan, ...]
    target: str = "local"  # the target it deploys to unless told otherwise (--target)
    kubernetes: KubernetesSettings | None = None
    kserve: KServeSettings | None = None
    sagemaker: SageMakerSettings | None = None
    secrets: tuple[SecretRef, ...] = ()  # what its replicas read, by Vault KV v2 path (never a value)
    trust: EnvironmentKeys = field(default_factory=lambda: EnvironmentKeys(False, ()), hash=False)  # who may sign

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for app in self.applications for e in app.endpoints)

    def settings(self, target: str) -> KubernetesSettings | KServeSettings | SageMakerSettings | None:
        """This environment's settings block for ``target`` (None for local, or when it has none)."""
        return getattr(self, target) if target in ("kubernetes", "kserve", "sagemaker") else None


def environments(catalog: Catalog, only: Iterable[str] | None = None) -> list[Environment]:
    """Every environment named by an application (or just ``only``), sorted by name, with its
    target and settings. A declared environment no application names is left out.

    A catalog to deploy must be valid (every route names a version that exists, every
    application's environment is declared when ``environments:`` is present). Of an invalid one
    (``validate`` checks the targets' limits on what it can), the items that failed the schema
    (None) and the routes to versions it lacks are left out.
    """
    wanted = set(only) if only is not None else None
    specs = {spec.name: spec for spec in declared_environments(catalog)}
    versions = {(m.name, semver_key(v.version)): v for m in catalog.models if m is not None for v in m.versions}
    by_env: dict[str, list[ApplicationPlan]] = {}
    for app in catalog.applications:
        if app is None or (wanted is not None and app.environment not in wanted):
            continue
        bindings = []
        spec = specs.get(app.environment)
        secrets = tuple(spec.secrets) if spec is not None else ()
        for binding in app.bindings:
            if binding is None or not binding.enabled:
                continue
            serving = effective_serving(catalog, binding)
            routes = []
            for route in binding.routes:
                version = versions.get((binding.model, semver_key(route.version)))
                if version is None:
                    continue
                endpoint = Endpoint(
                    application=app.name,
                    environment=app.environment,
                    model=binding.model,
                    version=version.version,
                    digest=version.artifact.digest,
                    artifact=version.artifact.uri,
                    size_bytes=version.artifact.size_bytes,
                    stage=version.stage,
                    serving=serving,
                    secrets=secrets,
                    bundle=version.artifact.bundle,
                )
                routes.append(RoutePlan(version.version, route.weight, endpoint))
            rollout = effective_rollout(catalog, binding)
            mirror = None
            if binding.mirror is not None:
                mirrored = versions.get((binding.model, semver_key(binding.mirror.version)))
                tolerance = (rollout.shadow or _DEFAULT_SHADOW).max_abs_difference
                version_name = mirrored.version if mirrored is not None else binding.mirror.version
                mirror = MirrorPlan(version_name, binding.mirror.percent, tolerance)
            bindings.append(BindingPlan(binding.model, binding.sticky_key, tuple(routes), rollout, mirror))
        outcomes = tuple((outcome.name, outcome.kind) for outcome in app.outcomes)
        plan = ApplicationPlan(app.name, app.environment, app.owner, tuple(bindings), outcomes)
        by_env.setdefault(app.environment, []).append(plan)
    result = []
    for name, apps in sorted(by_env.items()):
        spec = specs.get(name) or EnvironmentSpec(name=name)
        env = Environment(
            name,
            tuple(apps),
            spec.target,
            spec.kubernetes,
            spec.kserve,
            spec.sagemaker,
            tuple(spec.secrets),
            environment_keys(catalog, name),
        )
        result.append(env)
    return result
