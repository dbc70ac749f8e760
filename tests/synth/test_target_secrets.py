"""An environment's secrets on every target: named by Vault path (and Secrets Manager name), never
by value. Local: the endpoint's ``secret`` blocks; kubernetes and kserve: the Vault Agent Injector's
annotations and ``MODELCAT_SECRETS_DIR``; sagemaker: the Secrets Manager names in the container's
environment. Validate refuses what a target cannot deliver, at the field's line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog.synth import synthesize
from catalog.validate import load_catalog
from tests.helpers import (
    BASE_ENVIRONMENT_SECRETS,
    DEMO,
    ROOT,
    line_of,
    reported_problem,
    with_demo_keys,
    with_secrets,
    with_vault_role,
)
from tests.synth.crds import validate
from tests.synth.golden import check_golden

AGENT = "vault.hashicorp.com"


def _replicas(stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The kubernetes stack's Deployments of replicas (not of routers)."""
    deployments = stacks["kubernetes"]["resource"]["kubernetes_deployment_v1"]
    return {k: d for k, d in deployments.items() if d["metadata"]["labels"]["app.kubernetes.io/component"] == "replica"}


def _agent(annotations: dict[str, str]) -> dict[str, str]:
    """The Vault Agent Injector's annotations among ``annotations``."""
    return {k: v for k, v in annotations.items() if k.startswith(AGENT)}


def secrets_demo(role: bool = True) -> str:
    """The demo catalog with two secrets in production (and the Vault role of its cluster targets)."""
    text = with_secrets(DEMO.read_text(encoding="utf-8"), "production", BASE_ENVIRONMENT_SECRETS)
    return with_vault_role(text) if role else text


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets-catalog")
    (folder / "models.yaml").write_text(secrets_demo(), encoding="utf-8")
    with_demo_keys(folder)
    return folder / "models.yaml"


def _stack(catalog_file: Path, target: str, out: Path) -> dict[str, Any]:
    result = synthesize(load_catalog(catalog_file), catalog_file, out, target=target, only=["production"])
    [stack] = result.stacks
    return json.loads(stack.path.read_text())


