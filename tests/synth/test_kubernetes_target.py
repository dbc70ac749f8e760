"""The kubernetes target: golden files, the real HTTPRoute CRD, typed bindings, target selection,
secrets, determinism, and the commands the pods run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catalog.cli.main import main
from catalog.domain.deployment import environments
from catalog.errors import UsageError
from catalog.serving.table import parse_table
from catalog.synth import synthesize
from catalog.synth.base import StackContext
from catalog.synth.targets import kubernetes as k8s
from catalog.synth.targets.kubernetes import common, endpoints
from catalog.synth.typed import TypedBindingError
from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT, declare_store, with_demo_keys
from tests.synth.crds import validate
from tests.synth.golden import check_golden, synthesized_three_ways
from tests.synth.plans import BUNDLE_DIGEST, BUNDLE_URI, signed_demo

GOLDEN = ROOT / "tests" / "golden" / "kubernetes"
HTTPROUTE_CRD = "gateway.networking.k8s.io_httproutes.yaml"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _synth(catalog_path: Path, outdir: Path, **kwargs: Any) -> dict[str, dict[str, Any]]:
    result = synthesize(load_catalog(catalog_path), catalog_path, outdir, **kwargs)
    return {s.name: json.loads(s.path.read_text()) for s in result.stacks}


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _synth(DEMO, tmp_path_factory.mktemp("k8s") / "out", target="kubernetes")


def resources(stacks: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {f"{name}/{key}": body for name, s in stacks.items() for key, body in s["resource"].get(kind, {}).items()}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("init_container", []), *spec["container"]]


@pytest.mark.parametrize("stack", ["production-kubernetes", "staging-kubernetes"])
def test_golden_files(stacks: dict[str, dict[str, Any]], stack: str) -> None:
    """The demo catalog's stacks, normalized; MODELCAT_UPDATE_GOLDEN=1 rewrites them."""
    check_golden(GOLDEN / f"{stack}.json", stacks[stack])


def test_provider_block_and_what_each_stack_holds(stacks: dict[str, dict[str, Any]]) -> None:
    for stack in stacks.values():
        assert stack["provider"] == {"kubernetes": [{}]}  # configured by KUBE_CONFIG_PATH or in-cluster
        assert stack["terraform"]["required_providers"] == {
            "kubernetes": {"source": "hashicorp/kubernetes", "version": "3.4.0"}
        }
    production = stacks["production-kubernetes"]["resource"]
    assert len(production["kubernetes_deployment_v1"]) == 5 + 2  # versions + routers of checkout, storefront
    assert sorted(production["kubernetes_config_map_v1"]) == ["checkout", "storefront"]  # both sticky
    staging = stacks["staging-kubernetes"]["resource"]
    assert "kubernetes_config_map_v1" not in staging  # retention-campaigns: no sticky key, no router


def test_http_routes_validate_against_the_real_crd(stacks: dict[str, dict[str, Any]]) -> None:
    manifests = resources(stacks, "kubernetes_manifest")
    routes = {key: body for key, body in manifests.items() if body["manifest"]["kind"] == "HTTPRoute"}
    assert routes and {body["manifest"]["kind"] for body in manifests.values()} == {
        "HTTPRoute",
        "GRPCRoute",
        "PodMonitor",
    }
    for key, body in routes.items():
        assert validate(HTTPROUTE_CRD, body["manifest"]) == [], key


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda spec: spec["rules"][0]["backendRefs"][0].__setitem__("weight", "100"), "is not of type 'integer'"),
        (lambda spec: spec["rules"][0]["backendRefs"][0].__setitem__("weigth", 100), "weigth"),
        (lambda spec: spec["rules"][0]["backendRefs"][0].__setitem__("weight", 2_000_000), "maximum"),
        (lambda spec: spec["parentRefs"][0].__setitem__("sectionName", "Not A Name"), "does not match"),
        (lambda spec: spec["rules"][0]["matches"][0]["path"].__setitem__("type", "Prefix"), "is not one of"),
        (lambda spec: spec.__setitem__("rules", spec["rules"] * 17), "is too long"),
    ],
    ids=["weight-string", "unknown-field", "weight-too-big", "bad-section", "bad-match-type", "17-rules"],
)
def test_a_schema_invalid_route_fails(stacks: dict[str, dict[str, Any]], mutate: Any, words: str) -> None:
    body = json.loads(json.dumps(stacks["staging-kubernetes"]["resource"]["kubernetes_manifest"]))
    manifest = body["retention-campaigns"]["manifest"]
    manifest["spec"]["parentRefs"][0]["sectionName"] = "https"
    assert validate(HTTPROUTE_CRD, manifest) == []
    mutate(manifest["spec"])
    problems = validate(HTTPROUTE_CRD, manifest)
    assert problems and any(words in p for p in problems), problems


