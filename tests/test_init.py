"""`modelcat init`: a catalog repository that validates, verifies and passes its own policies; CI
files that parse; CODEOWNERS from the models' owners; nothing existing overwritten."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import onnxruntime as ort
import yaml

from catalog.scaffold import builtin_policies, example_model
from catalog.validate import load_catalog
from tests.helpers import DEMO, ROOT


def test_a_new_repository_is_valid_verified_and_passes_its_policies(cli, tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "catalog-repo"
    result = cli("init", repo)
    assert result.exit_code == 0, result.output
    catalog = load_catalog(repo / "models.yaml")
    (model,) = catalog.models
    version = model.versions[0]
    artifact = repo / version.artifact.uri
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == version.artifact.digest.removeprefix("sha256:")
    assert (
        (repo / "models.yaml").read_text().startswith("# yaml-language-server: $schema=./schemas/catalog.schema.json")
    )
    assert json.loads((repo / "schemas" / "catalog.schema.json").read_text())["title"]
    assert {"cdktf.out/", ".modelcat/", "/review/"} <= set((repo / ".gitignore").read_text().splitlines())
    monkeypatch.chdir(repo)
    assert cli("validate").exit_code == 0
    assert cli("verify").exit_code == 0
    checked = cli("policy", "check", "--format", "json")
    assert checked.exit_code == 0, checked.output
    tested = cli("policy", "test")
    assert tested.exit_code == 0, tested.output


def test_the_example_model_is_the_same_bytes_everywhere_and_runs() -> None:
    data = example_model()
    assert data == example_model()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"features": np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)})
    assert np.allclose(out, [[0.5 - 0.5 + 0.375 + 4.0 + 0.1]])


def test_ci_files_parse_and_run_the_review(cli, tmp_path: Path) -> None:
    assert cli("init", tmp_path).exit_code == 0
    github = yaml.safe_load((tmp_path / ".github" / "workflows" / "modelcat.yml").read_text())
    review_steps = github["jobs"]["review"]["steps"]
    assert any("modelcat review" in step.get("run", "") for step in review_steps)
    assert github["jobs"]["review"]["steps"][0]["with"] == {"fetch-depth": 0}  # the base revision must be there
    assert any(
        "terraform" in step.get("run", "") and "apply" in step.get("run", "")
        for step in github["jobs"]["apply"]["steps"]
    )
    gitlab = yaml.safe_load((tmp_path / ".gitlab-ci.yml").read_text())
    assert any("modelcat review" in line for line in gitlab["modelcat-review"]["script"])
    assert gitlab["modelcat-apply"]["rules"][0]["if"] == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"


def test_an_existing_catalog_is_kept_and_its_owners_own_it(cli, workspace: Path) -> None:
    before = (workspace / "models.yaml").read_bytes()
    result = cli("init", workspace, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert "models.yaml" in report["kept"] and "CODEOWNERS" in report["written"]
    assert (workspace / "models.yaml").read_bytes() == before
    assert not list((workspace / "artifacts").rglob("*.tmp"))
    owners = {m.owner for m in load_catalog(DEMO).models}
    line = next(x for x in (workspace / "CODEOWNERS").read_text().splitlines() if x.startswith("/models.yaml "))
    assert set(line.split()[1:]) == owners


def test_nothing_is_overwritten(cli, tmp_path: Path) -> None:
    assert cli("init", tmp_path).exit_code == 0
    (tmp_path / "CODEOWNERS").write_text("/models.yaml @mine\n")
    (tmp_path / "policies" / "mc001_digest_pinned.rego").unlink()
    again = cli("init", tmp_path, "--format", "json")
    assert again.exit_code == 0
    assert json.loads(again.output)["written"] == ["policies/mc001_digest_pinned.rego"]
    assert (tmp_path / "CODEOWNERS").read_text() == "/models.yaml @mine\n"


def test_an_invalid_existing_catalog_stops_init_before_anything_is_written(cli, tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text("apiVersion: modelcat/v1\nmodels: []\n")
    result = cli("init", tmp_path)
    assert result.exit_code == 1
    assert "models.yaml" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.yaml"]


def test_a_file_in_place_of_the_folder_is_a_usage_error(cli, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    result = cli("init", tmp_path / "taken")
    assert result.exit_code == 2


def test_the_packaged_policies_are_the_repository_s() -> None:
    files = builtin_policies()
    repo = ROOT / "policies"
    rules = sorted(p.name for p in repo.glob("*.rego"))
    assert rules and sorted(n for n in files if n.endswith(".rego")) == rules
    assert all(files[name] == (repo / name).read_bytes() for name in rules)
    waivers = yaml.safe_load(files["waivers.yaml"])
    assert waivers == {"waivers": []}


def test_init_writes_a_scheduled_retrain_workflow_whose_modelcat_commands_exist(cli, tmp_path: Path) -> None:
    import click

    from catalog.cli.main import main

    assert cli("init", tmp_path).exit_code == 0
    workflow = yaml.safe_load((tmp_path / ".github" / "workflows" / "retrain.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    assert [c["cron"] for c in triggers["schedule"]] == ["0 3 * * *", "*/15 * * * *"]
    assert triggers["pull_request"]["types"] == ["closed"]
    assert workflow["env"] == {"MODEL": "example-model", "APPLICATION": "example-app", "MODELCAT_PACKAGE": ANY}
    runs = {
        name: [line.strip() for step in job["steps"] for line in step.get("run", "").splitlines()]
        for name, job in workflow["jobs"].items()
    }
    assert any(line.startswith("modelcat register") for line in runs["register"])
    assert any(line.startswith("gh pr create") for line in runs["register"])
    assert any(line.startswith("git add -A models.yaml artifacts &&") for line in runs["register"])  # the store
    started, stepped = (
        next(step for step in workflow["jobs"]["rollout"]["steps"] if f"modelcat rollout {what}" in step.get("run", ""))
        for what in ("start", "run")
    )
    assert started["if"] == "github.event_name == 'pull_request'" and "--version" in started["run"]
    assert stepped["if"] == "github.event_name == 'schedule'" and "--until step" in stepped["run"]
    commands = [part.strip() for lines in runs.values() for line in lines for part in re.split(r"[|;&()]+", line)]
    used = [shlex.split(command)[1:] for command in commands if command.startswith("modelcat ")]
    assert [words[0] for words in used] == ["register", "rollout", "rollout", "rollout"]
    for words in used:
        command: click.Command = main
        while isinstance(command, click.Group) and command.commands and not words[0].startswith("-"):
            assert words[0] in command.commands, f"modelcat has no command {words[0]!r} ({' '.join(words)})"
            command, words = command.commands[words[0]], words[1:]
        if not isinstance(command, click.Group):  # a group with no command yet (the rollout's, before they land)
            options = {o for p in command.params for o in p.opts}
            assert {w for w in words if w.startswith("--")} <= options, f"{command.name}: {words}"