@pytest.fixture(scope="module")
def stacks(catalog_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("secrets-out")
    return {t: _stack(catalog_file, t, out / t) for t in ("local", "kubernetes", "kserve", "sagemaker")}


@pytest.mark.parametrize("target", ["kubernetes", "kserve", "sagemaker"])
def test_golden_files_of_an_environment_with_secrets(stacks: dict[str, dict[str, Any]], target: str) -> None:
    check_golden(ROOT / "tests" / "golden" / target / f"production-secrets-{target}.json", stacks[target])


def test_local_endpoint_bodies_name_each_secret_by_path_and_pinned_version(stacks: dict[str, dict[str, Any]]) -> None:
    endpoints = stacks["local"]["resource"]["modelcat_endpoint"]
    assert endpoints
    for body in endpoints.values():
        assert body["secret"] == [
            {"name": "feature-token", "vault": "vault://secret/checkout/feature-token", "field": "token", "version": 3},
            {"name": "store-credentials", "vault": "vault://kv/team/stores/artifacts"},
        ]


def test_kubernetes_pod_templates_carry_the_vault_agent_annotations(stacks: dict[str, dict[str, Any]]) -> None:
    deployments = _replicas(stacks)
    assert deployments
    for body in deployments.values():
        template = body["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert _agent(annotations) == {
            f"{AGENT}/agent-inject": "true",
            f"{AGENT}/agent-init-first": "true",
            f"{AGENT}/role": "modelcat-serving",
            f"{AGENT}/agent-inject-secret-feature-token": "secret/data/checkout/feature-token",
            f"{AGENT}/agent-inject-template-feature-token": (
                '{{- with secret "secret/data/checkout/feature-token?version=3" -}}'
                '{{ index .Data.data "token" }}{{- end -}}'
            ),
            f"{AGENT}/agent-inject-secret-store-credentials": "kv/data/team/stores/artifacts",
            f"{AGENT}/agent-inject-template-store-credentials": (
                '{{- with secret "kv/data/team/stores/artifacts" -}}{{ .Data.data | toJSON }}{{- end -}}'
            ),
        }
        [replica] = template["spec"]["container"]
        assert replica["env"] == [{"name": "MODELCAT_SECRETS_DIR", "value": "/vault/secrets"}]


def test_kserve_predictors_carry_the_same_annotations_and_a_valid_inference_service(
    stacks: dict[str, dict[str, Any]],
) -> None:
    manifests = stacks["kserve"]["resource"]["kubernetes_manifest"]
    deployments = _replicas(stacks)
    kube = {
        json.dumps(_agent(d["spec"]["template"]["metadata"]["annotations"]), sort_keys=True)
        for d in deployments.values()
    }
    assert len(kube) == 1
    for body in manifests.values():
        manifest = body["manifest"]
        predictor = manifest["spec"]["predictor"]
        assert {json.dumps(_agent(predictor["annotations"]), sort_keys=True)} == kube
        assert predictor["model"]["env"] == [{"name": "MODELCAT_SECRETS_DIR", "value": "/vault/secrets"}]
        assert validate("serving.kserve.io_inferenceservices.yaml", manifest) == []


def test_sagemaker_containers_name_the_secrets_manager_secrets(stacks: dict[str, dict[str, Any]]) -> None:
    models = stacks["sagemaker"]["resource"]["aws_sagemaker_model"]
    assert models
    for body in models.values():
        environment = body["primary_container"]["environment"]
        assert json.loads(environment["MODELCAT_SECRETS"]) == {
            "feature-token": {"secrets_manager": "checkout/feature-token", "field": "token"},
            "store-credentials": {"secrets_manager": "team/stores/artifacts"},
        }
        assert environment["MODELCAT_SECRETS_DIR"] == "/opt/ml/secrets"


def test_validate_reports_a_sagemaker_secret_without_a_secrets_manager_name(write, cli) -> None:
    text = secrets_demo().replace("    target: local\n", "    target: sagemaker\n", 1)
    text = text.replace("        secrets_manager: checkout/feature-token\n", "")
    file = write(text)
    problem = reported_problem(cli, file, "sagemaker.secret-source")
    assert "sagemaker cannot deploy environment 'production'" in problem["message"], problem
    assert "secret 'feature-token' (vault://secret/checkout/feature-token) has no secrets_manager" in problem["message"]
    assert (problem["line"], problem["path"]) == (
        line_of(text, "- name: feature-token"),
        "environments[production].secrets[feature-token]",
    )
    assert problem["hint"]


@pytest.mark.parametrize("target", ["kubernetes", "kserve"])
def test_validate_reports_a_cluster_environment_with_secrets_and_no_vault_role(write, cli, target: str) -> None:
    text = secrets_demo(role=False).replace("    target: local\n", f"    target: {target}\n", 1)
    file = write(text)
    problem = reported_problem(cli, file, f"{target}.vault-role")
    assert f"{target} cannot deploy environment 'production'" in problem["message"], problem
    assert f"the {target}: block names no vault_role" in problem["message"]
    assert problem["line"] == line_of(text, "    secrets:\n")


def test_synth_for_sagemaker_refuses_a_secret_it_cannot_deliver(tmp_path: Path) -> None:
    from catalog.errors import UsageError

    text = secrets_demo().replace("        secrets_manager: checkout/feature-token\n", "")
    file = tmp_path / "models.yaml"
    file.write_text(text, encoding="utf-8")
    with_demo_keys(tmp_path)
    with pytest.raises(UsageError, match="environment 'production': secret 'feature-token'"):
        synthesize(load_catalog(file), file, tmp_path / "out", target="sagemaker", only=["production"])


def test_other_secrets_name_another_sagemaker_model(stacks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """The container's environment cannot change in place: new secrets are a new model, created
    before the old one is destroyed, so its name differs (as new bytes do)."""
    file = tmp_path / "models.yaml"
    file.write_text(secrets_demo().replace("        field: token\n", "        field: other\n"), encoding="utf-8")
    with_demo_keys(tmp_path)
    before = {b["name"] for b in stacks["sagemaker"]["resource"]["aws_sagemaker_model"].values()}
    after = {b["name"] for b in _stack(file, "sagemaker", tmp_path / "out")["resource"]["aws_sagemaker_model"].values()}
    assert len(after) == len(before) and not after & before
    plain = {
        b["name"] for b in _stack(DEMO, "sagemaker", tmp_path / "demo")["resource"]["aws_sagemaker_model"].values()
    }
    assert not plain & before and all(b.startswith(p[:-7]) for b, p in zip(sorted(before), sorted(plain), strict=True))


def test_validate_reports_a_secret_name_too_long_for_an_annotation(write, cli) -> None:
    long_name = "a" * 42  # agent-inject-template-NAME: 64 characters, one more than Kubernetes allows
    text = secrets_demo().replace("    target: local\n", "    target: kubernetes\n", 1)
    text = text.replace("- name: store-credentials", f"- name: {long_name}")
    problem = reported_problem(cli, write(text), "kubernetes.secret-name")
    assert f"secret '{long_name}' names the annotation agent-inject-template-{long_name}" in problem["message"]
    assert problem["line"] == line_of(text, f"- name: {long_name}")
    assert cli("validate", write(text.replace(long_name, long_name[:-1]))).exit_code == 0
