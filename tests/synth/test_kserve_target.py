"""The kserve target: golden files, the real InferenceService CRD, canary traffic, storage URIs
pinned by digest, typed bindings, refusals and determinism."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from catalog.domain.deployment import Environment
from catalog.errors import UsageError
from catalog.synth import synthesize
from catalog.synth.base import StackContext
from catalog.synth.targets import kserve
from catalog.synth.typed import TypedBindingError
from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT
from tests.synth.crds import validate
from tests.synth.golden import check_golden, synthesized_three_ways
from tests.synth.plans import context, production, with_routes

GOLDEN = ROOT / "tests" / "golden" / "kserve"
ISVC_CRD = "serving.kserve.io_inferenceservices.yaml"
OCI = "oci://registry.example.com/models/fraud-scorer@sha256:" + "ab" * 32


def _synth(catalog_path: Path, outdir: Path) -> dict[str, dict[str, Any]]:
    # staging has no kserve: block, so only production is synthesized for kserve
    result = synthesize(load_catalog(catalog_path), catalog_path, outdir, target="kserve", only=["production"])
    return {s.name: json.loads(s.path.read_text()) for s in result.stacks}


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _synth(DEMO, tmp_path_factory.mktemp("kserve") / "out")


@pytest.fixture(scope="module")
def isvcs(stacks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: body["manifest"] for key, body in stacks["production-kserve"]["resource"][kserve.MANIFEST].items()}


def _production() -> Environment:
    return production()


def _context(env: Environment) -> StackContext:
    return context(env, "kserve")


def _isvc(env: Environment, app: str) -> dict[str, Any]:
    bodies = kserve.synthesize_bodies(_context(env))[kserve.MANIFEST]
    return next(
        b["manifest"] for b in bodies.values() if b["manifest"]["metadata"]["labels"]["modelcat/application"] == app
    )


def test_golden_file(stacks: dict[str, dict[str, Any]]) -> None:
    """The demo catalog's production stack, normalized; MODELCAT_UPDATE_GOLDEN=1 rewrites it."""
    check_golden(GOLDEN / "production-kserve.json", stacks["production-kserve"])


def test_staging_without_a_kserve_block_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="environment 'staging' has no kserve: block"):
        synthesize(load_catalog(DEMO), DEMO, tmp_path / "out", target="kserve")


def test_one_inference_service_per_binding_and_the_provider(stacks: dict[str, dict[str, Any]]) -> None:
    stack = stacks["production-kserve"]
    assert stack["provider"] == {"kubernetes": [{}]}
    assert stack["terraform"]["required_providers"] == {
        "kubernetes": {"source": "hashicorp/kubernetes", "version": "3.4.0"}
    }
    assert list(stack["resource"]) == [kserve.MANIFEST]
    bindings = [(a.name, b.model) for a in _production().applications for b in a.bindings]
    bodies = stack["resource"][kserve.MANIFEST]
    assert sorted(bodies) == sorted(f"{a}--{m}" for a, m in bindings)
    for body in bodies.values():
        assert body["wait"] == {"condition": [{"status": "True", "type": "Ready"}]}


def test_every_inference_service_validates_against_the_real_crd(isvcs: dict[str, dict[str, Any]]) -> None:
    assert isvcs
    for key, manifest in isvcs.items():
        assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
        assert validate(ISVC_CRD, manifest) == [], key
    # the edge cases too: a plain one after a weight-0 route, and an oci:// artifact
    env = with_routes(_production(), "checkout", {"1.3.0": 100, "1.4.0": 0}, artifact=OCI)
    assert validate(ISVC_CRD, _isvc(env, "checkout")) == []


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda p: p.__setitem__("canaryTrafficPercent", "10"), "is not of type 'integer'"),
        (lambda p: p["model"].__setitem__("storageURI", "s3://x/y"), "storageURI"),
        (lambda p: p.__setitem__("scaleMetric", "latency"), "is not one of"),
        (lambda p: p["model"].__setitem__("modelFormat", {"version": "1"}), "'name' is a required property"),
        (lambda p: p.__setitem__("minReplicas", 1.5), "is not of type 'integer'"),
    ],
    ids=["percent-string", "unknown-field", "bad-scale-metric", "format-without-name", "fractional-replicas"],
)
def test_a_schema_invalid_inference_service_fails(isvcs: dict[str, dict[str, Any]], mutate: Any, words: str) -> None:
    manifest = json.loads(json.dumps(isvcs["checkout--fraud-scorer"]))
    assert validate(ISVC_CRD, manifest) == []
    mutate(manifest["spec"]["predictor"])
    problems = validate(ISVC_CRD, manifest)
    assert problems and any(words in p for p in problems), problems


