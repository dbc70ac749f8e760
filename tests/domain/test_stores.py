"""The catalog declares its artifact stores (``stores:``): register writes into the default one
(never into the git-ignored .modelcat/), validate checks them and warns when git ignores one, and
the repository `modelcat init` writes commits its store and triggers CI on it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import DEMO, declare_store, line_of, reported_problem, sha256_file, with_demo_keys
from tests.onnx_models import dense_model, save

DEMO_STORES = "stores:\n  - name: artifacts\n    uri: artifacts # content-addressed: artifacts/sha256/<2 hex>/<64 hex>\n    default: true\n"


def _register(cli, workspace: Path, seed: int, *extra: str):
    artifact = save(dense_model(seed=seed), workspace / f"model-{seed}.onnx")
    args = (
        "register",
        "fraud-scorer",
        "--version",
        f"1.{seed}.0",
        "--artifact",
        artifact,
        "--trained-at",
        "2026-11-20",
    )
    result = cli(*args, "--catalog", workspace / "models.yaml", "--format", "json", *extra)
    digest = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    return result, digest


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)
    return done.stdout


def test_register_writes_to_the_default_store(cli, workspace: Path) -> None:
    """The declared default store; without `stores:`, artifacts/ beside the catalog; another
    default when the catalog says so. Never the git-ignored .modelcat/store."""
    result, digest = _register(cli, workspace, 5)
    assert result.exit_code == 0, result.output
    hexdigest = digest.removeprefix("sha256:")
    assert json.loads(result.stdout)["uri"] == f"artifacts/sha256/{hexdigest[:2]}/{hexdigest}"
    assert sha256_file(workspace / "artifacts" / "sha256" / hexdigest[:2] / hexdigest) == hexdigest

    catalog = workspace / "models.yaml"
    text = catalog.read_text()
    assert DEMO_STORES in text
    catalog.write_text(text.replace(DEMO_STORES, ""))  # no stores: the implied artifacts/ folder
    result, digest = _register(cli, workspace, 6)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uri"] == f"artifacts/sha256/{digest[7:9]}/{digest[7:]}"

    catalog.write_text(
        text.replace("    default: true\n", "    default: false\n  - {name: team, uri: team/store, default: true}\n")
    )
    result, digest = _register(cli, workspace, 7)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uri"] == f"team/store/sha256/{digest[7:9]}/{digest[7:]}"
    assert not (workspace / ".modelcat" / "store").exists()
    assert cli("verify", "--catalog", catalog).exit_code == 0


def test_register_to_a_store_the_catalog_names_and_nowhere_else(cli, workspace: Path) -> None:
    catalog = workspace / "models.yaml"
    declare_store(catalog, "shared", f"file://{workspace / 'shared'}")
    result, digest = _register(cli, workspace, 5, "--store", "shared")  # by name
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uri"] == f"file://{workspace}/shared/sha256/{digest[7:9]}/{digest[7:]}"
    result, digest = _register(cli, workspace, 6, "--store", str(workspace / "shared"))  # by where it is
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uri"].startswith(f"file://{workspace}/shared/sha256/")
    assert cli("validate", catalog).exit_code == 0

    before = sha256_file(catalog)
    result, _ = _register(cli, workspace, 8, "--store", str(workspace / "elsewhere"))
    assert result.exit_code == 2
    assert "is not one of the catalog's stores: artifacts (artifacts), shared (file://" in result.output
    assert sha256_file(catalog) == before and not (workspace / "elsewhere").exists()


def _with_stores(stores: str) -> str:
    text = DEMO.read_text()
    assert DEMO_STORES in text
    return text.replace(DEMO_STORES, stores)


# (id, stores block, expected code, text on the line it names, words in the message)
STORE_CASES = [
    (
        "duplicate-name",
        DEMO_STORES + "  - {name: artifacts, uri: oci://registry.example.com/models}\n",
        "ref.duplicate-store",
        "- {name: artifacts, uri: oci",
        "store 'artifacts' is defined twice",
    ),
    (
        "no-default",
        "stores:\n  - {name: artifacts, uri: artifacts}\n",
        "store.no-default",
        "stores:",
        "no store is the default",
    ),
    (
        "two-defaults",
        DEMO_STORES + "  - {name: registry, uri: oci://registry.example.com/models, default: true}\n",
        "store.several-defaults",
        "- {name: registry",
        "store 'registry' is a default too (so is 'artifacts')",
    ),
    (
        "unsupported-uri",
        DEMO_STORES + "  - {name: bucket, uri: s3://bucket/models}\n",
        "store.unsupported-uri",
        "uri: s3://bucket/models",
        "store 'bucket': 's3://bucket/models' is not a supported store",
    ),
    (
        "absolute-path",
        DEMO_STORES + "  - {name: abs, uri: /srv/models}\n",
        "store.unsupported-uri",
        "uri: /srv/models",
        "store 'abs': '/srv/models' is an absolute path: write file:///srv/models",
    ),
    (
        "registry-with-a-tag",
        DEMO_STORES + "  - {name: reg, uri: 'oci://registry.example.com/models:v1'}\n",
        "store.unsupported-uri",
        "uri: 'oci://registry.example.com/models:v1'",
        "is not oci://host[:port]/repository (no tag, no digest)",
    ),
    (
        "outside-the-catalog",
        DEMO_STORES + "  - {name: up, uri: ../shared}\n",
        "store.unsupported-uri",
        "uri: ../shared",
        "has a '..' segment",
    ),
    (
        "uri-outside-every-store",
        "stores:\n  - {name: registry, uri: oci://registry.example.com/models, default: true}\n",
        "artifact.outside-stores",
        "uri: artifacts/sha256/41/",
        "lies in none of the catalog's stores (registry (oci://registry.example.com/models))",
    ),
]


@pytest.mark.parametrize(
    ("stores", "code", "where", "words"), [c[1:] for c in STORE_CASES], ids=[c[0] for c in STORE_CASES]
)
def test_stores_are_validated(cli, tmp_path: Path, stores: str, code: str, where: str, words: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(_with_stores(stores))
    problem = reported_problem(cli, path, code)
    assert problem["line"] == line_of(path.read_text(), where), problem
    assert words in problem["message"] and problem["hint"]


def test_uris_are_checked_against_declared_stores_only(cli, tmp_path: Path) -> None:
    """Without `stores:` a URI anywhere is accepted (a catalog from before stores stays valid);
    with them, an oci:// URI lies in the store of its repository."""
    path = tmp_path / "models.yaml"
    path.write_text(_with_stores(""))
    with_demo_keys(tmp_path)
    assert cli("validate", path).exit_code == 0
    oci = "oci://registry.example.com/models/fraud@sha256:" + "ab" * 32
    text = DEMO.read_text().replace(
        "uri: artifacts/sha256/41/412b0897cc2f4d2eea07805f549afcb562958eb448123ee068a2372abe2218b3", f"uri: {oci}"
    )
    path.write_text(text)
    assert reported_problem(cli, path, "artifact.outside-stores")["path"].endswith(".artifact.uri")
    declare_store(path, "registry", "oci://registry.example.com/models/fraud")
    result = cli("validate", path, "--format", "json")
    assert [p["code"] for p in json.loads(result.stdout)["problems"]] == []


