"""`modelcat fetch`: the init container's verified fetch over HTTP and from a mounted path."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from catalog.artifacts.fetch import fetch_artifact
from catalog.artifacts.hashing import Hashed, manifest_digest
from catalog.errors import ArtifactTooLarge, DigestMismatch, StoreError
from tests.helpers import ROOT

ARTIFACT = next((ROOT / "artifacts" / "sha256" / "fb").iterdir())
DIGEST = f"sha256:{ARTIFACT.name}"
SIZE = ARTIFACT.stat().st_size


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback HTTP server for the repository's files, recording each request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(ROOT), **kwargs)

        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            super().do_GET()

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for the loop's next poll: 0.05 s rather than the default 0.5 s
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_fetch_verifies_and_sends_the_token_from_the_environment(cli, server, tmp_path, monkeypatch) -> None:
    base, seen = server
    url = f"{base}/{ARTIFACT.relative_to(ROOT).as_posix()}"
    out = tmp_path / "models" / "artifact"
    monkeypatch.setenv("MODELCAT_FETCH_TOKEN", "s3cr3t-t0ken")
    result = cli("fetch", url, "--digest", DIGEST, "--size", SIZE, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == ARTIFACT.read_bytes()
    assert seen[-1].get("Authorization") == "Bearer s3cr3t-t0ken"
    assert "s3cr3t" not in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["artifact"]  # no staging left behind


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"digest": "sha256:" + "0" * 64}, DigestMismatch),
        ({"size": SIZE - 1}, ArtifactTooLarge),
        ({"path": "artifacts/sha256/fb/missing"}, StoreError),
    ],
    ids=["wrong-digest", "too-big", "missing"],
)
def test_http_fetch_refuses_other_bytes_and_leaves_nothing(server, tmp_path, change, error) -> None:
    base, _ = server
    out = tmp_path / "artifact"
    out.write_bytes(b"an earlier attempt")
    url = f"{base}/{change.get('path', ARTIFACT.relative_to(ROOT).as_posix())}"
    with pytest.raises(error):
        fetch_artifact(url, change.get("digest", DIGEST), change.get("size", SIZE), out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_mounted_file_and_folder_are_copied_while_hashed(tmp_path, cli) -> None:
    result = cli("fetch", ARTIFACT, "--digest", DIGEST, "--size", SIZE, "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a").read_bytes() == ARTIFACT.read_bytes()

    folder = tmp_path / "claim" / "multi"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"graph")
    (folder / "weights.bin").write_bytes(b"w" * 100)
    files = [
        (p.name, Hashed("sha256:" + hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size))
        for p in sorted(folder.iterdir())
    ]
    digest = manifest_digest(files)
    hashed = fetch_artifact(str(folder), digest, 105, tmp_path / "b")
    assert hashed.digest == digest and (tmp_path / "b" / "weights.bin").read_bytes() == b"w" * 100
    (folder / "weights.bin").write_bytes(b"x" * 100)
    with pytest.raises(DigestMismatch):
        fetch_artifact(str(folder), digest, 105, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_fetch_refuses_other_schemes(cli, tmp_path) -> None:
    result = cli("fetch", "s3://bucket/key", "--digest", DIGEST, "--size", SIZE, "--out", tmp_path / "x")
    assert result.exit_code == 1 and "http(s):// URL, an oci:// URI or a local path" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("external", [False, True], ids=["single-file", "external-data"])
def test_oci_fetch_pulls_by_digest_into_place(registry, make_model, tmp_path, cli, external) -> None:
    from catalog.artifacts.staging import stage_artifact
    from catalog.artifacts.stores.oci import OciStore

    url, _ = registry
    store = OciStore(f"oci://{url.removeprefix('http://')}/modelcat/fetch-{int(external)}", tmp_path / "push-cache")
    source = make_model(external=external)
    staged = stage_artifact(source, store.staging_dir(), limit=1 << 30)
    uri = store.put(staged)
    out = tmp_path / "pod" / "models" / "artifact"
    result = cli("fetch", uri, "--digest", staged.digest, "--size", staged.size, "--out", out)
    assert result.exit_code == 0, result.output
    if external:
        assert sorted(p.name for p in out.iterdir()) == sorted(name for name, _ in staged.files)
    else:
        assert out.is_file() and out.read_bytes() == source.read_bytes()
    wrong = cli("fetch", uri, "--digest", "sha256:" + "1" * 64, "--size", staged.size, "--out", out)
    assert wrong.exit_code == 1 and not out.exists()


def test_a_store_that_cannot_be_reached_is_an_environment_error(cli, tmp_path) -> None:
    """Exit 2, like a missing file: nothing is known about the artifact, so it is no finding (1)."""
    from tests.registry import free_port

    port = free_port()  # nothing listens there: the connection is refused
    for source in (f"http://127.0.0.1:{port}/model.onnx", f"oci://127.0.0.1:{port}/modelcat/m@sha256:{'a' * 64}"):
        result = cli("fetch", source, "--digest", DIGEST, "--size", SIZE, "--out", tmp_path / "out", "--format", "json")
        assert result.exit_code == 2, (source, result.output)
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "store_unreachable", error
        assert not (tmp_path / "out").exists()


def test_a_store_that_answers_not_found_is_still_a_finding(cli, server, tmp_path) -> None:
    base, _ = server
    result = cli("fetch", f"{base}/artifacts/sha256/fb/missing", "--digest", DIGEST, "--size", SIZE,
                 "--out", tmp_path / "out", "--format", "json")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["code"] == "store_error"