def test_weighted_route_carries_the_catalog_weights(stacks: dict[str, dict[str, Any]]) -> None:
    route = stacks["staging-kubernetes"]["resource"]["kubernetes_manifest"]["retention-campaigns"]
    spec = route["manifest"]["spec"]
    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "internal-gateway",
            "namespace": "gateway-system",
        }
    ]
    assert "hostnames" not in spec
    first, pinned = spec["rules"]
    assert first["matches"] == [{"path": {"type": "PathPrefix", "value": "/v2/models/churn-predictor"}}]
    services = stacks["staging-kubernetes"]["resource"]["kubernetes_service_v1"]
    (service,) = services.values()
    assert [(b["name"], b["weight"]) for b in first["backendRefs"]] == [(service["metadata"]["name"], 100)]
    assert pinned["matches"][0]["path"]["value"] == "/v2/models/churn-predictor/versions/1.1.0"
    assert sorted(route["depends_on"]) == sorted(
        [f"kubernetes_deployment_v1.{key}" for key in services] + [f"kubernetes_service_v1.{key}" for key in services]
    )


def test_sticky_applications_get_a_router_fed_by_a_valid_table(stacks: dict[str, dict[str, Any]]) -> None:
    catalog = load_catalog(DEMO)
    res = stacks["production-kubernetes"]["resource"]
    services = res["kubernetes_service_v1"]
    for app in [a for a in catalog.applications if a.environment == "production"]:
        data = res["kubernetes_config_map_v1"][app.name]["data"]
        table = parse_table(data["table.json"].encode(), "table.json")
        assert [m.name for m in table.models] == [b.model for b in app.bindings]
        for binding, model in zip(app.bindings, table.models, strict=True):
            assert model.sticky_key == binding.sticky_key
            assert [(r.version, r.weight) for r in model.routes] == [(r.version, r.weight) for r in binding.routes]
            for route in model.routes:
                (svc,) = [
                    s
                    for s in services.values()
                    if s["metadata"]["labels"].get("modelcat/model") == binding.model
                    and s["metadata"]["labels"].get("modelcat/version") == route.version
                ]
                name, namespace = svc["metadata"]["name"], svc["metadata"]["namespace"]
                assert list(route.replicas) == [f"http://{name}.{namespace}.svc.cluster.local"]
        router = res["kubernetes_deployment_v1"][f"{app.name}--router"]
        (container,) = router["spec"]["template"]["spec"]["container"]
        assert container["args"][:3] == ["router", "--table", "/etc/modelcat/routing/table.json"]
        (volume,) = [v for v in router["spec"]["template"]["spec"]["volume"] if "config_map" in v]
        assert volume["config_map"]["name"] == res["kubernetes_config_map_v1"][app.name]["metadata"]["name"]
        rule = res["kubernetes_manifest"][app.name]["manifest"]["spec"]["rules"]
        assert (
            rule[0]["backendRefs"][0]["name"] == res["kubernetes_service_v1"][f"{app.name}--router"]["metadata"]["name"]
        )


def test_routers_write_their_assignments_to_stdout_for_the_log_pipeline(stacks: dict[str, dict[str, Any]]) -> None:
    routers = [
        body
        for stack in stacks.values()
        if stack["resource"].get("kubernetes_deployment_v1")
        for key, body in stack["resource"]["kubernetes_deployment_v1"].items()
        if key.endswith("--router")
    ]
    assert routers
    for router in routers:
        (container,) = router["spec"]["template"]["spec"]["container"]
        assert "--assignments-stdout" in container["args"]


