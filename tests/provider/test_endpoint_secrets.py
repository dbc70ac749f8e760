"""An environment's secrets reach its local replicas as private files, through the embedded Terraform
and the provider, with a fake Vault (tests/vault_server.py): read when replicas start, recorded by
path and version only, rotated one replica at a time under load, and failing closed.

One project is applied once and shared by the tests, in order (as tests/deploy's lifecycle tests).
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog.provider.processes import is_alive
from catalog.provider.runstate import EndpointRecord
from tests.deploy.project import ClientLoop, Project, output
from tests.helpers import with_secrets, with_vault_role
from tests.vault_server import FakeVault

pytestmark = pytest.mark.slow

TOKEN_PATH, STORE_PATH = "checkout/feature-token", "stores/artifacts"
VALUE = "s3cr3t-feature-token-7f1c9a"  # the value no file, plan, state or log may hold
ROTATED = "r0tated-feature-token-02b8e4"
STORE = {"access_key": "AKIAEXAMPLEKEY01", "secret_key": "store-secret-key-9d2f"}
SECRETS = f"""\
    secrets:
      - name: feature-token
        vault: vault://secret/{TOKEN_PATH}
        field: token
        secrets_manager: checkout/feature-token
      - name: store-credentials
        vault: vault://secret/{STORE_PATH}
        secrets_manager: stores/artifacts
"""


def secret_catalog(text: str, secrets: str = SECRETS) -> str:
    """The project's catalog with ``secrets`` in production, and the Vault role its clusters log in with."""
    return with_vault_role(with_secrets(text, "production", secrets))


@pytest.fixture(scope="module")
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server, pytest.MonkeyPatch.context() as env:
        for key, value in server.env().items():
            env.setenv(key, value)
        server.write_secret(TOKEN_PATH, {"token": VALUE})
        server.write_secret(STORE_PATH, STORE)
        yield server


@pytest.fixture(scope="module")
def project(vault: FakeVault, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project.create(tmp_path_factory.mktemp("secrets"))
    try:
        project.catalog.write_text(secret_catalog(project.catalog.read_text()), encoding="utf-8")
        project.ok("validate")
        project.first_apply = project.run("apply", "--auto-approve")
        yield project
    finally:
        project.cleanup()


def secrets_root(project: Project) -> Path:
    return project.run_root / "production-local" / "secrets"


def records(project: Project) -> list[EndpointRecord]:
    return [r for r in project.endpoint_records() if not r.deposed]


def held(project: Project) -> dict[str, dict[str, str]]:
    """Per replica url: its secrets' files as the replica reads them (through its MODELCAT_SECRETS_DIR)."""
    found = {}
    for record in records(project):
        for instance in record.instances:
            environ = Path(f"/proc/{instance.pid}/environ").read_bytes().split(b"\0")
            folder = Path(instance.secrets_dir)
            assert f"MODELCAT_SECRETS_DIR={folder}".encode() in environ
            assert not any(v.startswith(b"VAULT_TOKEN=") for v in environ), "a replica holds the Vault token"
            found[instance.url] = {p.name: p.read_text() for p in folder.iterdir()}
    return found


def test_apply_hands_each_replica_its_secrets_as_files_only_it_can_read(project: Project) -> None:
    assert project.first_apply is not None and project.first_apply.returncode == 0, output(project.first_apply)
    assert len(records(project)) == 2
    for record in records(project):
        assert record.secrets == {
            "feature-token": {"vault": f"vault://secret/{TOKEN_PATH}", "version": 1, "field": "token"},
            "store-credentials": {"vault": f"vault://secret/{STORE_PATH}", "version": 1},
        }
        folders = [Path(i.secrets_dir) for i in record.instances]
        assert len(set(folders)) == len(record.instances) == 2  # a folder per replica
        for folder in folders:
            assert folder.parent == secrets_root(project)
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
            assert sorted(p.name for p in folder.iterdir()) == ["feature-token", "store-credentials"]
            assert all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in folder.iterdir())
    for files in held(project).values():
        assert files["feature-token"] == VALUE
        assert files["store-credentials"] == '{"access_key": "AKIAEXAMPLEKEY01", "secret_key": "store-secret-key-9d2f"}'


def _written_down(project: Project, out: Path) -> dict[str, bytes]:
    """Every file modelcat and Terraform wrote (synthesized stacks, plans, states, records, logs),
    but the replicas' secrets folders, which are where the values belong; a saved plan's members too."""
    files = {}
    for root in (project.dir / ".modelcat", out):
        for path in root.rglob("*"):
            if not path.is_file() or (secrets_root(project)) in path.parents:
                continue
            data = path.read_bytes()
            files[str(path)] = data
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    for name in archive.namelist():
                        files[f"{path}!{name}"] = archive.read(name)
    return files


