"""OciStore against a real local registry: round trips, pinning, tampering, outages, bad URIs, limits."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from catalog.artifacts.staging import stage_artifact
from catalog.artifacts.stores.base import MAIN_FILE, StagedArtifact
from catalog.artifacts.stores.oci import ARTIFACT_TYPE, DATA_MEDIA_TYPE, MODEL_MEDIA_TYPE, OciStore
from catalog.errors import ArtifactTooLarge, DigestMismatch, StoreError
from tests.registry import free_port

pytestmark = pytest.mark.slow

LIMIT = 1 << 30
URI = re.compile(r"oci://127\.0\.0\.1:\d+/modelcat/[a-z0-9-]+@sha256:[0-9a-f]{64}")

_names = iter(range(10**6))


@pytest.fixture
def store(registry: tuple[str, Path], tmp_path: Path) -> OciStore:
    url, _ = registry
    return OciStore(f"oci://{url.removeprefix('http://')}/modelcat/test-{next(_names)}", tmp_path / "cache")


def stage(store: OciStore, source: Path) -> StagedArtifact:
    return stage_artifact(source, store.staging_dir(), limit=LIMIT)


def blob_file(storage: Path, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"


def flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def final_path(store: OciStore, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return store.cache / "sha256" / hexdigest[:2] / hexdigest


def manifest_of(uri: str) -> dict[str, Any]:
    """The manifest a URI pins, read straight from the registry."""
    repo, digest = uri.removeprefix("oci://").split("@")
    host, path = repo.split("/", 1)
    headers = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    response = requests.get(f"http://{host}/v2/{path}/manifests/{digest}", headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def requests_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every URL requests sends (the requests still go out)."""
    seen: list[str] = []
    send = HTTPAdapter.send

    def recording(self: HTTPAdapter, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        seen.append(f"{request.method} {request.url}")
        return send(self, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(HTTPAdapter, "send", recording)
    yield seen


def test_single_file_round_trip(store: OciStore, make_model: Callable[..., Path]) -> None:
    source = make_model()
    staged = stage(store, source)
    uri = store.put(staged)
    assert URI.fullmatch(uri), uri
    assert not staged.root.exists()
    fetched = store.fetch(uri, staged.digest, staged.size, LIMIT)
    assert fetched.digest == staged.digest and fetched.size == staged.size
    assert fetched.main == final_path(store, staged.digest) / MAIN_FILE
    assert fetched.main.read_bytes() == source.read_bytes()

    manifest = manifest_of(uri)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [MODEL_MEDIA_TYPE]
    assert manifest["annotations"]["dev.modelcat.artifact.digest"] == staged.digest
    assert json.loads(manifest["annotations"]["dev.modelcat.onnx.facts"])["producer"] == "modelcat-tests"


def test_external_data_round_trip(store: OciStore, make_model: Callable[..., Path]) -> None:
    source = make_model(external=True)
    staged = stage(store, source)
    assert not staged.single_file
    uri = store.put(staged)
    assert URI.fullmatch(uri), uri
    fetched = store.fetch(uri, staged.digest, staged.size, LIMIT)
    assert fetched.digest == staged.digest and fetched.size == staged.size
    assert fetched.main.read_bytes() == source.read_bytes()
    assert (fetched.main.parent / "weights.bin").read_bytes() == (source.parent / "weights.bin").read_bytes()
    assert sorted(p.name for p in fetched.main.parent.iterdir()) == ["model.onnx", "weights.bin"]


def test_layers_carry_media_types_and_titles(store: OciStore, make_model: Callable[..., Path]) -> None:
    staged = stage(store, make_model(external=True))
    uri = store.put(staged)
    body = manifest_of(uri)
    layers = [(layer["mediaType"], layer["annotations"]["org.opencontainers.image.title"]) for layer in body["layers"]]
    assert layers == [(MODEL_MEDIA_TYPE, "model.onnx"), (DATA_MEDIA_TYPE, "weights.bin")]
    assert body["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"


def test_same_artifact_twice_gives_the_same_uri(store: OciStore, make_model: Callable[..., Path]) -> None:
    source = make_model(external=True)
    assert store.put(stage(store, source)) == store.put(stage(store, source))


def test_cached_copy_is_rehashed_and_replaced_when_damaged(store: OciStore, make_model: Callable[..., Path]) -> None:
    staged = stage(store, make_model())
    digest, size = staged.digest, staged.size
    uri = store.put(staged)
    fetched = store.fetch(uri, digest, size, LIMIT)
    flip_byte(fetched.main, 10)
    again = store.fetch(uri, digest, size, LIMIT)
    assert again.digest == digest
    assert store.fetch(uri, digest, size, LIMIT).main == fetched.main


@pytest.mark.parametrize("external", [False, True])
def test_tampered_blob_is_refused_and_nothing_is_cached(
    store: OciStore, make_model: Callable[..., Path], registry: tuple[str, Path], external: bool
) -> None:
    _, storage = registry
    staged = stage(store, make_model(external=external))
    victim = dict(staged.files)["weights.bin" if external else MAIN_FILE].digest
    digest, size = staged.digest, staged.size
    uri = store.put(staged)
    flip_byte(blob_file(storage, victim), 20)
    with pytest.raises(DigestMismatch) as caught:
        store.fetch(uri, digest, size, LIMIT)
    assert victim in str(caught.value)
    assert not final_path(store, digest).exists()
    assert {p.name for p in store.cache.iterdir()} <= {".staging", "sha256"}
    assert not any(p.is_file() for p in store.cache.rglob("*"))  # no half-fetched folder left behind
    assert not list((store.cache / ".staging").iterdir())


def test_tampered_manifest_is_refused(
    store: OciStore, make_model: Callable[..., Path], registry: tuple[str, Path]
) -> None:
    _, storage = registry
    staged = stage(store, make_model())
    digest, size = staged.digest, staged.size
    uri = store.put(staged)
    manifest = blob_file(storage, uri.rsplit("@", 1)[1])
    manifest.write_bytes(manifest.read_bytes().replace(b"modelcat-tests", b"modelcat-TESTS"))
    with pytest.raises(DigestMismatch, match=r"\(manifest\)"):
        store.fetch(uri, digest, size, LIMIT)
    assert not final_path(store, digest).exists()


def test_unreachable_registry_fails_fast(tmp_path: Path, make_model: Callable[..., Path]) -> None:
    store = OciStore(f"oci://127.0.0.1:{free_port()}/modelcat/nothing-here", tmp_path / "cache")
    staged = stage(store, make_model())
    start = time.monotonic()
    with pytest.raises(StoreError, match="registry unreachable at http://127.0.0.1:"):
        store.put(staged)
    assert time.monotonic() - start < 60  # oras alone retries for ~131 s
    assert not staged.root.exists()
    start = time.monotonic()
    uri = f"{store.reference}@sha256:{'a' * 64}"
    with pytest.raises(StoreError, match="registry unreachable"):
        store.fetch(uri, staged.digest, staged.size, LIMIT)
    assert time.monotonic() - start < 60  # oras alone retries for ~131 s


class _BrokenRegistry(BaseHTTPRequestHandler):
    """Answers GET /v2/ like a registry, then HTTP 500 to everything (oras alone would retry ~131 s)."""

    def _answer(self) -> None:
        self.send_response(200 if self.path == "/v2/" else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_registry_failing_mid_push_fails_fast(tmp_path: Path, make_model: Callable[..., Path]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = OciStore(f"oci://127.0.0.1:{server.server_address[1]}/modelcat/broken", tmp_path / "cache")
        staged = stage(store, make_model())
        start = time.monotonic()
        with pytest.raises(StoreError, match="HTTP 500"):
            store.put(staged)
        assert time.monotonic() - start < 60  # oras alone retries for ~131 s
        assert not staged.root.exists()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "uri",
    [
        "oci://127.0.0.1:5000/modelcat/model:latest",
        "oci://127.0.0.1:5000/modelcat/model@sha256:abc123",
        "oci://127.0.0.1:5000/modelcat/model@sha256:" + "A" * 64,
        "oci://127.0.0.1:5000/modelcat/model@sha512:" + "a" * 128,
        "oci://127.0.0.1:5000/modelcat/model",
        "oci://127.0.0.1:5000/@sha256:" + "a" * 64,
        "http://127.0.0.1:5000/modelcat/model@sha256:" + "a" * 64,
        "oci://127.0.0.1:5000/modelcat/model:v1@sha256:" + "a" * 64,
        "oci://127.0.0.1:5000/../model@sha256:" + "a" * 64,
        "models/model.onnx",
    ],
)
def test_malformed_uri_is_refused_without_a_request(tmp_path: Path, requests_seen: list[str], uri: str) -> None:
    store = OciStore("oci://127.0.0.1:5000/modelcat/model", tmp_path / "cache")
    with pytest.raises(StoreError) as caught:
        store.fetch(uri, "sha256:" + "a" * 64, 1, LIMIT)
    assert uri in str(caught.value)
    assert requests_seen == []


@pytest.mark.parametrize(
    "reference",
    [
        "oci://127.0.0.1:5000/modelcat/model:latest",
        "oci://127.0.0.1:5000/modelcat/model@sha256:" + "a" * 64,
        "oci://127.0.0.1:5000",
        "oci://127.0.0.1:5000/",
        "oci://127.0.0.1:99999/modelcat",
        "oci://127.0.0.1:5000/Modelcat",
        "https://127.0.0.1:5000/modelcat",
        "oci:///modelcat",
    ],
)
def test_malformed_reference_is_refused(tmp_path: Path, reference: str) -> None:
    with pytest.raises(StoreError):
        OciStore(reference, tmp_path / "cache")


def test_loopback_is_plain_http_and_others_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELCAT_OCI_INSECURE", raising=False)
    assert OciStore("oci://localhost:5000/m", tmp_path).repo.base == "http://localhost:5000"
    assert OciStore("oci://127.0.0.2/m", tmp_path).repo.base == "http://127.0.0.2"
    assert OciStore("oci://[::1]:5000/m", tmp_path).repo.base == "http://[::1]:5000"
    assert OciStore("oci://registry.example.com/team/m", tmp_path).repo.base == "https://registry.example.com"
    monkeypatch.setenv("MODELCAT_OCI_INSECURE", "1")
    assert OciStore("oci://registry.internal:5000/m", tmp_path).repo.base == "http://registry.internal:5000"


def test_limit_is_checked_before_downloading(
    store: OciStore, make_model: Callable[..., Path], requests_seen: list[str]
) -> None:
    staged = stage(store, make_model(external=True))
    digest, size = staged.digest, staged.size
    uri = store.put(staged)
    requests_seen.clear()
    with pytest.raises(ArtifactTooLarge):
        store.fetch(uri, digest, size, size - 1)
    assert requests_seen and not any("/blobs/" in seen for seen in requests_seen), requests_seen
    assert not final_path(store, digest).exists()
