"""What a target cannot deploy, validate reports at the field that asks for it (and synth --target too).

The limits are the targets' own (``Target.refusals``: SageMaker's rollout sizes, waits and variant
counts, KServe's two routed versions, a cluster's reach); they apply to the environments deployed
to that target, and to those ``synth --target`` synthesizes for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import HEX, MINIMAL_WITH_ENVIRONMENTS, URI_LINE, line_of, reported_problem

BASE = MINIMAL_WITH_ENVIRONMENTS

ANCHOR = "        enabled: true\n"
ROUTES = "          - {version: 1.0.0, weight: 90}\n          - {version: 1.1.0, weight: 10}\n"
BINDING = "applications[checkout].bindings[0]"


def deployed_to(target: str, text: str = BASE) -> str:
    """``text`` with its environment production deployed to ``target``."""
    assert text.count("    target: kubernetes\n") == 1
    return text.replace("    target: kubernetes\n", f"    target: {target}\n")


def with_rollout(rollout: str, text: str) -> str:
    return text.replace(ANCHOR, f"{ANCHOR}        rollout: {rollout}\n")


def with_defaults(rollout: str, text: str) -> str:
    return text.replace("apiVersion: modelcat/v1\n", f"apiVersion: modelcat/v1\ndefaults:\n  rollout: {rollout}\n", 1)


def routed(weights: list[int], text: str) -> str:
    """``text`` with versions 1.2.0... added as needed and the binding routing them by ``weights``."""
    extra = ""
    for i in range(2, len(weights)):
        hexdigest = f"{i:x}" * 64
        extra += (
            f"      - version: 1.{i}.0\n"
            "        artifact:\n"
            f"          uri: artifacts/sha256/{hexdigest[:2]}/{hexdigest}\n"
            f"          digest: sha256:{hexdigest}\n"
            "          size_bytes: 2048\n"
            "        signature:\n"
            "          inputs: [{name: features, dtype: float32, shape: [batch, 16]}]\n"
            "          outputs: [{name: score, dtype: float32, shape: [batch, 1]}]\n"
            "        trained_at: 2026-02-01\n"
            "        registered_at: 2026-02-02T10:00:00Z\n"
        )
    routes = "".join(f"          - {{version: 1.{i}.0, weight: {w}}}\n" for i, w in enumerate(weights))
    return text.replace("applications:\n", extra + "applications:\n", 1).replace(ROUTES, routes)


GUARDED = "guardrails: {max_error_rate: 0.01}"
SAGEMAKER = deployed_to("sagemaker")

# (id, catalog text, code, text whose line the problem points at, words in the message, display path)
CASES = [
    (
        "sagemaker-canary-over-50",
        with_rollout(f"{{strategy: canary, step_percent: 60, interval_seconds: 60, {GUARDED}}}", SAGEMAKER),
        "sagemaker.canary-step",
        "step_percent: 60",
        "SageMaker's canary step is 50 % of capacity at most, the rollout asks for 60 %",
        f"{BINDING}.rollout.step_percent",
    ),
    (
        "sagemaker-linear-step-under-10",
        with_rollout(f"{{strategy: linear, step_percent: 5, interval_seconds: 60, {GUARDED}}}", SAGEMAKER),
        "sagemaker.linear-step",
        "step_percent: 5",
        "SageMaker's linear steps are 10-50 % of capacity, the rollout asks for 5 %",
        f"{BINDING}.rollout.step_percent",
    ),
    (
        "sagemaker-uneven-steps",
        with_rollout(f"{{strategy: canary, steps: [5, 25, 50, 100], interval_seconds: 60, {GUARDED}}}", SAGEMAKER),
        "sagemaker.steps",
        "steps: [5, 25",
        "moves a canary and then the rest, or equal linear steps, the rollout asks for steps of 5, 25, 50, 100 %",
        f"{BINDING}.rollout.steps",
    ),
    (
        "sagemaker-steps-with-a-canary-over-50",
        with_rollout(f"{{strategy: canary, steps: [60, 100], {GUARDED}}}", SAGEMAKER),
        "sagemaker.canary-step",
        "steps: [60",
        "SageMaker's canary step is 50 % of capacity at most, the rollout asks for 60 %",
        f"{BINDING}.rollout.steps",
    ),
    (
        "sagemaker-equal-steps-under-10",
        with_rollout(f"{{strategy: linear, steps: [{', '.join(map(str, range(5, 101, 5)))}], {GUARDED}}}", SAGEMAKER),
        "sagemaker.linear-step",
        "steps: [5, 10",
        "SageMaker's linear steps are 10-50 % of capacity, the rollout asks for 5 %",
        f"{BINDING}.rollout.steps",
    ),
    (
        "sagemaker-uneven-steps-inherited-from-defaults",
        with_defaults(f"{{strategy: linear, steps: [10, 50, 100], {GUARDED}}}", SAGEMAKER),
        "sagemaker.steps",
        "steps: [10, 50",
        "the rollout asks for steps of 10, 50, 100 %",
        "defaults.rollout.steps",
    ),
    (
        "sagemaker-rollout-over-8-hours",
        with_rollout(f"{{strategy: linear, step_percent: 10, interval_seconds: 3000, {GUARDED}}}", SAGEMAKER),
        "sagemaker.deployment-time",
        "interval_seconds: 3000",
        "longer than the 28800 s a SageMaker deployment may run",
        f"{BINDING}.rollout.interval_seconds",
    ),
    (
        "sagemaker-canary-inherited-from-defaults",
        with_defaults(f"{{strategy: canary, step_percent: 75, {GUARDED}}}", SAGEMAKER),
        "sagemaker.canary-step",
        "step_percent: 75",
        "the rollout asks for 75 %",
        "defaults.rollout.step_percent",
    ),
    (
        "sagemaker-more-variants-than-an-alarm-watches",
        routed([50, 10, 10, 10, 10, 10], with_rollout(f"{{strategy: canary, step_percent: 10, {GUARDED}}}", SAGEMAKER)),
        "sagemaker.alarm-variants",
        "        routes:\n          - {version: 1.0.0, weight: 50}",
        "the error-rate guardrail's alarm can watch 5 variants at most, the binding routes 6",
        f"{BINDING}.routes",
    ),
    (
        "sagemaker-more-than-10-variants",
        routed([10] * 10 + [0], SAGEMAKER),
        "sagemaker.variants",
        "        routes:\n          - {version: 1.0.0, weight: 10}",
        "a SageMaker endpoint holds 10 variants at most, the binding routes 11",
        f"{BINDING}.routes",
    ),
    (
        "kserve-three-routed-versions",
        routed([20, 70, 10], deployed_to("kserve")),
        "kserve.routed-versions",
        "        routes:\n          - {version: 1.0.0, weight: 20}",
        "KServe splits traffic between two versions at most",
        f"{BINDING}.routes",
    ),
    (
        "kubernetes-file-on-this-machine",
        BASE.replace(URI_LINE, f"uri: file:///srv/models/sha256/aa/{HEX}"),
        "kubernetes.artifact-unreachable",
        "uri: file:///srv/models",
        "fraud-scorer 1.0.0 is at file:///srv/models/sha256/aa/",
        "models[fraud-scorer].versions[1.0.0].artifact.uri",
    ),
]


@pytest.mark.parametrize(("text", "code", "anchor", "words", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_target_limits_are_reported_by_validate_with_their_line(write, cli, text, code, anchor, words, path):
    file = write(text)
    problem = reported_problem(cli, file, code)
    assert words in problem["message"], problem
    assert "application 'checkout', model 'fraud-scorer' (environment 'production')" in problem["message"]
    assert (problem["file"], problem["line"], problem["path"]) == (str(file), line_of(text, anchor), path), problem
    assert problem["column"] >= 1 and problem["hint"] and problem["severity"] == "error"


def test_a_limit_applies_only_to_the_environments_deployed_to_its_target(write, cli):
    text = with_rollout(f"{{strategy: canary, step_percent: 60, interval_seconds: 60, {GUARDED}}}", BASE)
    for target in ("kubernetes", "kserve", "local"):
        result = cli("validate", write(deployed_to(target, text)), "--format", "json")
        assert result.exit_code == 0, result.output


def _stacks(out: Path) -> list[Path]:
    return sorted(out.rglob("cdk.tf.json"))


def test_synth_for_a_target_reports_its_limits_with_lines_and_exit_1(write, cli, tmp_path):
    text = with_rollout(
        f"{{strategy: canary, step_percent: 60, interval_seconds: 60, {GUARDED}}}", deployed_to("local")
    )
    file = write(text)
    assert cli("validate", file).exit_code == 0  # deployed locally, nothing refuses a canary of 60 %
    out = tmp_path / "out"
    result = cli("synth", "--catalog", file, "--target", "sagemaker", "--out", out, "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    [problem] = report["problems"]
    assert (problem["code"], problem["line"], problem["path"]) == (
        "sagemaker.canary-step",
        line_of(text, "step_percent: 60"),
        f"{BINDING}.rollout.step_percent",
    )
    assert _stacks(out) == []
    result = cli("synth", "--catalog", file, "--target", "sagemaker", "--out", out)
    assert result.exit_code == 1
    assert f"{file}:{line_of(text, 'step_percent: 60')}:" in result.stderr
    assert "canary step is 50 % of capacity at most" in result.stderr
    # the same catalog synthesized for a target that can run it
    assert cli("synth", "--catalog", file, "--target", "kubernetes", "--out", out).exit_code == 0
    assert [p.parent.name for p in _stacks(out)] == ["production-kubernetes"]


def test_synth_refuses_an_artifact_uri_with_a_nul_byte(write, cli, tmp_path):
    text = BASE.replace(URI_LINE, f'uri: "artifacts/sha256/aa/\\0{HEX}"')
    file = write(text)
    out = tmp_path / "out"
    result = cli("synth", "--catalog", file, "--target", "kubernetes", "--out", out, "--format", "json")
    assert result.exit_code == 1, result.output
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["code"], problem["line"]) == ("artifact.malformed-uri", line_of(text, 'uri: "artifacts'))
    assert _stacks(out) == []