def test_no_synthesized_file_plan_state_or_log_holds_a_secret_value_or_the_token(
    project: Project, vault: FakeVault, tmp_path: Path
) -> None:
    out = tmp_path / "synth"
    out.mkdir()
    for target in ("local", "kubernetes", "kserve", "sagemaker"):
        project.ok("synth", "--target", target, "--out", str(out / target))
    vault.write_secret(TOKEN_PATH, {"token": VALUE})  # a new version: the plan has changes to show
    plan = project.run("plan", "--out", str(tmp_path / "saved.tfplan"), "--format", "json")
    assert plan.returncode in (0, 2), output(plan)
    shown = project.run("plan", "--format", "json")
    files = _written_down(project, out)
    states = [f for f in files if f.endswith("terraform.tfstate")]
    assert states and any("/logs/" in f for f in files) and any(f.endswith("cdk.tf.json") for f in files)
    files["plan stdout"] = (plan.stdout + plan.stderr + shown.stdout + shown.stderr).encode()
    files["saved plan"] = (tmp_path / "saved.tfplan").read_bytes()
    with zipfile.ZipFile(tmp_path / "saved.tfplan") as archive:
        for name in archive.namelist():
            files[f"saved plan!{name}"] = archive.read(name)
    leaks = [
        (name, what)
        for name, data in files.items()
        for what, needle in (
            ("feature token", VALUE),
            ("store key", STORE["secret_key"]),
            ("vault token", vault.token),
        )
        if needle.encode() in data
    ]
    assert leaks == []
    state = next(files[f] for f in states if "production-local" in f)
    assert b"vault://secret/checkout/feature-token" in state and b'"secret_versions"' in state


def test_a_new_kv_version_restarts_the_replicas_one_at_a_time_without_a_failed_request(
    project: Project, vault: FakeVault
) -> None:
    before = {r.name: [(i.url, i.ident) for i in r.instances] for r in records(project)}
    router = project.route()
    version = vault.write_secret(TOKEN_PATH, {"token": ROTATED})
    [stack] = project.json("plan", codes=(0, 2))["stacks"]
    actions = {c["subject"]: c["action"] for c in stack["changes"]}
    assert {s: a for s, a in actions.items() if "endpoint" in s} == {
        "checkout: fraud-scorer 1.3.0 endpoint": "update",
        "checkout: fraud-scorer 1.4.0 endpoint": "update",
    }, stack
    details = [c["detail"] for c in stack["changes"] if "endpoint" in c["subject"]]
    assert (
        details
        == ["new secret versions (held: feature-token v1, store-credentials v1): replicas restart one at a time"] * 2
    )

    apply_under_load(project)

    after = {r.name: [(i.url, i.ident) for i in r.instances] for r in records(project)}
    for name, old in before.items():
        assert sorted(u for u, _ in after[name]) == sorted(u for u, _ in old), "a replica came back on another port"
        assert not any(is_alive(ident) for _, ident in old), "a replica with the old secret still runs"
    for record in records(project):
        assert record.secrets["feature-token"]["version"] == version
    assert {files["feature-token"] for files in held(project).values()} == {ROTATED}
    assert sorted(p.name for p in (secrets_root(project)).iterdir()) == sorted(
        Path(i.secrets_dir).name for r in records(project) for i in r.instances
    ), "an old replica's secrets folder was left behind"
    assert project.route().ident == router.ident
    [stack] = project.json("plan")["stacks"]
    assert stack["changes"] == []


def test_a_pinned_version_changed_in_the_catalog_restarts_the_replicas_with_it(project: Project) -> None:
    text = project.catalog.read_text()
    project.catalog.write_text(text.replace("        field: token\n", "        field: token\n        version: 1\n", 1))
    project.ok("validate")
    router = project.route()
    apply_under_load(project)
    assert project.route().ident == router.ident
    assert {files["feature-token"] for files in held(project).values()} == {VALUE}
    assert {r.secrets["feature-token"]["version"] for r in records(project)} == {1}


def test_a_rotation_that_fails_halfway_is_planned_again_and_finishes(project: Project, vault: FakeVault) -> None:
    """A replica that cannot start during the restart: the apply fails, the endpoint keeps the
    versions it held on record, so the next plan restarts it again (and heals the missing replica)."""
    rotated = {"access_key": "AKIAEXAMPLEKEY02", "secret_key": "store-secret-key-rotated"}
    version = vault.write_secret(STORE_PATH, rotated)
    [record] = [r for r in records(project) if r.version == "1.3.0"]
    artifact = Path(record.artifact)
    aside = artifact.with_name(artifact.name + ".aside")
    artifact.rename(aside)  # a replica of 1.3.0 cannot start: its bytes are gone
    try:
        failed = project.run("apply", "--auto-approve")
    finally:
        aside.rename(artifact)
    assert failed.returncode != 0, output(failed)
    [record] = [r for r in records(project) if r.version == "1.3.0"]
    assert record.secrets["store-credentials"]["version"] == version - 1
    [stack] = project.json("plan", codes=(0, 2))["stacks"]
    assert {c["subject"]: c["action"] for c in stack["changes"]}.get(
        "checkout: fraud-scorer 1.3.0 endpoint"
    ) == "update"
    project.ok("apply", "--auto-approve")
    assert {r.secrets["store-credentials"]["version"] for r in records(project)} == {version}
    assert len(held(project)) == 4
    assert {files["store-credentials"] for files in held(project).values()} == {
        '{"access_key": "AKIAEXAMPLEKEY02", "secret_key": "store-secret-key-rotated"}'
    }


