"""Blast radius: what an apply of ``head`` would create, update, replace or delete, per stack.

A resource diff of the synthesized bodies of two catalogs (``catalog.synth.resources``), without
Terraform and without state: the configuration of base is taken as what is deployed. A resource
(type and id) only in head is created, only in base deleted; on both sides it is replaced when an
attribute that cannot change in place differs (``REPLACED_BY``), updated when anything else
differs. Terraform's meta-arguments (``lifecycle``, ``depends_on``, ...) change nothing by
themselves. A resource whose body is the same but which refers to a replaced one
(``${type.id.attr}``) is updated too: the new object's computed attributes (replica URLs) are
known only after apply.

Each change is told in model terms where the catalogs allow: the application, model and version
a resource serves, found by its id (``Endpoint.id``, ``ApplicationPlan.id``, a binding's
``resource_id(app, model)``, a version's ``resource_id(model, version)``, or one of them followed
by ``--suffix``), else by its ``modelcat/application|model|version`` labels or tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, computed_field

from catalog.domain.bodies import EndpointBody, MetricsBody, RouterBody
from catalog.domain.deployment import Environment, resource_id
from catalog.domain.diff import version_order
from catalog.domain.strict import STRICT
from catalog.layout import split_stack_name
from catalog.synth.changes import describe_changes
from catalog.synth.resources import StackResources

__all__ = [
    "ACTIONS",
    "META_ARGUMENTS",
    "REPLACED_BY",
    "Action",
    "BlastRadius",
    "ResourceChange",
    "StackChanges",
    "blast_radius",
    "replacing_attributes",
]

Action = Literal["create", "update", "replace", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete")

EVERY = "*"
_KUBERNETES_OBJECT = ("metadata.name", "metadata.namespace")
# Resource type -> the attribute paths whose change makes Terraform replace the object ("*": any
# change). modelcat_*: the bodies' replaced_by (catalog/domain/bodies.py), which the provider marks
# requires_replace. kubernetes_* (the typed resources): the object's name and namespace.
# kubernetes_manifest: the object's identity inside the manifest.
# aws_sagemaker_model and aws_sagemaker_endpoint_configuration are immutable in SageMaker; an
# endpoint keeps its name; an autoscaling target its scalable resource.
REPLACED_BY: dict[str, tuple[str, ...]] = {
    "modelcat_endpoint": EndpointBody.replaced_by,
    "modelcat_route": RouterBody.replaced_by,
    "modelcat_metrics": MetricsBody.replaced_by,
    "kubernetes_manifest": (
        "manifest.apiVersion",
        "manifest.kind",
        "manifest.metadata.name",
        "manifest.metadata.namespace",
    ),
    "kubernetes_deployment_v1": _KUBERNETES_OBJECT,
    "kubernetes_service_v1": _KUBERNETES_OBJECT,
    "kubernetes_horizontal_pod_autoscaler_v2": _KUBERNETES_OBJECT,
    "kubernetes_pod_disruption_budget_v1": _KUBERNETES_OBJECT,
    "kubernetes_config_map_v1": _KUBERNETES_OBJECT,
    "aws_sagemaker_model": (EVERY,),
    "aws_sagemaker_endpoint_configuration": (EVERY,),
    "aws_sagemaker_endpoint": ("name",),
    "aws_appautoscaling_target": ("resource_id", "scalable_dimension", "service_namespace"),
}
# Terraform's own arguments: they steer the plan but are no attribute of the object.
META_ARGUMENTS = frozenset({"lifecycle", "depends_on", "provider", "count", "for_each", "provisioner", "connection"})
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_]+)\.([A-Za-z0-9_-]+)\.[^}]*\}")
_LABEL_KEYS = ("labels", "metadata.labels", "manifest.metadata.labels", "tags")


def replacing_attributes(resource_type: str) -> tuple[str, ...]:
    """The attribute paths of ``resource_type`` whose change replaces the object (see REPLACED_BY)."""
    if resource_type in REPLACED_BY:
        return REPLACED_BY[resource_type]
    return _KUBERNETES_OBJECT if resource_type.startswith("kubernetes_") else ()


class _Strict(BaseModel):
    model_config = STRICT


class ResourceChange(_Strict):
    """One resource an apply would touch, with what it serves."""

    type: str
    id: str
    action: Action
    application: str | None = None
    model: str | None = None
    version: str | None = None
    subject: str  # e.g. "checkout: fraud-scorer 1.4.0 endpoint"
    detail: str = ""  # e.g. "bytes sha256:344eb462ff67 -> sha256:aaaaaaaaaaaa"
    attributes: list[str] = []  # changed attribute paths; for a replace, the ones forcing it first

    @property
    def address(self) -> str:
        return f"{self.type}.{self.id}"


class StackChanges(_Strict):
    stack: str
    environment: str
    target: str
    changes: list[ResourceChange]

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorated property: pydantic's way
    @property
    def counts(self) -> dict[str, int]:
        return {action: sum(c.action == action for c in self.changes) for action in ACTIONS}


class BlastRadius(_Strict):
    stacks: list[StackChanges]  # stacks with at least one change, by name

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorated property: pydantic's way
    @property
    def counts(self) -> dict[str, int]:
        return {action: sum(s.counts[action] for s in self.stacks) for action in ACTIONS}


# -- comparing bodies -------------------------------------------------------------------------


def _leaves(value: Any, prefix: str = "", single_blocks: bool = True) -> dict[str, Any]:
    """``{path: scalar or empty container}``; with ``single_blocks`` (a provider's blocks of at
    most one, as CDK writes them) a one-item list of a block is walked as the block."""
    if isinstance(value, Mapping):
        if not value:
            return {prefix: {}}
        out: dict[str, Any] = {}
        for key in value:
            if not prefix and key in META_ARGUMENTS:
                continue
            out.update(_leaves(value[key], f"{prefix}.{key}" if prefix else str(key), single_blocks))
        return out
    if isinstance(value, list) and value:
        if single_blocks and len(value) == 1 and isinstance(value[0], Mapping):
            return _leaves(value[0], prefix, single_blocks)
        out = {}
        for i, item in enumerate(value):
            out.update(_leaves(item, f"{prefix}.{i}", single_blocks))
        return out
    return {prefix: value}


def _changed_paths(resource_type: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    single_blocks = not resource_type.startswith("modelcat_")  # modelcat's blocks are lists: model.0.route.1
    old, new = _leaves(before, single_blocks=single_blocks), _leaves(after, single_blocks=single_blocks)
    return [p for p in dict.fromkeys([*old, *new]) if old.get(p, _ABSENT) != new.get(p, _ABSENT)]


_ABSENT = object()


def _forces(resource_type: str, changed: Sequence[str]) -> list[str]:
    wanted = replacing_attributes(resource_type)
    if EVERY in wanted:
        return list(changed)
    return [p for p in changed if any(p == w or p.startswith(w + ".") for w in wanted)]


def _references(body: Any) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    if isinstance(body, str):
        found.update(_REFERENCE.findall(body))
    elif isinstance(body, Mapping):
        for value in body.values():
            found |= _references(value)
    elif isinstance(body, list):
        for value in body:
            found |= _references(value)
    return found


# -- model terms ------------------------------------------------------------------------------

_Subject = tuple[str | None, str | None, str | None]  # application, model, version


def subject_index(environments: Iterable[Environment]) -> dict[str, _Subject]:
    """Resource id -> what it serves, for the ids the targets derive from the catalog."""
    index: dict[str, _Subject] = {}
    for env in environments:
        for app in env.applications:
            index[app.id] = (app.name, None, None)
            for binding in app.bindings:
                index[resource_id(app.name, binding.model)] = (app.name, binding.model, None)
                for route in binding.routes:
                    e = route.endpoint
                    index[e.id] = (e.application, e.model, e.version)
                    index.setdefault(resource_id(e.model, e.version), (None, e.model, e.version))  # per version
    return index


def _lookup(index: Mapping[str, _Subject], resource: str) -> _Subject | None:
    if resource in index:
        return index[resource]
    parts = resource.split("--")
    for end in range(len(parts) - 1, 0, -1):  # the longest known prefix: "checkout--router" -> "checkout"
        found = index.get("--".join(parts[:end]))
        if found is not None:
            return found
    return None


def _labelled(body: Mapping[str, Any]) -> _Subject | None:
    for path in _LABEL_KEYS:
        node: Any = body
        for key in path.split("."):
            node = node[0] if isinstance(node, list) and len(node) == 1 else node
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and (node.get("modelcat/application") or node.get("modelcat/model")):
            return (node.get("modelcat/application"), node.get("modelcat/model"), node.get("modelcat/version"))
    return None


_KINDS = {
    "modelcat_endpoint": "endpoint",
    "modelcat_route": "router",
    "modelcat_metrics": "Prometheus",
    "kubernetes_deployment_v1": "Deployment",
    "kubernetes_service_v1": "Service",
    "kubernetes_horizontal_pod_autoscaler_v2": "HorizontalPodAutoscaler",
    "kubernetes_pod_disruption_budget_v1": "PodDisruptionBudget",
    "kubernetes_config_map_v1": "ConfigMap",
}


def _kind_word(resource_type: str, body: Mapping[str, Any]) -> str:
    """What a reviewer calls the object: endpoint, router, Deployment, HTTPRoute, sagemaker model, ..."""
    if resource_type in _KINDS:
        return _KINDS[resource_type]
    if resource_type == "kubernetes_manifest":
        manifest = body.get("manifest")
        if isinstance(manifest, Mapping) and manifest.get("kind"):
            return str(manifest["kind"])
    words = resource_type.removeprefix("kubernetes_").removeprefix("aws_")
    return re.sub(r"_v\d+$", "", words).replace("_", " ")


def _subject_text(found: _Subject | None, kind: str, fallback: str) -> str:
    """``checkout: fraud-scorer 1.4.0 endpoint``, ``checkout: router``, ``fraud-scorer 1.4.0 sagemaker model``."""
    if found is None or not (found[0] or found[1]):
        return f"{fallback} ({kind})"
    app, model, version = found
    served = " ".join(p for p in (model, version) if p)
    if not app:
        return f"{served} {kind}"
    return f"{app}: {served} {kind}" if served else f"{app}: {kind}"


def _detail(resource_type: str, action: Action, before: Any, after: Any) -> str:
    """The provider's own words for modelcat types (as a plan is told), else the changed attributes."""
    if resource_type.startswith("modelcat_"):
        actions = {"replace": ["delete", "create"]}.get(action, [action])
        plan = [
            {"type": resource_type, "address": "", "change": {"actions": actions, "before": before, "after": after}}
        ]
        described = describe_changes(plan)
        # its fallback for a router update without a weight change says nothing the paths do not
        if described and described[0].detail not in ("", "replica addresses change"):
            return described[0].detail
    return ""


