"""Helpers shared by tests of several folders: the repository's paths, the catalog texts tests start
from (``MINIMAL``, and with environments declared), where a text sits in them, the problem
``modelcat validate`` reports on a file, ``register`` and ``review`` as the tests run them, the
digests of a folder's files, the demo catalog's text unsigned, and a validator of the committed JSON
Schema."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import jsonschema
import referencing
import referencing.exceptions

from catalog.schema import catalog_schema

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "models.yaml"

MINIMAL = (ROOT / "tests" / "data" / "minimal.yaml").read_text(encoding="utf-8")
HEX = "a" * 64
URI_LINE = f"uri: artifacts/sha256/aa/{HEX}"
NOW = "2026-11-27"  # the day the tests take as today

ENVIRONMENTS = """\
environments:
  - name: production
    target: kubernetes
    kubernetes:
      namespace: ml-serving
      gateway: {name: public-gateway, namespace: gateway-system, section_name: https}
      image: registry.example.com/modelcat/modelcat:0.4.0
      image_pull_secret: registry-pull
      hostnames: [ml.example.com, "*.ml.example.com"]
      artifact_source: {kind: pvc, pvc: modelcat-artifacts}
    kserve:
      namespace: ml-serving
      storage_uri_prefix: s3://example-artifacts/catalog
      service_account: kserve-reader
    sagemaker:
      region: eu-west-1
      execution_role_arn: arn:aws:iam::123456789012:role/service-role/modelcat-execution
      image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/onnx-inference:1.2.0
      artifact_bucket: s3://example-artifacts/sagemaker
      alarm_topic_arn: arn:aws:sns:eu-west-1:123456789012:rollout-alarms
"""
MINIMAL_WITH_ENVIRONMENTS = MINIMAL.replace("models:\n", ENVIRONMENTS + "models:\n", 1)


def shadow_step_demo(shadow: str = "") -> str:
    """The demo catalog's text with the checkout's fraud-scorer in a shadow step: 1.3.0 at 100 %,
    1.4.0 at 0 % and mirrored 20 %; ``shadow``, the rollout's ``shadow`` block written in flow style
    (``{percent: 20, ...}``), when given."""
    text = DEMO.read_text()
    routes = "          - {version: 1.3.0, weight: 90}\n          - {version: 1.4.0, weight: 10}\n"
    assert routes in text
    text = text.replace(
        routes,
        "          - {version: 1.3.0, weight: 100}\n          - {version: 1.4.0, weight: 0}\n"
        "        mirror: {version: 1.4.0, percent: 20}\n",
    )
    block = f"          shadow: {shadow}\n" if shadow else ""
    return text.replace("          interval_seconds: 60\n", "          interval_seconds: 60\n" + block, 1)


def with_demo_keys(folder: Path) -> Path:
    """``folder`` with the demo's ``keys/`` copied in: the public key the demo catalog's trust policy
    names must lie beside a copy of it for that copy to validate."""
    shutil.copytree(ROOT / "keys", folder / "keys", dirs_exist_ok=True)
    return folder


def without_signatures(text: str) -> str:
    """A catalog's text without its ``trust:`` block and its versions' ``bundle:`` blocks: the demo
    catalog unsigned, for tests that set up a trust policy and signatures of their own."""
    text = re.sub(r"(?m)^trust:\n(?:(?:[ #].*)?\n)*", "", text)
    return re.sub(r"(?m)^( +)bundle:\n(?:\1 .*\n)+", "", text)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def declare_store(catalog: Path, name: str, uri: str) -> None:
    """Add a store to the demo catalog's ``stores:`` (after its default store, ``artifacts``)."""
    text = catalog.read_text(encoding="utf-8")
    anchor = "    default: true\n"
    assert text.count(anchor) == 1
    catalog.write_text(
        text.replace(anchor, f"{anchor}  - name: {name}\n    uri: {json.dumps(uri)}\n"), encoding="utf-8"
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (the store, staging included) with its sha256."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): sha256_file(p) for p in folder.rglob("*") if p.is_file()}


def register(cli, workspace: Path, artifact: Path, version: str = "1.5.0", *extra: str):
    """``modelcat register fraud-scorer`` of ``artifact`` into the demo catalog in ``workspace``."""
    return cli(
        "register",
        "fraud-scorer",
        "--version",
        version,
        "--artifact",
        artifact,
        "--catalog",
        workspace / "models.yaml",
        "--trained-at",
        "2026-11-20",
        *extra,
    )


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    start = -1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    return text.count("\n", 0, start) + 1


def reported_problem(cli, path: Path, code: str) -> dict:
    """``modelcat validate PATH``: exit 1, the file untouched, and the first problem with ``code``."""
    before = sha256_file(path)
    result = cli("validate", path, "--format", "json")
    assert result.exit_code == 1, result.output
    problems = json.loads(result.stdout)["problems"]
    matching = [p for p in problems if p["code"] == code]
    assert matching, f"no {code} in {problems}"
    assert sha256_file(path) == before
    return matching[0]


def run_review(cli, *args: str) -> tuple[int, str, dict, dict]:
    """``modelcat review ARGS``: its exit code, and the comment, SARIF and JSON report it wrote."""
    result = cli("review", *args, "--now", NOW)
    out = Path("review")
    comment = (out / "comment.md").read_text() if (out / "comment.md").exists() else ""
    sarif = json.loads((out / "review.sarif").read_text()) if (out / "review.sarif").exists() else {}
    report = json.loads((out / "review.json").read_text()) if (out / "review.json").exists() else {}
    assert result.exit_code == report.get("exit_code", result.exit_code), result.output
    return result.exit_code, comment, sarif, report


def _no_fetch(uri: str) -> referencing.Resource:
    raise referencing.exceptions.NoSuchResource(ref=uri)


def json_schema_validator() -> jsonschema.Draft202012Validator:
    """A validator of the catalog's JSON Schema that never fetches a ``$ref`` (every one is local)."""
    registry = referencing.Registry(retrieve=_no_fetch)
    schema = catalog_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())


# An environment's secrets (models.yaml's environments[].secrets), as the secrets tests declare them.
BASE_ENVIRONMENT_SECRETS = """\
    secrets:
      - name: feature-token
        vault: vault://secret/checkout/feature-token
        field: token
        version: 3
        secrets_manager: checkout/feature-token
      - name: store-credentials
        vault: vault://kv/team/stores/artifacts
        secrets_manager: team/stores/artifacts
"""


def with_secrets(text: str, environment: str, secrets: str = BASE_ENVIRONMENT_SECRETS) -> str:
    """``text`` (a catalog with ``environments:``) with ``secrets`` (a ``secrets:`` block, indented
    as an environment's key) added to ``environment``."""
    anchor = f"  - name: {environment}\n"
    assert text.count(anchor) == 1, f"no environment {environment} in the text"
    return text.replace(anchor, anchor + secrets, 1)


def with_vault_role(text: str, role: str = "modelcat-serving") -> str:
    """The demo catalog's ``text`` with ``vault_role`` in production's kubernetes and kserve blocks."""
    for anchor in (
        "        registry_secret: artifacts-example-token\n",
        "      service_account: kserve-artifacts-reader",
    ):
        end = text.index("\n", text.index(anchor) + len(anchor) - 1) + 1
        text = text[:end] + f"      vault_role: {role}\n" + text[end:]
    return text
