"""Blast radius: the resources an apply would create, update, replace or delete, per stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.domain.deployment import environments
from catalog.errors import UsageError
from catalog.layout import split_stack_name
from catalog.synth import synthesize
from catalog.synth.app import TARGET_CLASSES, TARGET_MODULES, get_target
from catalog.synth.blast import REPLACED_BY, blast_radius, replacing_attributes
from catalog.synth.resources import synthesize_resources
from catalog.validate import load_catalog
from tests.git_catalogs import (
    FRAUD_1_3_0,
    add_version,
    catalog_of,
    demo_text,
    fraud_scorer_bytes,
    swap_artifact,
)
from tests.helpers import DEMO


def _blast(before: str, after: str, target: str | None = None):
    old, new = catalog_of(before), catalog_of(after)
    return blast_radius(
        synthesize_resources(old, DEMO, target),
        synthesize_resources(new, DEMO, target),
        [*environments(old), *environments(new)],
    )


def _table(blast) -> dict[str, list[tuple[str, str]]]:
    return {s.stack: [(c.action, c.address) for c in s.changes] for s in blast.stacks}


def test_bodies_are_the_ones_synth_writes(tmp_path: Path) -> None:
    catalog = load_catalog(DEMO)
    written = synthesize(catalog, DEMO, tmp_path / "out")
    bodies = synthesize_resources(catalog, DEMO)
    assert sorted(bodies) == sorted(s.name for s in written.stacks) == ["production-local", "staging-local"]
    for stack in written.stacks:
        assert json.loads(stack.path.read_bytes())["resource"] == bodies[stack.name]


@pytest.mark.parametrize("target", ["kubernetes", "kserve"])
def test_bodies_of_other_targets_equal_their_golden_files(target: str) -> None:
    catalog = load_catalog(DEMO)
    only = ["production"] if target == "kserve" else None  # staging has no kserve: block
    bodies = synthesize_resources(catalog, DEMO, target, only)
    golden = Path(__file__).parent.parent / "golden" / target
    for stack, resources in bodies.items():
        expected = json.loads((golden / f"{stack}.json").read_text())["resource"]
        assert json.loads(json.dumps(resources)) == expected


def test_same_catalog_changes_nothing() -> None:
    text = demo_text()
    assert _blast(text, text).stacks == []
    assert _blast(text, text, "kubernetes").counts == {"create": 0, "update": 0, "replace": 0, "delete": 0}


def test_weight_change_on_a_local_app_updates_exactly_its_router() -> None:
    text = demo_text()
    after = text.replace("{version: 1.3.0, weight: 90}", "{version: 1.3.0, weight: 80}").replace(
        "{version: 1.4.0, weight: 10}", "{version: 1.4.0, weight: 20}"
    )
    blast = _blast(text, after)
    assert _table(blast) == {"production-local": [("update", "modelcat_route.checkout")]}
    (change,) = blast.stacks[0].changes
    assert (change.application, change.model, change.version) == ("checkout", None, None)
    assert change.subject == "checkout: router"
    assert change.detail == "fraud-scorer 1.3.0 90 -> 80 %, fraud-scorer 1.4.0 10 -> 20 %"
    assert change.attributes == ["model.0.route.0.weight", "model.0.route.1.weight"]


def test_digest_swap_replaces_the_endpoint_and_updates_the_router() -> None:
    text = demo_text()
    after, new_hex = swap_artifact(text, FRAUD_1_3_0, fraud_scorer_bytes(seed=3))
    blast = _blast(text, after)
    assert _table(blast) == {
        "production-local": [
            ("update", "modelcat_route.checkout"),
            ("replace", "modelcat_endpoint.checkout--fraud-scorer--1_3_0"),
        ]
    }
    replaced = blast.stacks[0].changes[1]
    assert (replaced.application, replaced.model, replaced.version) == ("checkout", "fraud-scorer", "1.3.0")
    assert replaced.attributes[:2] == ["digest", "artifact"]  # the ones forcing it first
    assert replaced.detail == f"bytes sha256:{FRAUD_1_3_0[:12]} -> sha256:{new_hex[:12]}"
    assert replaced.subject == "checkout: fraud-scorer 1.3.0 endpoint"
    router = blast.stacks[0].changes[0]
    assert (router.attributes, router.detail) == (["model.0.route.0.digest"], "fraud-scorer 1.3.0 digest")


def test_a_change_of_a_routers_model_blocks_is_told_by_model_name() -> None:
    text = demo_text()
    after = text.replace("sticky_key: x-session-id", "sticky_key: x-visitor-id").replace(
        "      - model: search-ranker\n", "      - model: search-ranker\n        sticky_key: x-visitor-id\n"
    )
    (stack,) = _blast(text, after).stacks
    assert [(c.address, c.attributes, c.detail) for c in stack.changes] == [
        (
            "modelcat_route.storefront",
            ["model.0.sticky_key", "model.1.sticky_key"],
            "recommender sticky_key, search-ranker sticky_key",
        )
    ]


def test_digest_swap_on_kubernetes_rolls_the_deployment_in_place() -> None:
    text = demo_text()
    after, _ = swap_artifact(text, FRAUD_1_3_0, fraud_scorer_bytes(seed=3))
    blast = _blast(text, after, "kubernetes")
    (stack,) = blast.stacks
    assert stack.stack == "production-kubernetes" and stack.counts["replace"] == 0
    deployment = next(c for c in stack.changes if c.address == "kubernetes_deployment_v1.checkout--fraud-scorer--1_3_0")
    assert deployment.action == "update" and deployment.version == "1.3.0"
    assert "spec.template.metadata.annotations.modelcat/digest" in deployment.attributes  # a rolling update
    assert any(a.startswith("spec.template.spec.init_container.args.") for a in deployment.attributes)  # fetch
    assert {c.address for c in stack.changes if c.action == "update"} >= {"kubernetes_config_map_v1.checkout"}


def test_new_version_with_traffic_creates_an_endpoint() -> None:
    text = demo_text()
    after = add_version(text, fraud_scorer_bytes(seed=15), "1.5.0", "\n  - name: recommender")
    after = after.replace(
        "{version: 1.4.0, weight: 10}", "{version: 1.4.0, weight: 5}\n          - {version: 1.5.0, weight: 5}"
    )
    blast = _blast(text, after)
    assert _table(blast) == {
        "production-local": [
            ("update", "modelcat_route.checkout"),
            ("create", "modelcat_endpoint.checkout--fraud-scorer--1_5_0"),
        ]
    }
    created = blast.stacks[0].changes[1]
    assert created.subject == "checkout: fraud-scorer 1.5.0 endpoint" and created.detail.startswith("3 replicas of")


def test_moving_an_application_to_another_environment_empties_one_stack_and_fills_the_other() -> None:
    text = demo_text()
    after = text.replace("    environment: staging\n", "    environment: production\n")
    blast = _blast(text, after)
    assert _table(blast) == {
        "production-local": [
            ("create", "modelcat_route.retention-campaigns"),
            ("create", "modelcat_endpoint.retention-campaigns--churn-predictor--1_1_0"),
        ],
        "staging-local": [
            ("delete", "modelcat_route.retention-campaigns"),
            ("delete", "modelcat_endpoint.retention-campaigns--churn-predictor--1_1_0"),
            ("delete", "modelcat_metrics.prometheus"),  # an empty stack runs no Prometheus
        ],
    }
    assert [s.counts for s in blast.stacks] == [
        {"create": 2, "update": 0, "replace": 0, "delete": 0},
        {"create": 0, "update": 0, "replace": 0, "delete": 3},
    ]
    assert [(s.environment, s.target) for s in blast.stacks] == [("production", "local"), ("staging", "local")]


def test_namespace_change_replaces_every_kubernetes_object() -> None:
    text = demo_text()
    after = text.replace("namespace: ml-staging", "namespace: ml-stage")
    blast = _blast(text, after, "kubernetes")
    (stack,) = blast.stacks
    assert stack.stack == "staging-kubernetes"
    assert {c.action for c in stack.changes} == {"replace"}
    assert sorted(c.type for c in stack.changes) == [
        "kubernetes_deployment_v1",
        "kubernetes_horizontal_pod_autoscaler_v2",
        "kubernetes_manifest",
        "kubernetes_manifest",  # the GRPCRoute
        "kubernetes_manifest",  # the PodMonitor
        "kubernetes_service_v1",
    ]
    routes = {c.id: c for c in stack.changes if c.type == "kubernetes_manifest" and c.id != "modelcat--pod-monitor"}
    for rid, kind in (("retention-campaigns", "HTTPRoute"), ("retention-campaigns--grpc", "GRPCRoute")):
        assert routes[rid].attributes[0] == "manifest.metadata.namespace"
        assert routes[rid].subject == f"retention-campaigns: {kind}"


def test_rollout_change_touches_nothing_locally_and_annotations_on_kubernetes() -> None:
    text = demo_text()
    after = text.replace("step_percent: 10\n", "step_percent: 20\n")
    assert _blast(text, after).stacks == []
    (stack,) = _blast(text, after, "kubernetes").stacks
    assert {c.action for c in stack.changes} == {"update"}
    assert all(c.application == "checkout" for c in stack.changes)


def _bodies(**resources: dict) -> dict:
    return {"s-local": resources}


def test_meta_arguments_alone_change_nothing_and_references_to_replaced_objects_update() -> None:
    endpoint = {"name": "a.m.1", "model": "m", "version": "1", "digest": "sha256:1", "artifact": "x", "replicas": 1}
    route = {"application": "a", "route": [{"replicas": "${modelcat_endpoint.a--m--1.urls}", "weight": 100}]}
    before = _bodies(modelcat_endpoint={"a--m--1": endpoint}, modelcat_route={"a": route})
    relabelled = {**endpoint, "lifecycle": {"create_before_destroy": False}, "depends_on": ["x.y"]}
    assert (
        blast_radius(before, _bodies(modelcat_endpoint={"a--m--1": relabelled}, modelcat_route={"a": route})).stacks
        == []
    )
    swapped = {**endpoint, "digest": "sha256:2"}
    after = _bodies(modelcat_endpoint={"a--m--1": swapped}, modelcat_route={"a": route})
    (stack,) = blast_radius(before, after).stacks
    assert [(c.action, c.address, c.attributes) for c in stack.changes] == [
        ("replace", "modelcat_endpoint.a--m--1", ["digest"]),
        ("update", "modelcat_route.a", ["modelcat_endpoint.a--m--1 (replaced)"]),
    ]


def test_immutable_sagemaker_objects_are_replaced_on_any_change() -> None:
    before = _bodies(aws_sagemaker_model={"m--1": {"name": "m-1", "tags": {"k": "a"}}})
    after = _bodies(aws_sagemaker_model={"m--1": {"name": "m-1", "tags": {"k": "b"}}})
    (stack,) = blast_radius(before, after).stacks
    assert [(c.action, c.attributes) for c in stack.changes] == [("replace", ["tags.k"])]
    before = _bodies(aws_sagemaker_endpoint={"e": {"name": "e", "endpoint_config_name": "c1"}})
    after = _bodies(aws_sagemaker_endpoint={"e": {"name": "e", "endpoint_config_name": "c2"}})
    (stack,) = blast_radius(before, after).stacks
    assert [c.action for c in stack.changes] == ["update"]


def test_kubernetes_blocks_as_one_item_lists_are_read_as_blocks() -> None:
    before = _bodies(
        kubernetes_service_v1={"s": {"metadata": [{"name": "a", "namespace": "n"}], "spec": [{"port": 80}]}}
    )
    after = _bodies(
        kubernetes_service_v1={"s": {"metadata": [{"name": "b", "namespace": "n"}], "spec": [{"port": 80}]}}
    )
    (stack,) = blast_radius(before, after).stacks
    assert [(c.action, c.attributes) for c in stack.changes] == [("replace", ["metadata.name"])]
    assert replacing_attributes("kubernetes_secret_v1") == ("metadata.name", "metadata.namespace")
    assert replacing_attributes("modelcat_unknown") == ()


def _requires_replace(resource: type) -> set[str]:
    return {a.name for a in resource.get_schema().attributes if getattr(a, "requires_replace", False)}


def test_replacement_table_matches_the_provider_schema() -> None:
    from catalog.provider.endpoint import EndpointResource
    from catalog.provider.route import RouteResource

    assert set(REPLACED_BY["modelcat_endpoint"]) == _requires_replace(EndpointResource)
    assert set(REPLACED_BY["modelcat_route"]) == _requires_replace(RouteResource)


def test_target_registry() -> None:
    assert list(TARGET_MODULES) == ["local", "kubernetes", "kserve", "sagemaker"]
    with pytest.raises(UsageError, match="unknown target 'nomad'"):
        get_target("nomad")
    assert split_stack_name("eu-west-production-kubernetes") == ("eu-west-production", "kubernetes")


def test_a_missing_target_module_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TARGET_CLASSES, "sagemaker", ("catalog.synth.targets.not_written_yet", "SageMakerTarget"))
    with pytest.raises(UsageError, match="target 'sagemaker' is not available"):
        get_target("sagemaker")


def test_an_environment_without_the_targets_settings_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="environment 'staging' has no kserve: block"):
        synthesize_resources(load_catalog(DEMO), DEMO, "kserve")
    assert synthesize_resources(None, DEMO) == {}


def test_digest_swap_on_sagemaker_replaces_the_versions_model() -> None:
    text = demo_text()
    old, new = catalog_of(text), catalog_of(swap_artifact(text, FRAUD_1_3_0, fraud_scorer_bytes(seed=3))[0])
    blast = blast_radius(
        synthesize_resources(old, DEMO, "sagemaker", ["production"]),
        synthesize_resources(new, DEMO, "sagemaker", ["production"]),
        [*environments(old), *environments(new)],
    )
    (stack,) = blast.stacks
    model = next(c for c in stack.changes if c.type == "aws_sagemaker_model")
    assert (model.action, model.id, model.subject) == (
        "replace",
        "fraud-scorer--1_3_0",
        "fraud-scorer 1.3.0 sagemaker model",
    )
    assert (model.application, model.model, model.version) == (None, "fraud-scorer", "1.3.0")
    assert all(c.application in ("checkout", None) and c.model in ("fraud-scorer", None) for c in stack.changes)