def test_validate_warns_when_git_ignores_a_store(cli, workspace: Path) -> None:
    catalog = workspace / "models.yaml"
    quiet = cli("validate", catalog, "--format", "json")  # outside a git repository: nothing said
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["problems"] == []

    _git(workspace, "init", "-q")
    (workspace / ".gitignore").write_text(".modelcat/\nartifacts/\n")
    result = cli("validate", catalog, "--format", "json")
    assert result.exit_code == 0, result.output  # a warning, not an error
    (problem,) = json.loads(result.stdout)["problems"]
    assert (problem["severity"], problem["code"], problem["path"]) == (
        "warning",
        "store.git-ignored",
        "stores[artifacts].uri",
    )
    assert problem["line"] == line_of(catalog.read_text(), "uri: artifacts #")
    assert "is ignored by git (.gitignore:2: artifacts/)" in problem["message"]

    # a catalog without stores:, whose artifact was registered into the ignored .modelcat/store
    (workspace / ".gitignore").write_text(".modelcat/\n")
    text = catalog.read_text().replace(DEMO_STORES, "")
    hidden = ".modelcat/store/sha256/41/412b0897cc2f4d2eea07805f549afcb562958eb448123ee068a2372abe2218b3"
    catalog.write_text(text.replace(f"uri: artifacts/{hidden.removeprefix('.modelcat/store/')}", f"uri: {hidden}"))
    result = cli("validate", catalog, "--format", "json")
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["code"] == "artifact.git-ignored" and problem["line"] == line_of(catalog.read_text(), hidden)
    text_output = cli("validate", catalog).output
    assert (
        f"warning: models[fraud-scorer].versions[1.2.0].artifact.uri: {hidden} is ignored by git (.gitignore:1"
        in text_output
    )


def test_init_writes_stores_and_ci_that_triggers_on_them(cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert cli("init", repo).exit_code == 0
    catalog = yaml.safe_load((repo / "models.yaml").read_text())
    assert catalog["stores"] == [{"name": "artifacts", "uri": "artifacts", "default": True}]
    github = yaml.safe_load((repo / ".github" / "workflows" / "modelcat.yml").read_text())
    triggers = github[True]  # YAML 1.1 reads the key `on` as true
    assert "artifacts/**" in triggers["pull_request"]["paths"] and "artifacts/**" in triggers["push"]["paths"]
    gitlab = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert "artifacts/**/*" in gitlab["modelcat-review"]["rules"][0]["changes"]
    assert "artifacts/**/*" in gitlab["modelcat-apply"]["rules"][0]["changes"]
    _git(repo, "init", "-q")
    (uri,) = [v["artifact"]["uri"] for m in catalog["models"] for v in m["versions"]]
    assert _git(repo, "check-ignore", uri, "artifacts") == ""  # the store is committed
    assert _git(repo, "check-ignore", "artifacts/.staging/x").strip() == "artifacts/.staging/x"
    assert cli("validate", repo / "models.yaml", "--format", "json").exit_code == 0