def _over_grpc(env: Environment, **settings: Any) -> Environment:
    assert env.kserve is not None
    return dataclasses.replace(env, kserve=env.kserve.model_copy(update={"protocol_version": "grpc-v2", **settings}))


def test_grpc_v2_exposes_the_runtimes_grpc_port_named_h2c_the_one_port_knative_routes(
    isvcs: dict[str, dict[str, Any]],
) -> None:
    for manifest in isvcs.values():  # the default: REST on the runtime's HTTP port, no port declared
        assert manifest["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
        assert "ports" not in manifest["spec"]["predictor"]["model"]
    for env, port in ((_over_grpc(_production()), 9000), (_over_grpc(_production(), grpc_port=8001), 8001)):
        manifest = _isvc(env, "checkout")
        model = manifest["spec"]["predictor"]["model"]
        assert model["protocolVersion"] == "grpc-v2"
        assert model["ports"] == [{"name": "h2c", "containerPort": port, "protocol": "TCP"}]
        assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10  # the canary splits gRPC calls alike
        assert validate(ISVC_CRD, manifest) == []
        broken = json.loads(json.dumps(manifest))
        broken["spec"]["predictor"]["model"]["ports"][0]["containerPort"] = "9000"
        assert any("is not of type 'integer'" in p for p in validate(ISVC_CRD, broken))


def test_canary_traffic_percent_is_the_catalog_weight(isvcs: dict[str, dict[str, Any]]) -> None:
    by_app = {
        m["metadata"]["labels"]["modelcat/application"] + "/" + m["metadata"]["labels"]["modelcat/model"]: m
        for m in isvcs.values()
    }
    for app in _production().applications:
        for binding in app.bindings:
            manifest = by_app[f"{app.name}/{binding.model}"]
            predictor, notes = manifest["spec"]["predictor"], manifest["metadata"]["annotations"]
            routed = [r for r in binding.routes if r.weight > 0]
            served = routed[-1]
            assert notes["modelcat/version"] == served.version
            assert notes["modelcat/digest"] == served.endpoint.digest
            if len(routed) == 2:  # stable = first route, canary = second
                stable = routed[0]
                assert predictor["canaryTrafficPercent"] == served.weight
                assert notes["modelcat/canary-traffic-percent"] == str(served.weight)
                assert notes["modelcat/stable-version"] == stable.version
                assert notes["modelcat/stable-digest"] == stable.endpoint.digest
            else:
                assert "canaryTrafficPercent" not in predictor
                assert not any(k.startswith("modelcat/stable-") for k in notes)
    checkout = by_app["checkout/fraud-scorer"]
    assert checkout["spec"]["predictor"]["canaryTrafficPercent"] == 10  # the demo's 90/10 canary
    assert checkout["metadata"]["annotations"]["modelcat/stable-version"] == "1.3.0"


def test_serving_block_and_settings_reach_the_predictor(isvcs: dict[str, dict[str, Any]]) -> None:
    settings = _production().kserve
    assert settings is not None
    for app in _production().applications:
        for binding in app.bindings:
            serving = binding.routes[0].endpoint.serving
            manifest = next(
                m
                for m in isvcs.values()
                if m["metadata"]["labels"]["modelcat/application"] == app.name
                and m["metadata"]["labels"]["modelcat/model"] == binding.model
            )
            p = manifest["spec"]["predictor"]
            autoscaled = serving.max_replicas > serving.min_replicas >= 1
            expected = (serving.min_replicas, serving.max_replicas) if autoscaled else (serving.replicas,) * 2
            assert (p["minReplicas"], p["maxReplicas"]) == expected
            assert (p["scaleMetric"], p["scaleTarget"]) == ("concurrency", serving.target_concurrency)
            assert p["serviceAccountName"] == settings.service_account
            assert p["model"]["modelFormat"] == {"name": "onnx"}
            assert manifest["metadata"]["namespace"] == settings.namespace
            assert json.loads(manifest["metadata"]["annotations"]["modelcat/rollout"])["strategy"] == (
                binding.rollout.strategy
            )


def test_storage_uri_carries_the_digest(isvcs: dict[str, dict[str, Any]]) -> None:
    prefix = "s3://example-modelcat-artifacts/catalog"
    for manifest in isvcs.values():
        digest = manifest["metadata"]["annotations"]["modelcat/digest"]
        hexdigest = digest.removeprefix("sha256:")
        uri = manifest["spec"]["predictor"]["model"]["storageUri"]
        assert uri == f"{prefix}/sha256/{hexdigest[:2]}/{hexdigest}"
    # an oci:// artifact (pinned by its manifest digest, as validate demands) is used as it is
    env = with_routes(_production(), "checkout", {"1.3.0": 100}, artifact=OCI)
    assert _isvc(env, "checkout")["spec"]["predictor"]["model"]["storageUri"] == OCI
    # without a prefix a path cannot be fetched by KServe
    settings = _production().kserve.model_copy(update={"storage_uri_prefix": None})  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="storage_uri_prefix"):
        kserve.synthesize_bodies(_context(dataclasses.replace(_production(), kserve=settings)))