def test_endpoints_carry_the_catalog_facts(stacks: dict[str, dict[str, Any]]) -> None:
    for plan in environments(load_catalog(DEMO)):
        res = stacks[f"{plan.name}-kubernetes"]["resource"]
        for app in plan.applications:
            for binding in app.bindings:
                for route in binding.routes:
                    e = route.endpoint
                    dep = res["kubernetes_deployment_v1"][e.id]
                    meta = dep["metadata"]
                    assert meta["annotations"]["modelcat/digest"] == e.digest
                    assert meta["labels"]["modelcat/digest"] == e.digest.removeprefix("sha256:")[:12]
                    assert json.loads(meta["annotations"]["modelcat/rollout"])["steps"] == list(binding.rollout.steps)
                    hpa = e.serving.max_replicas > e.serving.min_replicas >= 1
                    assert dep["spec"]["replicas"] == str(e.serving.min_replicas if hpa else e.serving.replicas)
                    assert (e.id in res["kubernetes_horizontal_pod_autoscaler_v2"]) == hpa
                    assert (e.id in res.get("kubernetes_pod_disruption_budget_v1", {})) == (e.serving.min_replicas >= 2)
                    init, replica = containers(dep)
                    assert init["args"][init["args"].index("--digest") + 1] == e.digest
                    assert replica["args"][replica["args"].index("--digest") + 1] == e.digest
                    assert replica["readiness_probe"]["http_get"]["path"] == "/v2/health/ready"
                    assert replica["liveness_probe"]["http_get"]["path"] == "/v2/health/live"


def test_names_and_labels_are_valid_kubernetes(stacks: dict[str, dict[str, Any]]) -> None:
    for kind in ("kubernetes_deployment_v1", "kubernetes_service_v1", "kubernetes_config_map_v1"):
        for key, body in resources(stacks, kind).items():
            assert DNS_1035.match(body["metadata"]["name"]), key
            for value in body["metadata"].get("labels", {}).values():
                assert LABEL_VALUE.match(value) and len(value) <= 63, (key, value)


def test_label_values_of_awkward_versions() -> None:
    from catalog.synth.kube import label_value, object_name

    assert label_value("1.0.0-rc.1+build.7") == "1.0.0-rc.1_build.7"
    assert len(label_value("1.0.0-" + "a" * 80)) == 63
    names = {object_name("a-b", "c", "1.0.0"), object_name("a", "b-c", "1.0.0"), object_name("a", "b", "1.0.0-c")}
    assert len(names) == 3 and all(DNS_1035.match(n) for n in names)
    assert DNS_1035.match(object_name("9lives", "m" * 63, "1.0.0"))


def test_no_secret_value_is_ever_synthesized(stacks: dict[str, dict[str, Any]]) -> None:
    """Credentials are Secrets referenced by name: nothing but references where credentials go."""
    catalog = load_catalog(DEMO)
    secrets = {
        name
        for env in catalog.environments or []
        if env.kubernetes
        for name in (env.kubernetes.image_pull_secret, env.kubernetes.artifact_source.registry_secret)
        if name
    }
    credential = re.compile(r"token|password|secret|credential|api_?key|auth", re.IGNORECASE)
    looks_secret = re.compile(r"-----BEGIN|Bearer |Basic |AKIA[0-9A-Z]{16}")
    blob = re.compile(r"[A-Za-z0-9+/=_-]{32,}")  # a token: long, mixed case and digits (a hex digest is not)
    # the trust policy's public keys, which the init container checks the release signature with: public
    public_key = re.compile(r"-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\\n\n]*-----END PUBLIC KEY-----")
    seen_refs: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "secret_key_ref" in node:
                ref = node["secret_key_ref"]
                assert set(ref) == {"name", "key"} and ref["name"] in secrets, path
                seen_refs.add(ref["name"])
            if set(node) >= {"name", "value"} and credential.search(str(node["name"])):
                pytest.fail(f"{path}: credential {node['name']} given as a value")
            for key, value in node.items():
                if credential.search(key) and key not in ("secret_key_ref", "image_pull_secrets"):
                    pytest.fail(f"{path}.{key}: a credential field")
                if key == "image_pull_secrets":
                    assert all(set(s) == {"name"} and s["name"] in secrets for s in value), path
                    seen_refs.update(s["name"] for s in value)
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")
        elif isinstance(node, str):
            node = public_key.sub("", node)
            assert not looks_secret.search(node), f"{path}: {node[:40]}..."
            for run in blob.findall(node):
                mixed = re.search("[A-Z]", run) and re.search("[a-z]", run) and re.search("[0-9]", run)
                assert not mixed, f"{path}: {run[:12]}... looks like a credential"

    for name, stack in stacks.items():
        walk(stack, name)
    assert seen_refs == secrets  # every Secret the settings name is referenced, and only those


def test_output_is_byte_identical_across_runs_and_checkouts(tmp_path: Path) -> None:
    first, second, elsewhere = synthesized_three_ways(tmp_path, "kubernetes")
    assert first == second == elsewhere


