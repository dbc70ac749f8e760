"""With ``--format json`` every command prints one JSON document whose ``ok`` is true exactly when it
exits 0, and which carries an ``error`` object (``code``, ``message``, ``hint``) whenever it does not:
environment errors, invalid catalogs, click's own usage errors, bad revisions, missing files and
the commands' own findings."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog.cli.main import main
from tests.cli.helpers import commands_of
from tests.git_catalogs import GitRepo, demo_text
from tests.helpers import DEMO, ROOT, sha256_file, with_demo_keys
from tests.policy.helpers import FIXTURES, NOW, copy_policies

ZERO = "sha256:" + "0" * 64
DEMO_KEY = ROOT / "keys" / "demo-release.pem"
SETTINGS = ("MODELCAT_MODEL", "MODELCAT_VERSION", "MODELCAT_DIGEST", "MODELCAT_ARTIFACT", "SM_MODEL_DIR")


@dataclass(frozen=True)
class Scene:
    """What the error paths need: a git repository holding the demo catalog (committed, tag ``base``),
    its artifacts and policies, and beside it missing, invalid and broken things."""

    tmp: Path
    catalog: Path  # the repository's models.yaml
    invalid: Path  # a catalog in the repository with schema errors (not committed)
    missing: Path
    blob: Path  # one of the demo's ONNX artifacts
    flipped: Path  # a copy of the demo whose fraud-scorer artifact has one byte flipped
    no_policies: Path  # a copy of the demo catalog in a folder without policies/
    bad_fixture: Path  # the built-in policies, one fixture expecting a finding its rule does not give


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    tmp = tmp_path_factory.mktemp("json-output")
    repo = GitRepo(tmp / "repo")
    shutil.copytree(DEMO.parent / "artifacts" / "sha256", repo.root / "artifacts" / "sha256")
    shutil.copytree(ROOT / "policies", repo.root / "policies")
    with_demo_keys(repo.root)
    repo.git("add", "artifacts", "policies", "keys")
    repo.commit(demo_text(), "the demo catalog", "base")
    invalid = repo.root / "invalid.yaml"
    invalid.write_text("apiVersion: modelcat/v1\nmodels: []\n")
    blob = next(p for p in sorted((repo.root / "artifacts").rglob("*")) if p.is_file())

    flipped = tmp / "flipped"
    flipped.mkdir()
    shutil.copyfile(DEMO, flipped / "models.yaml")
    with_demo_keys(flipped)
    shutil.copytree(DEMO.parent / "artifacts" / "sha256", flipped / "artifacts" / "sha256")
    target = next(p for p in sorted((flipped / "artifacts").rglob("*")) if p.is_file())
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.chmod(0o644)
    target.write_bytes(bytes(data))

    no_policies = tmp / "no-policies"
    no_policies.mkdir()
    shutil.copyfile(DEMO, no_policies / "models.yaml")
    with_demo_keys(no_policies)

    bad_fixture = copy_policies(tmp / "bad-fixture")
    expect = bad_fixture / "fixtures" / "MC006" / "fail.expect.yaml"
    expect.write_text(expect.read_text().replace("over the maximum of 25%", "over the maximum of 20%"))
    (tmp / "empty").mkdir()
    (tmp / "table.json").write_text("{}")
    (tmp / "schema.json").write_text("{}")
    (tmp / "not-onnx.onnx").write_text("not a model\n")
    (tmp / "init-invalid").mkdir()
    shutil.copyfile(invalid, tmp / "init-invalid" / "models.yaml")
    return Scene(
        tmp, repo.catalog, invalid, tmp / "missing.yaml", blob, flipped / "models.yaml", no_policies / "models.yaml",
        bad_fixture,
    )  # fmt: skip


Args = Callable[[Scene], list[object]]


def _events(s: Scene) -> Path:
    """An outcome event file of one good event."""
    path = s.tmp / "events.jsonl"
    path.write_text('{"event_id": "e-1", "unit": "alice", "outcome": "conversion", "value": 1}\n')
    return path


# command -> (what, arguments, exit codes it may end with, the error code when it fails)
CASES: list[tuple[str, str, Args, set[int], str | None]] = [
    ("validate", "missing catalog", lambda s: ["--catalog", s.missing], {2}, "catalog_not_found"),
    ("validate", "invalid catalog", lambda s: [s.invalid], {1}, "catalog_invalid"),
    ("validate", "unknown option", lambda s: ["--bogus"], {2}, "usage"),
    ("validate", "two catalogs", lambda s: [s.invalid, "--catalog", s.missing], {2}, "usage"),
    ("validate", "valid", lambda s: ["--catalog", s.catalog], {0}, None),
    ("show", "missing catalog", lambda s: [s.missing], {2}, "catalog_not_found"),
    ("show", "invalid catalog", lambda s: ["--catalog", s.invalid], {1}, "catalog_invalid"),
    ("show", "bad argument", lambda s: ["--catalog", s.catalog, "--now", "someday"], {2}, "usage"),
    ("schema", "options that exclude each other", lambda s: ["--check", "--write"], {2}, "usage"),
    ("schema", "finding: out of date", lambda s: ["--check", "--path", s.tmp / "schema.json"], {1}, "schema_out_of_date"),
    ("schema", "up to date", lambda s: ["--check"], {0}, None),
    ("bind", "missing catalog", lambda s: ["checkout", "fraud-scorer", "--route", "1.3.0=100", "--catalog", s.missing],
     {2}, "catalog_not_found"),
    ("bind", "invalid catalog", lambda s: ["checkout", "fraud-scorer", "--route", "1.3.0=100", "--catalog", s.invalid],
     {1}, "edit_refused"),
    ("bind", "bad argument", lambda s: ["checkout", "fraud-scorer", "--route", "1.3.0", "--catalog", s.catalog],
     {2}, "usage"),
    ("bind", "the routes it has", lambda s: ["checkout", "fraud-scorer", "--route", "1.3.0=90", "--route", "1.4.0=10",
                                             "--catalog", s.catalog], {0}, None),
    ("bind", "missing option", lambda s: ["checkout", "fraud-scorer", "--catalog", s.catalog], {2}, "usage"),
    ("register", "missing catalog", lambda s: ["m", "--version", "9.0.0", "--artifact", s.blob, "--catalog", s.missing],
     {2}, "catalog_not_found"),
    ("register", "invalid catalog", lambda s: ["m", "--version", "9.0.0", "--artifact", s.blob, "--catalog", s.invalid],
     {1}, "edit_refused"),
    ("register", "missing file", lambda s: ["m", "--version", "9.0.0", "--artifact", s.tmp / "nosuch.onnx"],
     {2}, "usage"),
    ("register", "bad argument", lambda s: ["m", "--version", "9.0.0", "--artifact", s.blob, "--metric", "auc=high",
                                            "--catalog", s.invalid], {2}, "usage"),
    ("sign", "missing catalog", lambda s: ["fraud-scorer", "--version", "1.4.0", "--key", s.blob, "--catalog", s.missing],
     {2}, "catalog_not_found"),
    ("sign", "invalid catalog", lambda s: ["fraud-scorer", "--version", "1.4.0", "--key", s.blob, "--catalog", s.invalid],
     {1}, "catalog_invalid"),
    ("sign", "unknown version", lambda s: ["fraud-scorer", "--version", "9.9.9", "--key", s.blob, "--catalog", s.catalog],
     {2}, "usage"),
    ("sign", "not a key", lambda s: ["fraud-scorer", "--version", "1.4.0", "--key", s.blob, "--catalog", s.catalog],
     {1}, "signing_error"),
    ("sign", "missing option", lambda s: ["fraud-scorer", "--key", s.blob, "--catalog", s.catalog], {2}, "usage"),
    ("verify", "missing catalog", lambda s: ["--catalog", s.missing], {2}, "catalog_not_found"),
    ("verify", "invalid catalog", lambda s: ["--catalog", s.invalid], {1}, "catalog_invalid"),
    ("verify", "a catalog given as an argument", lambda s: [s.catalog], {2}, "usage"),
    ("verify", "bad revision", lambda s: ["--catalog", s.catalog, "--changed-since", "nosuch"], {2}, None),
    ("verify", "finding: a flipped byte", lambda s: ["--catalog", s.flipped], {1}, "artifacts_failed"),
    ("verify", "every artifact verified", lambda s: ["--catalog", s.catalog], {0}, None),
    ("inspect", "an ONNX file", lambda s: [s.blob], {0}, None),
    ("inspect", "missing file", lambda s: [s.tmp / "nosuch.onnx"], {2}, "usage"),
    ("inspect", "not ONNX", lambda s: [s.tmp / "not-onnx.onnx"], {1}, "not_onnx"),
    ("fetch", "missing file", lambda s: [s.tmp / "nosuch.onnx", "--digest", ZERO, "--size", 3, "--out", s.tmp / "o"],
     {1, 2}, "store_error"),
    ("fetch", "digest mismatch", lambda s: [s.blob, "--digest", ZERO, "--size", s.blob.stat().st_size,
                                            "--out", s.tmp / "o"], {1}, "digest_mismatch"),
    ("fetch", "the right bytes", lambda s: [s.blob, "--digest", "sha256:" + sha256_file(s.blob),
                                            "--size", s.blob.stat().st_size, "--out", s.tmp / "fetched"], {0}, None),
    ("fetch", "missing option", lambda s: [s.blob, "--digest", ZERO], {2}, "usage"),
    ("replica", "missing file", lambda s: ["--model", "m", "--version", "1.0.0", "--artifact", s.tmp / "nosuch.onnx",
                                           "--digest", ZERO, "--port", 0], {2}, "usage"),
    ("replica", "digest mismatch", lambda s: ["--model", "m", "--version", "1.0.0", "--artifact", s.blob,
                                              "--digest", ZERO, "--port", 0], {1}, "digest_mismatch"),
    ("serve", "no settings", lambda s: ["--port", 0], {2}, "usage"),
    ("serve", "missing file", lambda s: ["--model", "m", "--version", "1.0.0", "--digest", ZERO,
                                         "--artifact", s.tmp / "nosuch.onnx", "--port", 0], {2}, "usage"),
    ("serve", "digest mismatch", lambda s: ["--model", "m", "--version", "1.0.0", "--digest", ZERO,
                                            "--artifact", s.blob, "--port", 0], {1}, "digest_mismatch"),
    ("router", "missing file", lambda s: ["--table", s.tmp / "nosuch.json", "--port", 0], {2},
     "routing_table_unreadable"),
    ("router", "invalid table", lambda s: ["--table", s.tmp / "table.json", "--port", 0], {1}, "routing_table_invalid"),
    ("router", "missing option", lambda s: ["--table", s.tmp / "table.json"], {2}, "usage"),
    ("synth", "missing catalog", lambda s: ["--catalog", s.missing, "--out", s.tmp / "out"], {2}, "catalog_not_found"),
    ("synth", "invalid catalog", lambda s: ["--catalog", s.invalid, "--out", s.tmp / "out"], {1}, "catalog_invalid"),
    ("synth", "the demo", lambda s: ["--catalog", s.catalog, "--out", s.tmp / "out-ok"], {0}, None),
    ("synth", "bad argument", lambda s: ["--catalog", s.catalog, "--target", "nosuch"], {2}, "usage"),
    ("plan", "missing catalog", lambda s: ["--catalog", s.missing], {2}, "catalog_not_found"),
    ("plan", "invalid catalog", lambda s: ["--catalog", s.invalid], {1}, "catalog_invalid"),
    ("plan", "unknown environment", lambda s: ["--catalog", s.catalog, "--env", "nosuch"], {2}, "usage"),
    ("apply", "missing catalog", lambda s: ["--catalog", s.missing, "--auto-approve"], {2}, "catalog_not_found"),
    ("apply", "invalid catalog", lambda s: ["--catalog", s.invalid, "--auto-approve"], {1}, "catalog_invalid"),
    ("apply", "missing file", lambda s: [s.tmp / "nosuch.tfplan", "--catalog", s.catalog], {2}, "usage"),
    ("destroy", "nothing applied", lambda s: ["--catalog", s.catalog, "--auto-approve"], {0}, None),
    ("destroy", "unknown option", lambda s: ["--catalog", s.catalog, "--bogus"], {2}, "usage"),
    ("status", "missing catalog", lambda s: ["--catalog", s.missing], {2}, "catalog_not_found"),
    ("status", "invalid catalog", lambda s: ["--catalog", s.invalid], {1}, "catalog_invalid"),
    ("status", "finding: nothing runs", lambda s: ["--catalog", s.catalog], {0, 1}, "inconsistent"),
    ("predict", "missing catalog", lambda s: ["checkout", "--model", "fraud-scorer", "--catalog", s.missing],
     {2}, "catalog_not_found"),
    ("predict", "invalid catalog", lambda s: ["checkout", "--model", "fraud-scorer", "--catalog", s.invalid],
     {1}, "catalog_invalid"),
    ("predict", "nothing runs", lambda s: ["checkout", "--model", "fraud-scorer", "--catalog", s.catalog], {2}, "usage"),
    ("predict", "missing argument", lambda s: ["--catalog", s.catalog], {2}, "usage"),
    ("smoke", "missing catalog", lambda s: ["--catalog", s.missing], {2}, "catalog_not_found"),
    ("smoke", "invalid catalog", lambda s: ["--catalog", s.invalid], {1}, "catalog_invalid"),
    ("smoke", "nothing runs", lambda s: ["--catalog", s.catalog], {2}, "usage"),
    ("smoke", "bad argument", lambda s: ["--catalog", s.catalog, "--requests", 0], {2}, "usage"),
    ("feedback import", "missing file", lambda s: [s.tmp / "nosuch.jsonl", "--app", "storefront",
                                                   "--catalog", s.catalog], {2}, "usage"),
    ("feedback import", "invalid catalog", lambda s: [_events(s), "--app", "storefront", "--catalog", s.invalid],
     {1}, "catalog_invalid"),
    ("feedback import", "unknown application", lambda s: [_events(s), "--app", "nosuch", "--catalog", s.catalog],
     {2}, "usage"),
    ("feedback import", "nothing applied", lambda s: [_events(s), "--app", "storefront", "--catalog", s.catalog],
     {2}, "usage"),
    ("policy check", "missing catalog", lambda s: [s.missing], {2}, "catalog_not_found"),
    ("policy check", "invalid catalog", lambda s: ["--catalog", s.invalid, "--now", NOW], {1}, "catalog_invalid"),
    ("policy check", "bad revision", lambda s: [s.catalog, "--base", "nosuch", "--now", NOW], {2}, None),
    ("policy check", "no policies", lambda s: [s.no_policies], {2}, "usage"),
    ("policy check", "finding: a deny", lambda s: [FIXTURES / "MC006" / "fail.yaml", "--now", NOW,
                                                   "--policies", s.catalog.parent / "policies"], {1}, "policy_denied"),
    ("policy check", "nothing denied", lambda s: [s.catalog, "--now", NOW], {0}, None),
    ("policy test", "no rules", lambda s: ["--policies", s.tmp / "empty"], {2}, "usage"),
    ("policy test", "finding: a fixture differs", lambda s: ["--policies", s.bad_fixture], {1}, "policy_fixtures_failed"),
    ("policy input", "missing catalog", lambda s: ["--catalog", s.missing], {2}, "catalog_not_found"),
    ("policy input", "invalid catalog", lambda s: [s.invalid], {1}, "catalog_invalid"),
    ("policy input", "bad revision", lambda s: [s.catalog, "--base", "nosuch"], {2}, None),
    ("diff", "no change", lambda s: ["base", "--catalog", s.catalog, "--no-blast-radius"], {0}, None),
    ("diff", "missing argument", lambda s: ["--catalog", s.catalog], {2}, "usage"),
    ("diff", "bad revision", lambda s: ["nosuch", "--catalog", s.catalog], {2}, None),
    ("diff", "invalid catalog", lambda s: ["base", "--catalog", s.invalid], {1}, "catalog_invalid"),
    ("init", "a new folder", lambda s: [s.tmp / "init-new"], {0}, None),
    ("init", "invalid catalog", lambda s: [s.tmp / "init-invalid"], {1}, "catalog_invalid"),
    ("init", "a file for a folder", lambda s: [s.blob], {2}, "usage"),
    ("review", "bad revision", lambda s: ["nosuch", "--catalog", s.catalog, "--out", s.tmp / "r1"], {2}, None),
    ("review", "no policies", lambda s: ["base", "--catalog", s.no_policies, "--out", s.tmp / "r2"], {2}, "usage"),
    ("review", "finding: an invalid catalog", lambda s: ["base", "--catalog", s.invalid, "--now", NOW,
                                                         "--out", s.tmp / "r3"], {1}, "review_blocked"),
    ("review", "nothing blocks", lambda s: ["base", "--catalog", s.catalog, "--now", NOW, "--out", s.tmp / "r4"],
     {0}, None),
    ("analyze", "missing catalog", lambda s: ["storefront", "--catalog", s.missing], {2}, "catalog_not_found"),
    ("analyze", "invalid catalog", lambda s: ["storefront", "--catalog", s.invalid], {1}, "catalog_invalid"),
    ("analyze", "unknown application", lambda s: ["storefrnt", "--catalog", s.catalog], {2}, "usage"),
    ("analyze", "bad argument", lambda s: ["checkout", "--since", "yesterday", "--catalog", s.catalog], {2}, "usage"),
    ("analyze", "nothing recorded yet", lambda s: ["storefront", "--model", "recommender", "--until", "2026-12-01",
                                                   "--catalog", s.catalog], {0}, None),
    ("analyze", "finding: a hold refused", lambda s: ["storefront", "--model", "recommender", "--until", "2026-12-01",
                                                      "--fail-on", "hold", "--catalog", s.catalog], {1}, "verdict_hold"),
    ("rollout start", "missing catalog", lambda s: ["checkout", "--version", "1.4.0", "--catalog", s.missing], {2},
     "catalog_not_found"),
    ("rollout start", "unknown version", lambda s: ["checkout", "--version", "9.9.9", "--catalog", s.catalog], {1},
     "rollout_error"),
    ("rollout start", "missing option", lambda s: ["checkout", "--catalog", s.catalog], {2}, "usage"),
    ("rollout step", "no rollout", lambda s: ["checkout", "--catalog", s.catalog], {1}, "rollout_error"),
    ("rollout promote", "no rollout", lambda s: ["checkout", "--force", "--catalog", s.catalog], {1}, "rollout_error"),
    ("rollout pause", "no rollout", lambda s: ["checkout", "--catalog", s.catalog], {1}, "rollout_error"),
    ("rollout resume", "no rollout", lambda s: ["checkout", "--catalog", s.catalog], {1}, "rollout_error"),
    ("rollout abort", "no rollout", lambda s: ["checkout", "--catalog", s.catalog], {1}, "rollout_error"),
    ("rollout abort", "not in git", lambda s: ["checkout", "--catalog", s.flipped], {2}, "usage"),
    ("rollout status", "no rollout", lambda s: ["storefront", "--model", "recommender", "--catalog", s.catalog], {0},
     None),
    ("rollout status", "unknown application", lambda s: ["storefrnt", "--catalog", s.catalog], {2}, "usage"),
    ("rollout run", "no rollout", lambda s: ["checkout", "--max-seconds", 1, "--catalog", s.catalog], {1},
     "rollout_error"),
    ("rollout run", "apply on a branch", lambda s: ["checkout", "--apply", "--branch", "b", "--catalog", s.catalog], {2},
     "usage"),
    ("rollout history", "one commit by hand", lambda s: ["checkout", "--catalog", s.catalog], {0}, None),
    ("rollout history", "unknown application", lambda s: ["chekout", "--catalog", s.catalog], {2}, "usage"),
    ("rollout replay", "no such rollout", lambda s: ["checkout.fraud-scorer.1.4.0.20261206T201000Z",
                                                     "--catalog", s.catalog], {1}, "rollout_error"),
    ("rollout replay", "not a rollout id", lambda s: ["../x", "--catalog", s.catalog], {2}, "usage"),
    ("rollback", "the routes in force", lambda s: ["checkout", "--model", "fraud-scorer", "--to", "base",
                                                   "--catalog", s.catalog], {0}, None),
    ("rollback", "bad revision", lambda s: ["checkout", "--model", "fraud-scorer", "--to", "nosuch",
                                            "--catalog", s.catalog], {2}, None),
    ("rollback", "finding: no such binding then", lambda s: ["checkout", "--model", "recommender", "--to", "base",
                                                             "--catalog", s.catalog], {1}, "rollback_refused"),
    ("rollback", "missing option", lambda s: ["checkout", "--catalog", s.catalog], {2}, "usage"),
    ("attest", "missing catalog", lambda s: ["fraud-scorer", "--version", "1.4.0", "--key", DEMO_KEY,
                                             "--catalog", s.missing], {2}, "catalog_not_found"),
    ("attest", "missing option", lambda s: ["fraud-scorer", "--catalog", s.catalog], {2}, "usage"),
    ("attest", "finding: a version nothing routes", lambda s: ["fraud-scorer", "--version", "1.2.0", "--key", DEMO_KEY,
                                                               "--catalog", s.catalog], {1}, "signing_error"),
    ("attest", "attested", lambda s: ["fraud-scorer", "--version", "1.4.0", "--key", DEMO_KEY,
                                      "--out", s.tmp / "attestation.json", "--catalog", s.catalog], {0}, None),
    ("attest", "finding: not an attestation", lambda s: ["--verify", s.tmp / "table.json", "--catalog", s.catalog],
     {1}, "signature_invalid"),
    ("attest", "verify a missing file", lambda s: ["--verify", s.missing, "--catalog", s.catalog], {2}, "usage"),
]  # fmt: skip


def test_the_json_test_covers_every_command_of_modelcat_help() -> None:
    covered = {command for command, *_ in CASES}
    assert covered == set(commands_of(main))
    failing = {command for command, _, _, exits, _ in CASES if exits - {0}}
    assert failing == covered, "every command has a path that exits non-zero"


@pytest.mark.parametrize(("command", "what", "args", "exits", "code"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_json_output_never_lies(
    scene: Scene, command: str, what: str, args: Args, exits: set[int], code: str | None
) -> None:
    runner = CliRunner(env=dict.fromkeys(SETTINGS))
    argv = [*command.split(), *(str(a) for a in args(scene)), "--format", "json"]
    result = runner.invoke(main, argv, catch_exceptions=False)
    assert result.exit_code in exits, (result.exit_code, result.output)
    document = json.loads(result.stdout)  # one document, nothing else on stdout
    assert isinstance(document, dict), document
    assert document["ok"] is (result.exit_code == 0), document
    if result.exit_code == 0:
        assert "error" not in document
        return
    error = document["error"]
    assert set(error) == {"code", "message", "hint"} and all(isinstance(v, str) and v for v in error.values()), error
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    if code is not None:
        assert error["code"] == code, error


def test_an_environment_error_says_ok_false_with_its_code_message_and_hint(cli, tmp_path: Path) -> None:
    result = cli("verify", "--catalog", tmp_path / "missing.yaml", "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["error"] == {
        "code": "catalog_not_found",
        "message": f"cannot read catalog {tmp_path / 'missing.yaml'}: no such file (pass the path of models.yaml)",
        "hint": "give the catalog file with --catalog PATH (default: models.yaml in the current folder)",
    }


def test_click_usage_errors_are_json_only_when_json_is_asked_for(cli) -> None:
    asked = cli("verify", "--bogus", "--format", "json")
    assert asked.exit_code == 2 and asked.stderr == ""
    assert json.loads(asked.stdout)["error"]["code"] == "usage"
    assert "--bogus" in json.loads(asked.stdout)["error"]["message"]
    text = cli("verify", "--bogus")
    assert text.exit_code == 2 and text.stdout == ""
    assert text.stderr.startswith("Usage: ") and "--bogus" in text.stderr