def test_more_than_two_versions_are_refused_naming_application_and_model() -> None:
    env = with_routes(_production(), "checkout", {"1.2.0": 20, "1.3.0": 70, "1.4.0": 10})
    with pytest.raises(UsageError, match=r"application 'checkout', model 'fraud-scorer'.*routes 3") as caught:
        kserve.synthesize_bodies(_context(env))
    assert "1.2.0 (20 %), 1.3.0 (70 %), 1.4.0 (10 %)" in str(caught.value)


def test_weight_zero_and_hundred() -> None:
    base = _production()
    # the canary at 0 %: the stable version, plainly; the unrouted version recorded
    isvc = _isvc(with_routes(base, "checkout", {"1.3.0": 100, "1.4.0": 0}), "checkout")
    predictor, notes = isvc["spec"]["predictor"], isvc["metadata"]["annotations"]
    assert notes["modelcat/version"] == "1.3.0" and "canaryTrafficPercent" not in predictor
    assert json.loads(notes["modelcat/unrouted-versions"]) == ["1.4.0"]
    # the canary at 100 %: promoted, a plain InferenceService of it
    isvc = _isvc(with_routes(base, "checkout", {"1.3.0": 0, "1.4.0": 100}), "checkout")
    assert isvc["metadata"]["annotations"]["modelcat/version"] == "1.4.0"
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    # three routes, one at 0 %: two with traffic, expressible
    isvc = _isvc(with_routes(base, "checkout", {"1.2.0": 0, "1.3.0": 90, "1.4.0": 10}), "checkout")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc["metadata"]["annotations"]["modelcat/stable-version"] == "1.3.0"


def test_a_misspelled_attribute_is_caught_at_synth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = kserve.inference_service

    def misspelled(k: Any, isvc: kserve.InferenceService) -> Any:
        body = original(k, isvc)
        manifest = body["manifest"] if isinstance(body, dict) else body.manifest
        ready = k.ManifestWaitCondition(type="Ready", statsu="True")  # typo
        return k.ManifestConfig(manifest=manifest, wait=k.ManifestWait(condition=[ready]))

    monkeypatch.setattr(kserve, "inference_service", misspelled)
    with pytest.raises(TypedBindingError, match="statsu"):
        synthesize(load_catalog(DEMO), DEMO, tmp_path / "out", target="kserve", only=["production"])
    assert not list((tmp_path / "out").rglob("cdk.tf.json"))  # nothing written


def test_a_mistyped_attribute_is_caught_at_synth(monkeypatch: pytest.MonkeyPatch) -> None:
    if not __debug__:
        pytest.skip("jsii checks types only without python -O")

    def mistyped(k: Any, isvc: kserve.InferenceService) -> Any:
        return k.ManifestConfig(manifest=json.dumps({"kind": "InferenceService"}))  # a string, not a map

    monkeypatch.setattr(kserve, "inference_service", mistyped)
    with pytest.raises(TypedBindingError, match="manifest"):
        kserve.synthesize_bodies(_context(_production()))


def test_no_secret_value_is_synthesized(stacks: dict[str, dict[str, Any]]) -> None:
    text = json.dumps(stacks["production-kserve"])
    assert "kserve-artifacts-reader" in text  # the service account is named
    for word in ("password", "secretAccessKey", "AWS_SECRET", "token"):
        assert word.lower() not in text.lower()


def test_output_is_byte_identical_across_runs_and_checkouts(tmp_path: Path) -> None:
    first, second, elsewhere = synthesized_three_ways(tmp_path, "kserve", ["production"])
    assert first == second == elsewhere
