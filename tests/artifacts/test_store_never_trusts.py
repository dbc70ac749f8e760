"""The store never trusts what is already there; staging never piles up; a full disk is an environment error."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import declare_store, register, sha256_file
from tests.onnx_models import dense_model, save, save_with_external_data

STORE = Path("artifacts")  # the demo catalog's default store


def _stored(workspace: Path, result_stdout: str) -> Path:
    """The stored object named on register's "stored" line."""
    line = next(line for line in result_stdout.splitlines() if line.strip().startswith("stored "))
    return workspace / line.split("stored ", 1)[1].strip()


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def _damage(stored: Path, how: str) -> None:
    victim = _files(stored)[-1]  # the model file, or weights.bin of a multi-file artifact
    os.chmod(victim, 0o644)
    data = bytearray(victim.read_bytes())
    if how == "truncated":
        victim.write_bytes(bytes(data[: len(data) // 2]))
    else:  # the same size, one byte flipped: only the hash can tell
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))


def _artifact(workspace: Path, external: bool, seed: int) -> Path:
    model = dense_model(seed=seed)
    if external:
        return save_with_external_data(model, workspace / f"source-{seed}")
    return save(model, workspace / f"source-{seed}" / "model.onnx")


@pytest.mark.parametrize("how", ["truncated", "same-size"])
@pytest.mark.parametrize("external", [False, True], ids=["single-file", "multi-file"])
def test_store_never_trusts_what_is_already_there(cli, workspace: Path, external: bool, how: str):
    """A damaged object at the digest path is checked and replaced by register; verify then passes."""
    artifact = _artifact(workspace, external, seed=41)
    pristine = (workspace / "models.yaml").read_bytes()
    first = register(cli, workspace, artifact)
    assert first.exit_code == 0, first.output
    stored = _stored(workspace, first.stdout)
    good = {p.relative_to(stored).as_posix(): sha256_file(p) for p in _files(stored)}
    _damage(stored, how)
    (workspace / "models.yaml").write_bytes(pristine)  # as if the first register's catalog change was dropped

    again = register(cli, workspace, artifact)
    assert again.exit_code == 0, again.output
    assert {p.relative_to(stored).as_posix(): sha256_file(p) for p in _files(stored)} == good
    verified = cli("verify", "--model", "fraud-scorer", "--catalog", workspace / "models.yaml")
    assert verified.exit_code == 0, verified.output


def test_an_intact_object_is_kept_as_it_is(cli, workspace: Path):
    artifact = _artifact(workspace, False, seed=42)
    pristine = (workspace / "models.yaml").read_bytes()
    stored = _stored(workspace, register(cli, workspace, artifact).stdout)
    inode = stored.stat().st_ino
    (workspace / "models.yaml").write_bytes(pristine)
    assert register(cli, workspace, artifact).exit_code == 0
    assert stored.stat().st_ino == inode


@pytest.mark.parametrize("external", [False, True], ids=["single-file", "multi-file"])
def test_stored_blobs_are_read_only(cli, workspace: Path, external: bool):
    result = register(cli, workspace, _artifact(workspace, external, seed=43))
    assert result.exit_code == 0, result.output
    stored = _stored(workspace, result.stdout)
    assert stored.is_dir() == external
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in _files(stored)}
    assert modes and set(modes.values()) == {0o444}, modes


# --- staging left by a killed register is removed by the next one, and only that ---

_HOLD_STAGING = """
import sys
from pathlib import Path
from catalog.artifacts.stores.local import LocalStore
store = LocalStore(Path(sys.argv[1]), Path(sys.argv[2]))
folder = store.staging_dir()
(folder / "model.onnx").write_bytes(b"x" * 4096)  # a partial copy
print(folder, flush=True)
sys.stdin.read()  # hold it until the test says (or kills this process)
store.release_staging(folder)
"""