def _option_names(command: Any) -> dict[str, Any]:
    return {opt: param for param in command.params for opt in getattr(param, "opts", [])}


def test_the_pods_run_commands_the_cli_has(stacks: dict[str, dict[str, Any]]) -> None:
    """Every container runs `modelcat <subcommand>` with flags that subcommand takes (and --help works)."""
    runner = CliRunner()
    checked = set()
    for key, dep in resources(stacks, "kubernetes_deployment_v1").items():
        for c in containers(dep):
            assert c["command"] == ["modelcat"], key
            sub, *args = c["args"]
            command = main.commands[sub]
            options = _option_names(command)
            flags = [a for a in args if a.startswith("--")]
            assert set(flags) <= set(options), (key, sub, set(flags) - set(options))
            required = {p.opts[0] for p in command.params if p.required and p.opts[0].startswith("--")}
            assert required <= set(flags), (key, sub, required - set(flags))
            positional = [p for p in command.params if not getattr(p, "opts", ["--"])[0].startswith("--")]
            switches = {o for p in command.params if getattr(p, "is_flag", False) for o in p.opts}
            valued = [f for f in flags if f not in switches]  # each followed by its value
            assert len(args) == len(flags) + len(valued) + len(positional), (key, sub, args)
            checked.add(sub)
    assert checked == {"fetch", "replica", "router"}
    for sub in sorted(checked):
        result = runner.invoke(main, [sub, "--help"])
        assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_local_synth_never_imports_the_bindings_and_kubernetes_never_loads_their_assembly(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from catalog.synth import synthesize, typed; "
        "from catalog.validate import load_catalog; "
        f"p = Path({str(DEMO)!r}); synthesize(load_catalog(p), p, Path({str(tmp_path / 'a')!r})); "
        "print(sorted(m for m in sys.modules if m.startswith('cdktn_provider'))); "
        f"synthesize(load_catalog(p), p, Path({str(tmp_path / 'b')!r}), target='kubernetes'); "
        "print(sorted(typed._deferred))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split("\n")[:2] == ["[]", "['cdktn_provider_kubernetes']"]


# -- typed bindings ---------------------------------------------------------------------------


def _demo_context(env: str = "production") -> StackContext:
    (plan,) = environments(load_catalog(DEMO), [env])
    return StackContext(name=f"{env}-kubernetes", environment=plan, catalog="", state_root="")


def test_a_misspelled_attribute_is_caught_at_synth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def service(k: Any, s: endpoints.Serving) -> Any:
        port = k.ServiceV1SpecPort(name="http", port=80, target_prot="http")  # typo
        return k.ServiceV1Config(metadata=k.ServiceV1Metadata(name=s.name), spec=k.ServiceV1Spec(port=[port]))

    monkeypatch.setattr(endpoints, "service", service)
    with pytest.raises(TypedBindingError, match="target_prot"):
        synthesize(load_catalog(DEMO), DEMO, tmp_path / "out", target="kubernetes")
    assert not list((tmp_path / "out").rglob("cdk.tf.json"))  # nothing written


def test_a_mistyped_attribute_is_caught_at_synth(monkeypatch: pytest.MonkeyPatch) -> None:
    if not __debug__:
        pytest.skip("jsii checks types only without python -O")
    monkeypatch.setattr(endpoints, "max_surge", lambda rollout: rollout.step_percent)  # an int where a string goes
    with pytest.raises(TypedBindingError, match="max_surge"):
        k8s.synthesize_bodies(_demo_context())


def test_a_mistyped_nested_block_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    if not __debug__:
        pytest.skip("jsii checks types only without python -O")
    original = endpoints.pod_security
    monkeypatch.setattr(
        endpoints, "pod_security", lambda k: k.DeploymentV1SpecTemplateSpecSecurityContext(run_as_user=10001)
    )
    with pytest.raises(TypedBindingError, match="run_as_user"):
        k8s.synthesize_bodies(_demo_context())
    monkeypatch.setattr(endpoints, "pod_security", original)


def test_fast_and_typed_paths_cannot_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.synth.typed import FAST

    original = endpoints.service

    def drifting(k: Any, s: endpoints.Serving) -> Any:
        body = original(k, s)
        if k is FAST:  # a fast path that forgot what the typed one writes
            body["spec"].pop("selector")
        return body

    monkeypatch.setattr(endpoints, "service", drifting)
    with pytest.raises(TypedBindingError, match=r"differs .*selector"):
        k8s.synthesize_bodies(_demo_context())


def test_every_variant_is_checked_and_check_all_checks_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.synth import typed

    calls: list[str] = []
    original = typed.ResourceKind.check

    def counting(self: Any, item: Any, body: Any, key: str = "") -> None:
        calls.append(self.resource_type)
        original(self, item, body, key)

    monkeypatch.setattr(typed.ResourceKind, "check", counting)
    k8s.synthesize_bodies(_demo_context())
    by_variant = len(calls)
    calls.clear()
    monkeypatch.setenv("MODELCAT_SYNTH_CHECK", "all")
    bodies = k8s.synthesize_bodies(_demo_context())
    assert len(calls) == sum(len(v) for v in bodies.values()) > by_variant


@pytest.mark.slow
def test_bodies_equal_what_cdktn_synthesizes_from_the_same_structs(tmp_path: Path) -> None:
    """to_terraform of a struct tree is what the provider's own constructs write (names, nesting)."""
    from cdktn import App, TerraformStack

    from catalog.synth.targets.kubernetes import routing
    from catalog.synth.typed import TypedFactory, import_bindings, load_assembly, to_terraform

    context = _demo_context()
    modules = k8s.load_modules()
    load_assembly("cdktn_provider_kubernetes")
    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "check")
    (provider_module,) = import_bindings("cdktn_provider_kubernetes", "provider")
    provider_module.KubernetesProvider(stack, "kubernetes")  # the provider block we write by hand
    expected: dict[str, dict[str, Any]] = {}
    servings = endpoints.servings(context)
    by_id = {s.endpoint.id: s for s in servings}
    items: list[tuple[str, Any, Any, Any]] = []
    for kind, wanted in endpoints.endpoint_kinds(modules):
        items += [(kind.resource_type, s.endpoint.id, kind, s) for s in servings[:2] if wanted(s)]
    apps = [routing.AppRouting(a, context.environment.kubernetes, by_id) for a in context.environment.applications]
    m = modules
    items += [
        (
            "kubernetes_manifest",
            apps[0].app.id,
            routing.ResourceKind("kubernetes_manifest", (m["manifest"],), routing.http_route),
            apps[0],
        ),
        (
            "kubernetes_config_map_v1",
            apps[0].app.id,
            routing.ResourceKind("x", (m["config_map_v1"],), routing.config_map),
            apps[0],
        ),
        (
            "kubernetes_deployment_v1",
            "router",
            routing.ResourceKind("x", (m["deployment_v1"],), routing.router_deployment),
            apps[0],
        ),
    ]
    for resource_type, key, kind, item in items:
        struct = kind.build(TypedFactory(*kind.modules), item)
        construct = getattr(kind.modules[0], type(struct).__name__.removesuffix("Config"))
        construct(stack, f"{resource_type}-{key}", **struct._values)
        expected[f"{resource_type}-{key}"] = to_terraform(struct)
    app.synth()
    synthesized = json.loads((tmp_path / "stacks" / "check" / "cdk.tf.json").read_text())
    got = {
        key: {k: v for k, v in body.items() if k != "//"}
        for kind in synthesized["resource"].values()
        for key, body in kind.items()
    }
    assert got == expected
    ours = _synth(DEMO, tmp_path / "ours", target="kubernetes", only=["production"])["production-kubernetes"]
    assert synthesized["provider"] == ours["provider"]
    assert synthesized["terraform"]["required_providers"] == ours["terraform"]["required_providers"]


