"""Every bad input named by the catalog issue: a clear error with its line, exit 1, file untouched."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from catalog.validate import validate_bytes, validate_file
from catalog.yamlio.loader import parse
from tests.helpers import HEX, MINIMAL, URI_LINE, json_schema_validator, line_of, reported_problem


def mutate(old: str, new: str, count: int = 1) -> str:
    assert MINIMAL.count(old) >= count, f"fixture has no {old!r}"
    return MINIMAL.replace(old, new, count)


# (id, catalog text, expected code, text whose line the error must point at, words in the message)
CASES = [
    (
        "duplicate-key",
        mutate("    owner: risk@example.com\n", "    owner: risk@example.com\n    owner: fraud@example.com\n"),
        "yaml.duplicate-key",
        "owner: fraud@example.com",
        "duplicate key 'owner'",
    ),
    (
        "two-merge-keys",
        "base: &a {replicas: 1}\nmore: &b {max_replicas: 2}\n"
        + mutate("        enabled: true\n", "        serving:\n          <<: *a\n          <<: *b\n"),
        "yaml.duplicate-key",
        "<<: *b",
        "duplicate merge key",
    ),
    (
        "enabled-no",
        mutate("enabled: true", "enabled: no"),
        "schema.bool_type",
        "enabled: no",
        "expected true or false, got no",
    ),
    (
        "version-float",
        mutate("      - version: 1.1.0", "      - version: 1.10"),
        "schema.string_type",
        "version: 1.10",
        "expected a string, got 1.10",
    ),
    (
        "python-object-tag",
        mutate("    owner: risk@example.com", "    owner: !!python/object:os.system risk"),
        "yaml.unsafe-tag",
        "!!python/object",
        "tag !!python/object:os.system is not allowed",
    ),
    (
        "unknown-field",
        mutate("          size_bytes: 2048\n", "          size_bytes: 2048\n          sha265: abc\n"),
        "schema.extra_forbidden",
        "sha265: abc",
        "unknown field 'sha265'",
    ),
    (
        "digest-short-hex",
        mutate("digest: sha256:" + "a" * 64, "digest: sha256:" + "a" * 63),
        "schema.string_pattern_mismatch",
        "digest: sha256:" + "a" * 63,
        "is not valid",
    ),
    (
        "digest-uppercase",
        mutate("digest: sha256:" + "a" * 64, "digest: sha256:" + "A" * 64),
        "schema.string_pattern_mismatch",
        "digest: sha256:" + "A" * 64,
        "is not valid",
    ),
    (
        "digest-md5",
        mutate("digest: sha256:" + "a" * 64, "digest: d41d8cd98f00b204e9800998ecf8427e"),
        "schema.string_pattern_mismatch",
        "d41d8cd98f00b204e9800998ecf8427e",
        "is not valid",
    ),
    (
        "digest-mutable-tag",
        mutate("digest: sha256:" + "a" * 64, "digest: latest"),
        "schema.string_pattern_mismatch",
        "digest: latest",
        "'latest' is not valid",
    ),
    (
        "uri-mutable-oci-tag",
        mutate("uri: artifacts/sha256/aa/" + "a" * 64, "uri: oci://registry.example.com/fraud-scorer:latest"),
        "artifact.mutable-reference",
        "oci://registry.example.com/fraud-scorer:latest",
        "not pinned by digest",
    ),
    (
        "uri-mutable-path",
        mutate("uri: artifacts/sha256/aa/" + "a" * 64, "uri: models/fraud-scorer/latest.onnx"),
        "artifact.mutable-reference",
        "models/fraud-scorer/latest.onnx",
        "does not name the artifact's digest",
    ),
    ("weights-99", mutate("weight: 10}", "weight: 9}"), "binding.weights", "routes:", "add up to 99, not 100"),
    ("weights-101", mutate("weight: 10}", "weight: 11}"), "binding.weights", "routes:", "add up to 101, not 100"),
    (
        "weight-negative",
        mutate("weight: 10}", "weight: -10}"),
        "schema.greater_than_equal",
        "weight: -10",
        "weight -10 (a number) is out of range: must be >= 0",
    ),
    (
        "weight-non-integer",
        mutate("weight: 10}", "weight: 10.5}"),
        "schema.int_type",
        "weight: 10.5",
        "expected a whole number, got 10.5",
    ),
    (
        "missing-version",
        mutate("{version: 1.1.0, weight: 10}", "{version: 1.2.0, weight: 10}"),
        "ref.missing-version",
        "version: 1.2.0",
        "has no version 1.2.0",
    ),
    (
        "name-differs-by-case",
        MINIMAL.replace(
            "applications:",
            MINIMAL[MINIMAL.index("  - name: fraud-scorer") : MINIMAL.index("applications:")].replace(
                "name: fraud-scorer", "name: Fraud-Scorer"
            )
            + "applications:",
        ),
        "ref.duplicate-model",
        "name: Fraud-Scorer",
        "collides with 'fraud-scorer'",
    ),
    (
        "name-trailing-space",
        MINIMAL.replace(
            "applications:",
            MINIMAL[MINIMAL.index("  - name: fraud-scorer") : MINIMAL.index("applications:")].replace(
                "name: fraud-scorer", 'name: "fraud-scorer "'
            )
            + "applications:",
        ),
        "ref.duplicate-model",
        'name: "fraud-scorer "',
        "collides with 'fraud-scorer'",
    ),
    (
        "conflict-markers",
        mutate(
            "      - version: 1.1.0\n",
            "<<<<<<< HEAD\n      - version: 1.1.0\n=======\n      - version: 1.2.0\n>>>>>>> feature\n",
        ),
        "yaml.conflict-marker",
        "<<<<<<< HEAD",
        "merge-conflict marker",
    ),
    ("empty", "", "yaml.empty", None, "the catalog is empty"),
    ("only-comments", "# nothing yet\n\n", "yaml.empty", None, "the catalog is empty"),
    (
        "retired-route",
        mutate("        stage: candidate", "        stage: retired"),
        "binding.retired-version",
        "version: 1.1.0, weight",
        "is retired",
    ),
    (
        "gate-out-of-range",
        mutate("        enabled: true\n", "        enabled: true\n        gates: {min_metrics: {auc: 91}}\n"),
        "metric.out-of-range",
        "auc: 91",
        "gate auc = 91 is outside [0, 1]",
    ),
    (
        "gate-age-out-of-range",
        mutate("        enabled: true\n", "        enabled: true\n        gates: {max_age_days: 0}\n"),
        "schema.greater_than_equal",
        "max_age_days: 0",
        "max_age_days 0 (a number) is out of range: must be >= 1",
    ),
    (
        "model-bound-twice",
        MINIMAL + "      - model: fraud-scorer\n        routes: [{version: 1.0.0, weight: 100}]\n",
        "binding.model-twice",
        "- model: fraud-scorer\n        routes: [",
        "bound twice",
    ),
]


@pytest.mark.parametrize(("text", "code", "anchor", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_reported_with_line_and_exit_1(write, cli, text, code, anchor, words):
    path = write(text)
    problem = reported_problem(cli, path, code)
    assert words in problem["message"]
    assert problem["file"] == str(path)
    expected_line = line_of(text, anchor) if anchor else 1
    assert problem["line"] == expected_line, problem
    assert problem["column"] >= 1
    assert problem["hint"], "every problem here tells what to do"


SCHEMA_LEVEL = [c for c in CASES if c[2].startswith("schema.")]


@pytest.mark.parametrize("text", [c[1] for c in SCHEMA_LEVEL], ids=[c[0] for c in SCHEMA_LEVEL])
def test_json_schema_rejects_what_the_models_reject(text):
    """Editors using the schema see the same schema-level mistakes modelcat reports."""
    data = parse(text, "models.yaml").data
    assert list(json_schema_validator().iter_errors(data)), "the JSON Schema accepted a catalog the models reject"


def test_text_output_names_file_line_path_and_hint(write, cli):
    path = write(mutate("enabled: true", "enabled: no"))
    result = cli("validate", path)
    assert result.exit_code == 1
    line = line_of(MINIMAL, "enabled: true")
    assert (
        f"{path}:{line}:18: error: applications[checkout].bindings[0].enabled: expected true or false" in result.stderr
    )
    assert "hint: only true and false are booleans here (YAML 1.2); 'no' is a string: write false" in result.stderr


def test_every_problem_is_reported_at_once(write):
    text = (
        mutate("enabled: true", "enabled: no")
        .replace("weight: 10}", "weight: 11}")
        .replace("          size_bytes: 2048\n", "          size_bytes: 2048\n          sha265: x\n", 1)
        .replace("{version: 1.0.0, weight: 90}", "{version: 9.9.9, weight: 90}")
    )
    report = validate_file(write(text))
    codes = sorted(p.code for p in report.errors)
    assert codes == ["schema.bool_type", "schema.extra_forbidden"], codes
    # the binding itself failed the schema, so its weights are not summed; fix the bool and they are
    report = validate_file(write(text.replace("enabled: no", "enabled: false")))
    assert sorted(p.code for p in report.errors) == ["binding.weights", "ref.missing-version", "schema.extra_forbidden"]


def test_non_utf8_file_points_at_the_byte(write, cli):
    data = MINIMAL.encode().replace(b"risk@example.com", b"risk\xe9@example.com")
    path = write(data)
    result = cli("validate", path, "--format", "json")
    assert result.exit_code == 1
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["code"] == "yaml.encoding"
    assert "0xe9 is not valid UTF-8" in problem["message"]
    assert problem["line"] == line_of(MINIMAL, "risk@example.com")
    assert problem["column"] == len("    owner: risk") + 1
    assert path.read_bytes() == data


def test_alias_bomb_is_rejected_fast(write):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join(['*a' + str(i - 1)] * 9)}]" for i in range(1, 10)]
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 1024
    path = write(bomb)
    start = time.perf_counter()
    report = validate_file(path)
    elapsed = time.perf_counter() - start
    assert [p.code for p in report.problems] == ["yaml.alias-budget"]
    assert report.problems[0].line > 1
    assert elapsed < 1.0, f"took {elapsed:.2f}s"


def test_recursive_alias_is_an_error():
    report = validate_bytes(b"apiVersion: modelcat/v1\nmodels: &m [*m]\n", "x.yaml")
    assert "yaml.recursive-alias" in [p.code for p in report.problems] or report.problems[0].code == "yaml.syntax"
    assert not report.ok


def test_anchors_and_single_merge_are_allowed(write):
    text = MINIMAL.replace(
        "apiVersion: modelcat/v1\n",
        "apiVersion: modelcat/v1\ndefaults:\n  serving: &small {replicas: 1, max_replicas: 2}\n",
    ).replace(
        "        enabled: true\n",
        "        enabled: true\n        serving:\n          <<: *small\n          max_replicas: 3\n",
    )
    report = validate_file(write(text))
    assert report.ok, report.problems
    assert report.catalog.applications[0].bindings[0].serving.max_replicas == 3
    assert report.catalog.applications[0].bindings[0].serving.replicas == 1


@pytest.mark.parametrize("tag", ["!!binary aGVsbG8=", "!custom x", "!!set {a, b}", "!!timestamp 2026-01-01"])
def test_tags_outside_the_core_schema_are_refused(write, tag):
    report = validate_file(write(mutate("    owner: risk@example.com", f"    owner: {tag}")))
    assert [p.code for p in report.problems] == ["yaml.unsafe-tag"]


def test_yaml_syntax_error_has_a_position(write):
    text = mutate("          size_bytes: 2048\n", "          size_bytes: [2048\n")
    report = validate_file(write(text))
    [problem] = report.problems
    assert problem.code == "yaml.syntax"
    assert problem.line > 0


def test_two_documents_are_refused(write):
    report = validate_file(write(MINIMAL + "---\napiVersion: modelcat/v1\n"))
    assert [p.code for p in report.problems] == ["yaml.syntax"]
    assert "one document" in report.problems[0].message


def test_missing_file_is_an_environment_error(cli, tmp_path: Path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_yaml_and_schema_problems_are_reported_together(write):
    text = mutate("    owner: risk@example.com\n", "    owner: risk@example.com\n    owner: x\n")
    text = text.replace("enabled: true", "enabled: no")
    report = validate_file(write(text))
    assert [p.code for p in report.problems] == ["yaml.duplicate-key", "schema.bool_type"]


def test_versions_sharing_traffic_must_share_a_signature(write):
    text = MINIMAL.replace(
        "          inputs: [{name: features, dtype: float32, shape: [batch, 16]}]\n"
        "          outputs: [{name: score, dtype: float32, shape: [batch, 1]}]\n        metrics: {auc: 0.93}",
        "          inputs: [{name: features, dtype: float64, shape: [batch, 32]}]\n"
        "          outputs: [{name: score, dtype: float32, shape: [batch, 1]}]\n        metrics: {auc: 0.93}",
    )
    report = validate_file(write(text))
    [problem] = report.problems
    assert problem.code == "binding.incompatible-signatures"
    assert "element type float32 -> float64" in problem.message and "dimension 1 16 -> 32" in problem.message
    assert problem.path == "applications[checkout].bindings[0].routes[1.1.0].version"


def test_a_nul_byte_in_the_file_is_reported_with_its_line(write, cli):
    text = mutate("owner: payments@example.com", "owner: payments\0@example.com")
    problem = reported_problem(cli, write(text), "yaml.control-character")
    assert "a NUL byte (U+0000) is not allowed" in problem["message"] and problem["hint"]
    assert (problem["line"], problem["column"]) == (line_of(text, "payments\0"), len("    owner: payments") + 1)


# (id, artifact.uri as written in YAML, words in the message): accepted before, and broken later
BAD_URIS = [
    ("nul-byte", f'"artifacts/sha256/aa/\\0{HEX}"', "holds a NUL byte"),
    ("space", f"artifacts/sha256/a a/{HEX}", "holds a space"),
    ("newline", f'"artifacts/sha256/aa\\n/{HEX}"', "holds a newline"),
    ("dot-dot", f"artifacts/../../etc/sha256/aa/{HEX}", "has a '..' segment"),
    ("file-relative", f"file://relative/sha256/aa/{HEX}", "names the host 'relative'"),
    ("file-one-slash", f"file:/models/{HEX}", "is not a file URI"),
    ("oci-open-bracket", f"oci://[::1/models/m@sha256:{HEX}", "the host '[::1' opens '[' without closing it"),
    ("oci-bad-port", f"oci://registry.example.com:99999/m@sha256:{HEX}", "'99999' is not a port"),
    ("oci-uppercase-repository", f"oci://registry.example.com/Models@sha256:{HEX}", "is not an OCI repository name"),
    ("windows-path", f"C:\\models\\{HEX}", "is a Windows path"),
    ("percent-escape", f"artifacts/sha256/%2e%2e/{HEX}", "holds '%'"),
]


@pytest.mark.parametrize(("uri", "words"), [c[1:] for c in BAD_URIS], ids=[c[0] for c in BAD_URIS])
def test_artifact_uris_that_break_later_are_refused_with_their_line(write, cli, uri, words):
    text = mutate(URI_LINE, f"uri: {uri}")
    path = write(text)
    problem = reported_problem(cli, path, "artifact.malformed-uri")
    assert words in problem["message"], problem
    assert (problem["line"], problem["path"]) == (
        line_of(text, f"uri: {uri}"),
        "models[fraud-scorer].versions[1.0.0].artifact.uri",
    )
    assert problem["hint"]


def test_a_catalog_over_the_size_cap_is_refused_naming_file_size_and_cap(cli, tmp_path: Path):
    from catalog.yamlio.loader import MAX_CATALOG_BYTES, MEMORY_PER_BYTE

    # the cap is what a 2-core, 8 GB CI runner survives (BENCHMARKS.md, Validation: ~40 bytes per byte)
    assert MAX_CATALOG_BYTES * MEMORY_PER_BYTE <= 2.1e9
    path = tmp_path / "models.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_CATALOG_BYTES + 1)  # sparse: nothing is written, nothing should be read
    result = cli("validate", path)
    assert result.exit_code == 2, result.output
    assert f"cannot read catalog {path}: it is {MAX_CATALOG_BYTES + 1:,} bytes" in result.stderr
    assert f"over the {MAX_CATALOG_BYTES:,}-byte ({MAX_CATALOG_BYTES >> 20} MiB) limit" in result.stderr
    assert "validating takes about 40 times a file's size in memory" in result.stderr
    error = json.loads(cli("validate", path, "--format", "json").stdout)["error"]
    assert error["code"] == "catalog_too_large" and error["hint"].startswith("keep the catalog under the limit")