def apply_under_load(project: Project) -> None:
    """``modelcat apply`` while clients keep sending through the router: it succeeds, none fails."""
    with ClientLoop(project.route().url) as loop:
        loop.wait_for(50)
        applied = project.run("apply", "--auto-approve")
        loop.wait_for(100)
    assert applied.returncode == 0, output(applied)
    assert not loop.failures, loop.failures[:10]


def _fails_closed(project: Project, *words: str) -> Any:
    applied = project.run("apply", "--auto-approve")
    assert applied.returncode != 0, output(applied)
    for word in words:
        assert word in applied.stdout + applied.stderr, output(applied)
    return applied


def test_a_secret_path_that_does_not_exist_fails_the_create_naming_it_and_nothing_serves(
    vault: FakeVault, tmp_path: Path
) -> None:
    project = Project.create(tmp_path / "missing")
    try:
        text = secret_catalog(project.catalog.read_text(), SECRETS.replace(STORE_PATH, "stores/nowhere"))
        project.catalog.write_text(text)
        applied = _fails_closed(project, "vault://secret/stores/nowhere")
        assert vault.token not in applied.stdout + applied.stderr
        assert project.serving() == [], "a replica or router runs without its secrets"
        assert not list((secrets_root(project)).glob("*/*")) if (secrets_root(project)).exists() else True
    finally:
        project.cleanup()


@pytest.mark.parametrize("fault", ["sealed", "down"])
def test_vault_sealed_or_down_at_apply_fails_closed_with_the_reason(
    vault: FakeVault, tmp_path: Path, fault: str
) -> None:
    project = Project.create(tmp_path / fault)
    try:
        project.catalog.write_text(secret_catalog(project.catalog.read_text()))
        if fault == "sealed":
            vault.seal()
        else:
            vault.down()
        applied = _fails_closed(project, vault.addr, "sealed" if fault == "sealed" else "")
        assert vault.token not in applied.stdout + applied.stderr
        assert project.serving() == []
    finally:
        vault.unseal()
        if fault == "down":
            vault.up()
        project.cleanup()


def test_a_token_that_expires_mid_apply_fails_closed_naming_the_path_and_a_fresh_token_finishes(
    vault: FakeVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production's two endpoints read two secrets each when created (four reads, in whichever order
    Terraform creates them); the token is refused from the fourth read on. So one endpoint has read
    both its secrets, the other its first only: it is refused its second, and nothing of it starts
    or is written down. A fresh token, and the next apply creates it and the router."""
    project = Project.create(tmp_path / "expiring")
    try:
        project.catalog.write_text(secret_catalog(project.catalog.read_text()))
        token = vault.create_token()
        vault.expire_after(token, requests=3)
        monkeypatch.setenv("VAULT_TOKEN", token)
        before = len(vault.requests)
        applied = _fails_closed(project, f"vault://secret/{STORE_PATH}")
        reads = sorted(path for _, path in vault.requests[before:])
        assert reads == sorted([f"secret/data/{TOKEN_PATH}", f"secret/data/{STORE_PATH}"] * 2)  # the 4th refused
        said = " ".join((applied.stdout + applied.stderr).split())  # as Terraform wraps it: words
        assert token not in said and vault.token not in said
        assert (
            f"secret 'store-credentials' (vault://secret/{STORE_PATH}): secret/data/{STORE_PATH}: permission denied"
            in said
        )
        assert "hint: log in again (a fresh VAULT_TOKEN)" in said, output(applied)
        [started] = records(project)
        assert len(started.instances) == 2 and sorted(started.secrets) == ["feature-token", "store-credentials"]
        refused = next(v for v in ("1.3.0", "1.4.0") if v != started.version)
        assert f"modelcat_endpoint checkout.fraud-scorer.{refused}: cannot start its replicas" in said
        replicas = [argv for _, argv in project.serving() if "catalog.cli.replica_command" in argv]
        assert len(replicas) == 2 and all(started.version in argv for argv in replicas), replicas
        assert sorted(p.name for p in secrets_root(project).iterdir()) == sorted(
            Path(i.secrets_dir).name for i in started.instances
        ), "a secrets folder of the endpoint refused its secrets was written"

        monkeypatch.setenv("VAULT_TOKEN", vault.create_token())
        project.ok("apply", "--auto-approve")
        assert sorted(r.version for r in records(project)) == ["1.3.0", "1.4.0"]
        assert len(held(project)) == 4
        with ClientLoop(project.route().url) as loop:
            loop.wait_for(20)
        assert not loop.failures, loop.failures[:10]
    finally:
        project.cleanup()