@pytest.mark.parametrize("target", ["local", "kubernetes"])
def test_bodies_written_after_synth_are_the_bytes_jsii_would_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """catalog.synth.emit splices the bodies into cdk.tf.json after synth: the same bytes as sending
    them through jsii (one add_override per resource type), for both targets."""
    spliced = synthesize(load_catalog(DEMO), DEMO, tmp_path / "spliced", target=target)
    monkeypatch.setenv("MODELCAT_SYNTH_EMIT", "override")
    through = synthesize(load_catalog(DEMO), DEMO, tmp_path / "jsii", target=target)
    for a, b in zip(spliced.stacks, through.stacks, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes(), a.name
        assert "modelcat:resource-bodies" not in a.path.read_text()


def test_the_pure_python_encoder_writes_what_orjson_writes(stacks: dict[str, dict[str, Any]]) -> None:
    import orjson

    for stack in stacks.values():
        expected = orjson.dumps(stack, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        assert json.dumps(stack, indent=2, sort_keys=True, ensure_ascii=False).encode() == expected


def test_an_artifact_a_cluster_cannot_fetch_stops_synth(tmp_path: Path) -> None:
    text = DEMO.read_text(encoding="utf-8")
    relative = "artifacts/sha256/fb/"  # fraud-scorer 1.3.0, routed by checkout
    assert relative in text
    path = tmp_path / "models.yaml"
    path.write_text(text.replace(f"uri: {relative}", f"uri: file://{ROOT}/{relative}"), encoding="utf-8")
    with_demo_keys(tmp_path)
    declare_store(path, "checkout", f"file://{ROOT}/artifacts")  # the URI must lie in a store
    catalog = load_catalog(path)
    assert synthesize(catalog, path, tmp_path / "local", target="local").stacks
    with pytest.raises(UsageError, match="which a cluster cannot fetch"):
        synthesize(catalog, path, tmp_path / "k8s", target="kubernetes")


def test_the_dockerfile_builds_the_image_the_pods_expect() -> None:
    """It cannot be built here (no Docker): its stages, users, entrypoint and what it installs are
    checked. The default (last) stage runs as the pods' user; the sagemaker stage keeps root, as
    SageMaker expects, and both run `modelcat`."""
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    instructions = [line for line in lines if not line.startswith("#")]
    starts = [i for i, line in enumerate(instructions) if line.startswith("FROM ")]
    assert [instructions[i] for i in starts] == ["FROM python:3.11-slim AS sagemaker", "FROM sagemaker AS kubernetes"]
    sagemaker, kubernetes = instructions[starts[0] : starts[1]], instructions[starts[1] :]
    assert not any(line.startswith("USER") for line in sagemaker)
    assert [line for line in kubernetes if line.startswith("USER")] == [f"USER {common.RUN_AS}:{common.RUN_AS}"]
    assert 'ENTRYPOINT ["modelcat"]' in sagemaker and not any(line.startswith("ENTRYPOINT") for line in kubernetes)
    assert any(line.startswith("RUN pip install -c constraints.txt .") for line in sagemaker)
    copied = {word for line in instructions if line.startswith("COPY") for word in line.split()[1:-1]}
    assert copied == {"pyproject.toml", "constraints.txt", "README.md", "catalog"}
    assert all((ROOT / name).exists() for name in copied)
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and all(f"!{name}" in ignore or f"!{name}/" in ignore for name in copied)


def test_a_signed_versions_init_container_verifies_its_bundle_and_the_replica_checks_it_again(workspace: Path) -> None:
    trusted = signed_demo(workspace)
    stacks = _synth(workspace / "models.yaml", workspace / "out", target="kubernetes")
    deployments = resources(stacks, "kubernetes_deployment_v1")
    signed = deployments["production-kubernetes/checkout--fraud-scorer--1_3_0"]
    fetch, replica = containers(signed)
    flags = dict(zip(fetch["args"], fetch["args"][1:], strict=False))
    assert flags["--bundle"] == f"https://artifacts.example.com/modelcat/{BUNDLE_URI}"  # from the artifact source
    assert (flags["--bundle-digest"], flags["--bundle-out"]) == (BUNDLE_DIGEST, endpoints.BUNDLE_PATH)
    assert json.loads(flags["--trusted-keys"]) == trusted and flags["--trust-out"] == endpoints.TRUST_PATH
    assert fetch["args"][-1] == "--require-signatures"
    checks = ["--trust", endpoints.TRUST_PATH, "--bundle", endpoints.BUNDLE_PATH, "--bundle-digest", BUNDLE_DIGEST]
    assert replica["args"][replica["args"].index("--trust") :][: len(checks)] == checks
    unsigned_fetch, unsigned_replica = containers(deployments["production-kubernetes/checkout--fraud-scorer--1_4_0"])
    assert "--bundle" not in unsigned_fetch["args"] and "--require-signatures" in unsigned_fetch["args"]
    assert "--trust" in unsigned_replica["args"] and "--bundle" not in unsigned_replica["args"]
    for key, deployment in deployments.items():
        if key.startswith("staging-"):  # no rule there, nothing signed: nothing to check
            assert not [a for c in containers(deployment) for a in c["args"] if a in ("--trust", "--trusted-keys")]
    test_the_pods_run_commands_the_cli_has(stacks)
