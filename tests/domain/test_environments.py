"""Environments: declared per target, referenced by applications, implicit when the section is absent."""

from __future__ import annotations

import json

import pytest

from catalog.domain.deployment import environments
from catalog.validate import validate_bytes, validate_file
from tests.helpers import (
    DEMO,
    ENVIRONMENTS,
    MINIMAL,
    MINIMAL_WITH_ENVIRONMENTS,
    json_schema_validator,
    line_of,
    reported_problem,
)

BASE = MINIMAL_WITH_ENVIRONMENTS


def env_mutate(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"fixture has no single {old!r}"
    return BASE.replace(old, new)


SECOND_ENV = "  - name: staging\n    target: local\n"

# (id, catalog text, code, text whose line the problem points at, words in the message, display path)
CASES = [
    (
        "undeclared-environment",
        env_mutate("    environment: production\n", "    environment: prodution\n"),
        "ref.missing-environment",
        "environment: prodution",
        "environment 'prodution' is not declared under 'environments:'",
        "applications[checkout].environment",
    ),
    (
        "duplicate-environment",
        env_mutate("models:\n", "  - name: Production\nmodels:\n"),
        "ref.duplicate-environment",
        "- name: Production",
        "environment 'Production' collides with 'production'",
        "environments[Production].name",
    ),
    (
        "unknown-target",
        env_mutate("    target: kubernetes\n", "    target: ecs\n"),
        "schema.literal_error",
        "target: ecs",
        "target ecs (a string) is not one of the allowed values",
        "environments[production].target",
    ),
    (
        "environment-name-not-a-dns-label",
        env_mutate("  - name: production\n", "  - name: Production_EU\n"),
        "schema.string_pattern_mismatch",
        "name: Production_EU",
        "name 'Production_EU' is not valid",
        "environments[Production_EU].name",
    ),
    (
        "target-without-its-settings",
        env_mutate("models:\n", SECOND_ENV.replace("local", "sagemaker") + "models:\n"),
        "env.missing-settings",
        "target: sagemaker",
        "environment 'staging' deploys to sagemaker but has no sagemaker: block",
        "environments[staging].target",
    ),
    (
        "kubernetes-without-namespace",
        env_mutate("      namespace: ml-serving\n      gateway:", "      gateway:"),
        "schema.missing",
        "gateway: {name: public-gateway",
        "missing required field 'namespace'",
        "environments[production].kubernetes.namespace",
    ),
    (
        "kubernetes-without-image",
        env_mutate("      image: registry.example.com/modelcat/modelcat:0.4.0\n", ""),
        "schema.missing",
        "namespace: ml-serving",
        "missing required field 'image'",
        "environments[production].kubernetes.image",
    ),
    (
        "inlined-credentials",
        env_mutate("kind: pvc, pvc: modelcat-artifacts}", "kind: pvc, pvc: modelcat-artifacts, password: hunter2}"),
        "schema.extra_forbidden",
        "password: hunter2",
        "unknown field 'password'",
        "environments[production].kubernetes.artifact_source.password",
    ),
    (
        "image-pull-secret-not-a-name",
        env_mutate("image_pull_secret: registry-pull", "image_pull_secret: Registry_Pull"),
        "schema.string_pattern_mismatch",
        "image_pull_secret: Registry_Pull",
        "image_pull_secret 'Registry_Pull' is not valid",
        "environments[production].kubernetes.image_pull_secret",
    ),
    (
        "hostname-with-scheme",
        env_mutate("hostnames: [ml.example.com,", "hostnames: [https://ml.example.com,"),
        "schema.string_pattern_mismatch",
        "https://ml.example.com",
        "hostnames 'https://ml.example.com' is not valid",
        "environments[production].kubernetes.hostnames[0]",
    ),
    (
        "pvc-kind-without-claim",
        env_mutate("{kind: pvc, pvc: modelcat-artifacts}", "{kind: pvc}"),
        "env.artifact-source",
        "kind: pvc}",
        "artifact_source kind pvc needs pvc",
        "environments[production].kubernetes.artifact_source.kind",
    ),
    (
        "claim-for-http-kind",
        env_mutate(
            "{kind: pvc, pvc: modelcat-artifacts}", "{kind: http, base_url: https://a.example.com, pvc: artifacts}"
        ),
        "env.artifact-source",
        "pvc: artifacts}",
        "pvc means nothing for artifact_source kind http",
        "environments[production].kubernetes.artifact_source.pvc",
    ),
    (
        "registry-secret-for-a-claim",
        env_mutate("{kind: pvc, pvc: modelcat-artifacts}", "{kind: pvc, pvc: artifacts, registry_secret: pull}"),
        "env.artifact-source",
        "registry_secret: pull",
        "registry_secret means nothing for artifact_source kind pvc",
        "environments[production].kubernetes.artifact_source.registry_secret",
    ),
    (
        "oci-source-for-path-artifacts",
        env_mutate("{kind: pvc, pvc: modelcat-artifacts}", "{kind: oci, registry_secret: pull}"),
        "env.artifact-unreachable",
        "{kind: oci",
        "artifact_source kind oci pulls oci:// URIs, but fraud-scorer 1.0.0 (application checkout) is at artifacts/",
        "environments[production].kubernetes.artifact_source.kind",
    ),
    (
        "kserve-without-storage-prefix",
        env_mutate("      storage_uri_prefix: s3://example-artifacts/catalog\n", ""),
        "env.artifact-unreachable",
        "    kserve:",
        "kserve needs storage_uri_prefix: fraud-scorer 1.0.0 (application checkout) is at artifacts/",
        "environments[production].kserve",
    ),
    (
        "kserve-prefix-with-https",
        env_mutate("storage_uri_prefix: s3://example-artifacts/catalog", "storage_uri_prefix: https://x.example.com"),
        "schema.string_pattern_mismatch",
        "storage_uri_prefix: https://x.example.com",
        "storage_uri_prefix 'https://x.example.com' is not valid",
        "environments[production].kserve.storage_uri_prefix",
    ),
    (
        "sagemaker-region",
        env_mutate("region: eu-west-1", "region: Ireland"),
        "schema.string_pattern_mismatch",
        "region: Ireland",
        "region 'Ireland' is not valid",
        "environments[production].sagemaker.region",
    ),
    (
        "sagemaker-role-is-a-user",
        env_mutate(
            "arn:aws:iam::123456789012:role/service-role/modelcat-execution", "arn:aws:iam::123456789012:user/deploy"
        ),
        "schema.string_pattern_mismatch",
        "arn:aws:iam::123456789012:user/deploy",
        "execution_role_arn 'arn:aws:iam::123456789012:user/deploy' is not valid",
        "environments[production].sagemaker.execution_role_arn",
    ),
    (
        "sagemaker-bucket-without-scheme",
        env_mutate("artifact_bucket: s3://example-artifacts/sagemaker", "artifact_bucket: example-artifacts"),
        "schema.string_pattern_mismatch",
        "artifact_bucket: example-artifacts",
        "artifact_bucket 'example-artifacts' is not valid",
        "environments[production].sagemaker.artifact_bucket",
    ),
    (
        "sagemaker-instance-type-from-ec2",
        env_mutate("      alarm_topic_arn:", "      instance_type: m5.large\n      alarm_topic_arn:"),
        "schema.string_pattern_mismatch",
        "instance_type: m5.large",
        "instance_type 'm5.large' is not valid",
        "environments[production].sagemaker.instance_type",
    ),
    (
        "sagemaker-alarm-topic-is-a-queue",
        env_mutate("arn:aws:sns:eu-west-1:123456789012:rollout-alarms", "arn:aws:sqs:eu-west-1:123456789012:alarms"),
        "schema.string_pattern_mismatch",
        "arn:aws:sqs:eu-west-1:123456789012:alarms",
        "alarm_topic_arn 'arn:aws:sqs:eu-west-1:123456789012:alarms' is not valid",
        "environments[production].sagemaker.alarm_topic_arn",
    ),
]


@pytest.mark.parametrize(("text", "code", "anchor", "words", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_environment_is_reported_with_line_path_and_exit_1(write, cli, text, code, anchor, words, path):
    file = write(text)
    problem = reported_problem(cli, file, code)
    assert words in problem["message"], problem
    assert (problem["file"], problem["line"], problem["path"]) == (str(file), line_of(text, anchor), path), problem
    assert problem["column"] >= 1 and problem["hint"]
    assert problem["severity"] == "error"


SCHEMA_LEVEL = [c for c in CASES if c[2].startswith("schema.")]


@pytest.mark.parametrize("text", [c[1] for c in SCHEMA_LEVEL], ids=[c[0] for c in SCHEMA_LEVEL])
def test_json_schema_rejects_the_same_environments(text):
    from catalog.yamlio.loader import parse

    assert list(json_schema_validator().iter_errors(parse(text, "m.yaml").data))


def test_a_valid_environments_section_passes_both_schemas():
    from catalog.yamlio.loader import parse

    report = validate_bytes(BASE.encode(), "m.yaml")
    assert report.ok and report.problems == [], report.problems
    assert list(json_schema_validator().iter_errors(parse(BASE, "m.yaml").data)) == []


def test_the_hints_say_what_to_write(write):
    report = validate_file(write(CASES[0][1]))
    assert report.errors[0].hint == "did you mean 'production'? declared environments: production"
    by_id = {c[0]: c[1] for c in CASES}
    [problem] = validate_file(write(by_id["inlined-credentials"])).errors
    assert problem.hint.startswith("credentials are never written in the catalog: create a Kubernetes Secret")
    [problem] = validate_file(write(by_id["sagemaker-region"])).errors
    assert problem.hint == "use an AWS region, e.g. eu-west-1"
    [problem] = validate_file(write(by_id["target-without-its-settings"])).errors
    assert problem.hint == "add a sagemaker: block with this environment's sagemaker settings, or change target"


def test_warnings_unused_environment_and_unpinned_image(write, cli):
    text = env_mutate("models:\n", SECOND_ENV + "models:\n").replace(
        "modelcat/modelcat:0.4.0", "modelcat/modelcat:latest"
    )
    result = cli("validate", write(text), "--format", "json")
    assert result.exit_code == 0, result.output
    problems = {p["code"]: p for p in json.loads(result.stdout)["problems"]}
    assert sorted(problems) == ["env.image-unpinned", "env.unused"]
    assert all(p["severity"] == "warning" for p in problems.values())
    assert problems["env.unused"]["message"] == "no application runs in environment 'staging'"
    assert problems["env.unused"]["line"] == line_of(text, "- name: staging")
    assert problems["env.image-unpinned"]["path"] == "environments[production].kubernetes.image"
    untagged = text.replace("modelcat/modelcat:latest", "modelcat/modelcat")
    [unpinned] = [p for p in validate_file(write(untagged)).warnings if p.code == "env.image-unpinned"]
    assert "no tag means latest, which moves with every build" in unpinned.message
    pinned = text.replace("modelcat/modelcat:latest", "modelcat/modelcat@sha256:" + "c" * 64)
    assert [p.code for p in validate_file(write(pinned)).warnings] == ["env.unused"]


def test_every_environment_problem_is_reported_at_once(write, cli):
    text = (
        env_mutate("    environment: production\n", "    environment: prod\n")
        .replace("{kind: pvc, pvc: modelcat-artifacts}", "{kind: pvc}")
        .replace("region: eu-west-1", "region: Ireland")
        .replace("models:\n", SECOND_ENV.replace("local", "kserve") + "models:\n", 1)
        .replace("      storage_uri_prefix: s3://example-artifacts/catalog\n", "      token: abc\n")
    )
    result = cli("validate", write(text), "--format", "json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert sorted((p["code"], p["path"]) for p in problems) == [
        ("env.missing-settings", "environments[staging].target"),
        ("env.unused", "environments[staging].name"),
        ("ref.missing-environment", "applications[checkout].environment"),
        ("schema.extra_forbidden", "environments[production].kserve.token"),
        ("schema.string_pattern_mismatch", "environments[production].sagemaker.region"),
    ]
    # production failed the schema, so its artifact source is not checked, but its name still
    # counts: fix the schema errors and the rest shows up
    fixed = text.replace("region: Ireland", "region: eu-west-1").replace("      token: abc\n", "")
    codes = sorted(p.code for p in validate_file(write(fixed)).problems)
    assert codes == [
        "env.artifact-source",  # kind pvc without a claim
        "env.missing-settings",  # staging deploys to kserve
        "env.unused",  # production: checkout names 'prod'
        "env.unused",  # staging
        "ref.missing-environment",
    ]


def test_an_environment_that_failed_the_schema_still_counts_as_declared(write):
    text = env_mutate("region: eu-west-1", "region: Ireland")
    assert [p.code for p in validate_file(write(text)).problems] == ["schema.string_pattern_mismatch"]


def test_without_the_section_environments_are_implicit_and_local(write):
    report = validate_file(write(MINIMAL.replace("environment: production", "environment: anything-goes")))
    assert report.ok and report.problems == []
    [env] = environments(report.catalog)
    assert (env.name, env.target, env.kubernetes, env.kserve, env.sagemaker) == (
        "anything-goes",
        "local",
        None,
        None,
        None,
    )
    assert env.settings("kubernetes") is None and env.settings("local") is None


def test_an_empty_section_declares_no_environment(write):
    report = validate_file(write(BASE.replace(ENVIRONMENTS, "environments: []\n")))
    [problem] = report.problems
    assert problem.code == "ref.missing-environment"
    assert problem.hint == "declared environments: none"


def test_deployment_environments_carry_target_and_settings(write):
    text = BASE.replace("models:\n", SECOND_ENV + "models:\n", 1) + (
        "  - name: nightly\n    owner: crm@example.com\n    environment: staging\n    bindings:\n"
        "      - model: fraud-scorer\n        routes: [{version: 1.0.0, weight: 100}]\n"
    )
    catalog = validate_file(write(text)).raise_for_errors()
    production, staging = environments(catalog)
    assert (production.name, production.target, staging.name, staging.target) == (
        "production",
        "kubernetes",
        "staging",
        "local",
    )
    assert production.kubernetes.namespace == "ml-serving"
    assert production.kubernetes.gateway.section_name == "https"
    assert production.kubernetes.artifact_source.pvc == "modelcat-artifacts"
    assert production.settings("kserve").storage_uri_prefix == "s3://example-artifacts/catalog"
    assert production.settings("sagemaker").instance_type == "ml.m5.large"  # the default
    assert staging.settings("kubernetes") is None
    assert [a.name for a in production.applications] == ["checkout"]
    assert [e.name for e in environments(catalog, ["staging"])] == ["staging"]


def test_demo_environments():
    catalog = validate_file(DEMO).raise_for_errors()
    by_name = {e.name: e for e in environments(catalog)}
    assert sorted(by_name) == ["production", "staging"]
    assert {e.target for e in by_name.values()} == {"local"}
    production, staging = by_name["production"], by_name["staging"]
    assert all(production.settings(t) is not None for t in ("kubernetes", "kserve", "sagemaker"))
    assert staging.kubernetes is not None and staging.kserve is None and staging.sagemaker is None