def _staging_holder(workspace: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process that holds a staging folder of the workspace's store, and that folder."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_STAGING, str(STORE), str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()  # waits for the event: the folder exists and is locked
    assert line, "the staging holder did not start"
    return proc, Path(line)


@pytest.mark.slow
def test_register_removes_staging_left_by_a_killed_register(cli, workspace: Path):
    killed, stale = _staging_holder(workspace)
    killed.kill()
    killed.wait(timeout=60)
    alive, in_progress = _staging_holder(workspace)
    legacy = workspace / STORE / ".staging" / "tmpw1q2e3r4"  # left by a modelcat without staging locks
    legacy.mkdir()
    (legacy / "model.onnx").write_bytes(b"y" * 4096)
    try:
        result = register(cli, workspace, _artifact(workspace, False, seed=44))
        assert result.exit_code == 0, result.output
        assert not stale.exists() and not Path(f"{stale}.lock").exists()
        assert not legacy.exists()
        assert (in_progress / "model.onnx").exists()  # another register's staging in progress is left alone
    finally:
        alive.communicate("", timeout=60)
    assert alive.returncode == 0
    assert list((workspace / STORE / ".staging").iterdir()) == []


# --- a full disk or a file-size limit: exit 2, "no space left ...; nothing was changed" ---


def _state(workspace: Path) -> tuple[str, dict[str, str]]:
    """The catalog's hash and every file of the store with its hash."""
    store = workspace / STORE
    files = [p for p in store.rglob("*") if p.is_file()] if store.exists() else []
    return sha256_file(workspace / "models.yaml"), {str(p.relative_to(store)): sha256_file(p) for p in files}


def _no_space(*args: object, **kwargs: object):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _inject_in_staging_copy(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    from catalog.artifacts import staging

    real = staging.hash_stream

    def copy_then_fail(source, *, sink=None, **kwargs):
        if sink is not None:
            sink.write(b"partial")
            _no_space()
        return real(source, sink=sink, **kwargs)

    monkeypatch.setattr(staging, "hash_stream", copy_then_fail)


def _inject_in_store_rename(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    real = os.replace
    objects = str(workspace / STORE / "sha256")

    def rename(src, dst, **kwargs):  # rename(2) fails with ENOSPC when the directory cannot grow
        if str(dst).startswith(objects):
            _no_space()
        return real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", rename)


def _inject_in_catalog_write(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    real = os.fsync

    def fsync(fd):  # fsync(2) reports ENOSPC when delayed allocation finds no room
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(workspace / ".models.yaml.")):
            _no_space()
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize(
    ("inject", "where"),
    [
        (_inject_in_staging_copy, "artifacts/.staging/"),
        (_inject_in_store_rename, "artifacts/sha256/"),
        (_inject_in_catalog_write, "models.yaml"),
    ],
    ids=["staging-copy", "store-put", "catalog-write"],
)
def test_no_space_left_is_an_environment_error_and_nothing_changes(
    cli, workspace: Path, monkeypatch: pytest.MonkeyPatch, inject: Callable[..., None], where: str
):
    artifact = _artifact(workspace, False, seed=45)
    (workspace / STORE).mkdir(parents=True, exist_ok=True)
    before = _state(workspace)
    inject(monkeypatch, workspace)
    result = register(cli, workspace, artifact)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.stderr
    assert "error: no space left on device while writing " in result.stderr
    assert result.stderr.rstrip().endswith("; nothing was changed")
    assert where in result.stderr
    catalog, objects = _state(workspace)
    assert catalog == before[0]
    if where != "models.yaml":  # (after a failed catalog write the stored object stays: content-addressed)
        assert objects == before[1]
    assert [p.name for p in workspace.iterdir() if p.name.startswith(".models.yaml")] == []
    assert list((workspace / STORE / ".staging").iterdir()) == []


def test_no_space_left_in_bind_is_an_environment_error(cli, demo_copy: Path, monkeypatch: pytest.MonkeyPatch):
    _inject_in_catalog_write(monkeypatch, demo_copy.parent)
    before = demo_copy.read_bytes()
    result = cli("bind", "checkout", "fraud-scorer", "--route", "1.3.0=100", "--catalog", demo_copy, "--format", "json")
    assert result.exit_code == 2
    assert f"no space left on device while writing {demo_copy}; nothing was changed" in result.stdout
    assert demo_copy.read_bytes() == before
    assert sorted(p.name for p in demo_copy.parent.iterdir()) == ["keys", "models.yaml"]  # the demo copy, no leftovers


def test_no_space_left_in_the_oci_cache_is_an_environment_error(
    registry: tuple[str, Path], tmp_path: Path, make_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
):
    from catalog.artifacts.staging import stage_artifact
    from catalog.artifacts.stores import oci
    from catalog.errors import ModelcatError

    url, _ = registry
    store = oci.OciStore(f"oci://{url.removeprefix('http://')}/modelcat/no-space", tmp_path / "cache")
    staged = stage_artifact(make_model(external=True), store.staging_dir(), limit=1 << 30)
    digest, size = staged.digest, staged.size
    uri = store.put(staged)
    real = oci.hash_stream

    def download_then_fail(source, *, sink=None, **kwargs):
        if sink is not None:
            _no_space()
        return real(source, sink=sink, **kwargs)

    monkeypatch.setattr(oci, "hash_stream", download_then_fail)
    with pytest.raises(ModelcatError) as caught:
        store.fetch(uri, digest, size, 1 << 30)
    assert str(caught.value) == f"no space left on device while writing {store.cache}; nothing was changed"
    assert caught.value.exit_code == 2
    assert not any(p.is_file() for p in store.cache.rglob("*"))


def _limited(max_bytes: int) -> Callable[[], None]:
    def limit() -> None:  # in the child: a real EFBIG past max_bytes (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return limit


def _modelcat(*args: object, max_file_bytes: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=_limited(max_file_bytes),
    )


def test_file_size_limit_while_staging_is_an_environment_error(workspace: Path):
    artifact = save(dense_model(hidden=2000, seed=46), workspace / "big" / "model.onnx")  # ~136 kB
    catalog_bytes = (workspace / "models.yaml").stat().st_size
    limit = 64 * 1024
    assert catalog_bytes < limit < artifact.stat().st_size
    before = _state(workspace)
    proc = _modelcat(
        "register", "fraud-scorer", "--version", "1.5.0", "--artifact", artifact, "--trained-at", "2026-11-20",
        "--catalog", workspace / "models.yaml", max_file_bytes=limit,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "error: no space left on device while writing " in proc.stderr
    assert "(File too large); nothing was changed" in proc.stderr
    assert _state(workspace) == before
    assert list((workspace / STORE / ".staging").iterdir()) == []


def test_file_size_limit_while_writing_the_catalog_is_an_environment_error(demo_copy: Path):
    before = demo_copy.read_bytes()
    proc = _modelcat(
        "bind", "checkout", "fraud-scorer", "--route", "1.3.0=100", "--catalog", demo_copy, max_file_bytes=4096
    )
    assert proc.returncode == 2, proc.stderr
    assert f"no space left on device while writing {demo_copy} (File too large); nothing was changed" in proc.stderr
    assert demo_copy.read_bytes() == before
    assert sorted(p.name for p in demo_copy.parent.iterdir()) == ["keys", "models.yaml"]  # the demo copy, no leftovers


@pytest.fixture
def tiny_filesystem(tmp_path: Path):
    """A 64 KiB tmpfs, or a skip saying why none can be mounted here."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small real filesystem")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_full_real_filesystem_is_an_environment_error(cli, workspace: Path, tiny_filesystem: Path):
    artifact = save(dense_model(hidden=2000, seed=47), workspace / "big" / "model.onnx")  # ~136 kB
    declare_store(workspace / "models.yaml", "tiny", tiny_filesystem.relative_to(workspace).as_posix())
    before = sha256_file(workspace / "models.yaml")
    result = register(cli, workspace, artifact, "1.5.0", "--store", tiny_filesystem)
    assert result.exit_code == 2, result.output
    assert f"error: no space left on device while writing {tiny_filesystem}/.staging/" in result.stderr
    assert result.stderr.rstrip().endswith("/model.onnx; nothing was changed")
    assert sha256_file(workspace / "models.yaml") == before
    assert [p.name for p in tiny_filesystem.iterdir()] == [".staging"]
    assert list((tiny_filesystem / ".staging").iterdir()) == []