_ROUTE_ITEM = re.compile(r"^model\.(\d+)\.(?:route\.(\d+)\.)?(.+)$")


def _route_path(path: str, body: Mapping[str, Any] | None) -> str:
    """A router's ``model.0.route.1.digest`` as ``fraud-scorer 1.4.0 digest``, ``model.0.sticky_key``
    as ``fraud-scorer sticky_key``."""
    match = _ROUTE_ITEM.match(path)
    models = (body or {}).get("model")
    if match is None or not isinstance(models, list) or int(match[1]) >= len(models):
        return path
    model = models[int(match[1])]
    if match[2] is None:
        return f"{model.get('name')} {match[3]}"
    routes = model.get("route")
    if not isinstance(routes, list) or int(match[2]) >= len(routes):
        return path
    return f"{model.get('name')} {routes[int(match[2])].get('version')} {match[3]}"


# -- the diff ---------------------------------------------------------------------------------


def _stack_changes(
    name: str,
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
    index: Mapping[str, _Subject],
) -> StackChanges:
    actions: dict[tuple[str, str], tuple[Action, list[str]]] = {}
    for kind in sorted(before.keys() | after.keys()):
        old, new = before.get(kind, {}), after.get(kind, {})
        for rid in sorted(old.keys() | new.keys()):
            if rid not in new:
                actions[(kind, rid)] = ("delete", [])
            elif rid not in old:
                actions[(kind, rid)] = ("create", [])
            else:
                changed = _changed_paths(kind, old[rid], new[rid])
                forcing = _forces(kind, changed)
                if forcing:
                    actions[(kind, rid)] = ("replace", forcing + [p for p in changed if p not in forcing])
                elif changed:
                    actions[(kind, rid)] = ("update", changed)
    replaced = {key for key, (action, _) in actions.items() if action == "replace"}
    for kind, bodies in after.items():
        for rid, body in bodies.items():
            if (kind, rid) not in actions and rid in before.get(kind, {}):
                follows = sorted(_references(body) & replaced)
                if follows:
                    actions[(kind, rid)] = ("update", [f"{t}.{i} (replaced)" for t, i in follows])
    changes = []
    for (kind, rid), (action, attributes) in actions.items():
        old_body, new_body = before.get(kind, {}).get(rid), after.get(kind, {}).get(rid)
        body = new_body if new_body is not None else old_body
        assert body is not None  # an action is found for a body before or after
        found = _lookup(index, rid) or _labelled(body)
        word = _kind_word(kind, body)
        detail = _detail(kind, action, old_body, new_body)
        if not detail and action in ("update", "replace"):
            shown = [_route_path(p, new_body) for p in attributes[:4]] if kind == "modelcat_route" else attributes[:4]
            detail = ", ".join(shown) + (
                f" and {len(attributes) - len(shown)} more" if len(attributes) > len(shown) else ""
            )
        app, model, version = found or (None, None, None)
        changes.append(
            ResourceChange(
                type=kind,
                id=rid,
                action=action,
                application=app,
                model=model,
                version=version,
                subject=_subject_text(found, word, f"{kind}.{rid}"),
                detail=detail,
                attributes=attributes,
            )
        )
    changes.sort(key=_order)
    environment, target = split_stack_name(name)
    return StackChanges(stack=name, environment=environment, target=target, changes=changes)


def _order(change: ResourceChange) -> tuple[Any, ...]:
    version = version_order(change.version) if change.version else ()
    return (change.application is None, change.application or "", change.model or "", version, change.type, change.id)


def blast_radius(base: StackResources, head: StackResources, environments: Iterable[Environment] = ()) -> BlastRadius:
    """Per stack, every resource an apply of ``head`` over ``base`` creates, updates, replaces or
    deletes; ``environments`` (of both catalogs) name what each resource serves."""
    index = subject_index(environments)
    stacks = []
    for name in sorted(base.keys() | head.keys()):
        stack = _stack_changes(name, base.get(name, {}), head.get(name, {}), index)
        if stack.changes:
            stacks.append(stack)
    return BlastRadius(stacks=stacks)
