"""Names become valid Terraform and Kubernetes identifiers by construction, for every target.

Any catalog validate accepts (any DNS-label names, any semantic versions) synthesizes into
resources whose ids Terraform accepts (a letter or '_' first, then letters, digits, '_' and '-'),
different for different catalog objects, whose references resolve, whose Kubernetes names and
labels the API server accepts, whose SageMaker names and tags AWS accepts and whose local
endpoints the modelcat provider can keep records of; and the embedded Terraform accepts such
stacks (slow).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from catalog.domain.deployment import environments, resource_id
from catalog.layout import stack_name
from catalog.provider.runstate import NAME as RUN_RECORD_NAME
from catalog.synth import TARGETS, synthesize
from catalog.synth.app import TARGET_MODULES
from catalog.synth.base import StackContext
from catalog.terraform.runner import Terraform
from catalog.validate import load_catalog, validate_bytes
from tests.helpers import ENVIRONMENTS, MINIMAL
from tests.synth.generated import catalogs

TERRAFORM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
REFERENCE = re.compile(r"\$\{([a-z0-9_]+)\.([^.}]+)\.")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
AWS_TAG = re.compile(r"^[\w\s.:/=+\-@]*$")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text("ab1.+-_", max_size=5), min_size=1, max_size=3).map(tuple), unique=True))
def test_resource_ids_are_terraform_names_different_for_different_parts(parts: list[tuple[str, ...]]) -> None:
    ids = [resource_id(*p) for p in parts]
    assert all(TERRAFORM_NAME.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids), sorted(zip(ids, parts, strict=True))


def _subdomain(name: str) -> bool:
    return len(name) <= 253 and all(DNS_1123_LABEL.match(part) for part in name.split("."))


def _label_maps(node: Any) -> Iterator[dict[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            labels = key in ("labels", "match_labels", "selector") and isinstance(value, dict)
            if labels and all(isinstance(v, str) for v in value.values()):
                yield value
            yield from _label_maps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _label_maps(item)


def _check_kubernetes(resources: dict[str, dict[str, Any]]) -> None:
    for kind, bodies in resources.items():
        for body in bodies.values():
            manifest = body.get("manifest", body)
            name = manifest["metadata"]["name"]
            assert _subdomain(name), (kind, name)
            if kind == "kubernetes_service_v1" or manifest.get("kind") == "InferenceService":
                assert DNS_1035_LABEL.match(name) and len(name) <= 63, (kind, name)
            for labels in _label_maps(body):
                for key, value in labels.items():
                    prefix, _, label = key.rpartition("/")
                    assert (not prefix or _subdomain(prefix)) and len(label) <= 63 and LABEL_NAME.match(label), key
                    assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)


def _check_sagemaker(resources: dict[str, dict[str, Any]]) -> None:
    for kind, bodies in resources.items():
        for body in bodies.values():
            if kind.startswith("aws_sagemaker_"):
                assert SAGEMAKER_NAME.match(body["name"]), (kind, body["name"])
            for variant in body.get("production_variants", []):
                assert SAGEMAKER_NAME.match(variant["variant_name"])
            if "alarm_name" in body:
                assert len(body["alarm_name"]) <= 255
            tags = body.get("tags") or {}
            assert len(tags) <= 50
            for key, value in tags.items():
                assert len(key) <= 128 and len(value) <= 256 and AWS_TAG.match(key) and AWS_TAG.match(value), (
                    key,
                    value,
                )


def _check_terraform(resources: dict[str, dict[str, Any]]) -> None:
    for kind, bodies in resources.items():
        for resource, body in bodies.items():
            assert TERRAFORM_NAME.match(resource), (kind, resource)
            text = json.dumps(body)
            for ref_kind, ref in REFERENCE.findall(text):
                assert ref in resources.get(ref_kind, {}), f"{kind}.{resource} refers to {ref_kind}.{ref}"
            for dependency in body.get("depends_on", []):
                ref_kind, _, ref = dependency.partition(".")
                assert ref in resources.get(ref_kind, {}), f"{kind}.{resource} depends on {dependency}"


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_every_name_validate_accepts_synthesizes_valid_terraform_and_kubernetes_names(target: str, data: Any) -> None:
    document = data.draw(catalogs(target, any_names=True))
    report = validate_bytes(json.dumps(document).encode(), "gen.yaml")
    assume(report.ok)  # a limit of the target (KServe's two routed versions, SageMaker's steps)
    (env,) = environments(report.catalog)
    module = __import__(TARGET_MODULES[target], fromlist=["synthesize_bodies"])
    resources = module.synthesize_bodies(StackContext(stack_name(env.name, target), env, "", ""))
    _check_terraform(resources)
    if target in ("kubernetes", "kserve"):
        _check_kubernetes(resources)
    if target == "sagemaker":
        _check_sagemaker(resources)
    if target == "local":
        for body in resources.get("modelcat_endpoint", {}).values():
            assert re.fullmatch(RUN_RECORD_NAME, body["name"]), body["name"]
        for body in resources.get("modelcat_route", {}).values():
            assert re.fullmatch(RUN_RECORD_NAME, body["application"])
    if target == "local":  # one resource per endpoint with replicas: none lost to a shared id
        assert len(resources.get("modelcat_endpoint", {})) == len([e for e in env.endpoints if e.serving.replicas])


# Names that validate accepts and that Terraform refused: a digit first, '--' inside, '+build'.
NAMES_CATALOG = (
    MINIMAL.replace("models:\n", ENVIRONMENTS.replace("target: kubernetes", "target: local") + "models:\n", 1)
    .replace("name: production", "name: 9-prod")
    .replace("environment: production", "environment: 9-prod")
    .replace("name: fraud-scorer", "name: 4fraud--scorer")
    .replace("model: fraud-scorer", "model: 4fraud--scorer")
    .replace("name: checkout", "name: 3d-viewer")
    .replace("1.1.0", "1.1.0-rc.1+build.7")
)


def _diagnostics(terraform: Terraform, folder: Path) -> list[dict[str, Any]]:
    done = terraform.run(["validate", "-json"], cwd=folder, env=dict(os.environ), ok=(0, 1))
    return json.loads(done.stdout)["diagnostics"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_terraform_accepts_the_stacks_of_names_it_refused(tmp_path: Path) -> None:
    """Every target's stack of ``NAMES_CATALOG`` passes Terraform's own configuration checks
    (``terraform validate`` reports no error but the providers it cannot download here), and the
    local stack plans."""
    (tmp_path / "models.yaml").write_text(NAMES_CATALOG, encoding="utf-8")
    catalog = load_catalog(tmp_path / "models.yaml")
    terraform = Terraform()
    for target in TARGETS:
        result = synthesize(catalog, tmp_path / "models.yaml", tmp_path / "out", target=target)
        (stack,) = result.stacks
        folder = tmp_path / "validate" / target
        folder.mkdir(parents=True)
        shutil.copyfile(stack.path, folder / "cdk.tf.json")
        summaries = {d["summary"] for d in _diagnostics(terraform, folder) if d["severity"] == "error"}
        assert summaries <= {"Missing required provider"}, (target, summaries)
    from catalog.deploy.stacks import prepare

    (workspace,) = prepare(tmp_path / "models.yaml", "local", None, None).workspaces
    outcome = workspace.plan()
    endpoints = [resource_id("3d-viewer", "4fraud--scorer", v) for v in ("1.0.0", "1.1.0-rc.1+build.7")]
    assert {c["address"] for c in outcome.changes} == {
        *(f"modelcat_endpoint.{e}" for e in endpoints),
        f"modelcat_route.{resource_id('3d-viewer')}",
        "modelcat_metrics.prometheus",
    }
