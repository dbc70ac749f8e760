"""An OCI registry as the artifact store: each artifact is one OCI manifest, fetched by its digest.

The manifest (``artifactType: application/vnd.modelcat.model.v1``, the empty config) lists the
model file and its external data as layers titled with their paths inside the artifact, and
carries the artifact digest and the model's facts as annotations. URIs pin the manifest digest:
``oci://host[:port]/repo@sha256:<64 hex>``; no tag is ever written.

Pushing: blobs go up with oras, chunked (bounded memory), through a client whose requests time out
and are not retried (oras alone retries for about two minutes against a dead registry); the
manifest is built here and PUT by its own digest, which the registry must echo back.
Fetching: plain HTTP, because oras does not verify what it pulls. The manifest's sha256 is
checked, sizes are checked against the limit before any blob is read, every blob is hashed on its
way into a private folder of the cache, and that folder becomes ``<cache>/sha256/<ab>/<hex>`` by
one rename only when every layer and the artifact digest match.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

import oras.client
import oras.container
import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from catalog.artifacts.hashing import CHUNK, hash_file, hash_stream, manifest_digest
from catalog.artifacts.staging import StagingArea
from catalog.artifacts.stores.base import MAIN_FILE, Fetched, StagedArtifact
from catalog.domain.digests import SHA256_DIGEST, is_digest
from catalog.errors import ArtifactError, ArtifactTooLarge, DigestMismatch, DiskFull, StoreError, StoreUnreachable

__all__ = ["ARTIFACT_TYPE", "BLOB_ARTIFACT_TYPE", "DATA_MEDIA_TYPE", "MODEL_MEDIA_TYPE", "OciStore"]

ARTIFACT_TYPE = "application/vnd.modelcat.model.v1"
MODEL_MEDIA_TYPE = "application/vnd.modelcat.onnx.model.v1"
DATA_MEDIA_TYPE = "application/vnd.modelcat.onnx.external-data.v1"
BLOB_ARTIFACT_TYPE = "application/vnd.modelcat.blob.v1"  # put_blob: a small file such as a signature bundle
BLOB_MEDIA_TYPE = "application/octet-stream"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
EMPTY_CONFIG = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
    "size": 2,
}
TITLE = "org.opencontainers.image.title"
PROBE_TIMEOUT = (5.0, 5.0)  # (connect, read) seconds
TIMEOUT = (5.0, 120.0)
UPLOAD_CHUNK = 16 * CHUNK  # bytes per PATCH: memory held while pushing
MAX_MANIFEST = 4 << 20  # registries refuse larger manifests too

_HOST = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(?P<port>[0-9]{1,5}))?"
_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = rf"(?P<repo>{_PART}(?:/{_PART})*)"
_REFERENCE = re.compile(rf"oci://{_HOST}/{_REPO}")
_URI = re.compile(rf"oci://{_HOST}/{_REPO}@(?P<digest>{SHA256_DIGEST})")


@dataclass(frozen=True)
class _Repo:
    netloc: str  # host[:port] as written
    path: str  # the repository inside the registry
    base: str  # http(s)://host[:port]

    @property
    def api(self) -> str:
        return f"{self.base}/v2/{self.path}"


def _parse(pattern: re.Pattern[str], text: str, what: str) -> tuple[_Repo, re.Match[str]]:
    match = pattern.fullmatch(text)
    port = match and match["port"]
    if not match or (port is not None and not 0 < int(port) < 65536):
        raise StoreError(text, f"not a valid {what}")
    host = match["host"]
    insecure = os.environ.get("MODELCAT_OCI_INSECURE") == "1" or host.lower() == "localhost"
    try:
        insecure = insecure or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    netloc = host + (f":{port}" if port else "")
    return _Repo(netloc, match["repo"], f"{'http' if insecure else 'https'}://{netloc}"), match


def _why(error: Exception) -> str:
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return str(reason or error)


# the connection could not be made, broke, or timed out: the registry was not reached (an answer,
# even an error status, is the registry's own)
_UNREACHABLE = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.ProtocolError,
)


def _failed(where: str, detail: str, error: Exception) -> StoreError:
    """``detail`` as StoreUnreachable (an environment error) when ``error`` says the registry was
    not reached, else as StoreError."""
    return (StoreUnreachable if isinstance(error, _UNREACHABLE) else StoreError)(where, f"{detail}: {_why(error)}")


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout, also those oras makes without one."""

    def send(  # type: ignore[override]  # requests' keyword arguments go on as they come
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        return super().send(request, **kwargs)


def _with_timeouts(session: requests.Session) -> requests.Session:
    for prefix in ("http://", "https://"):
        session.mount(prefix, _TimeoutAdapter())
    return session


_UNRETRIED = getattr(oras.client.OrasClient.do_request, "__wrapped__", oras.client.OrasClient.do_request)


class _Oras(oras.client.OrasClient):  # type: ignore[misc]  # oras has no types: its OrasClient is Any
    """oras without its retry loop; an error status is raised at once rather than parsed on."""

    def do_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response: requests.Response = _UNRETRIED(self, *args, **kwargs)
        if response.status_code >= 400 and response.request.method != "HEAD":
            what = f"{response.request.method} {response.request.url}"
            raise requests.HTTPError(f"HTTP {response.status_code} on {what}: {response.text[:300]}", response=response)
        return response


def _check(response: requests.Response, where: str, what: str, ok: tuple[int, ...] = (200, 201, 202)) -> None:
    if response.status_code in ok:
        return
    if response.status_code == 404:
        raise StoreError(where, f"{what}: not found in the registry (HTTP 404)")
    raise StoreError(where, f"{what}: the registry answered HTTP {response.status_code}: {response.text[:300]}")


def _folder_digest(folder: Path, uri: str, limit: int) -> tuple[str, int]:
    """The artifact digest of a laid-out folder, computed exactly as LocalStore does."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    if total > limit:
        raise ArtifactTooLarge(uri, f"is {total:,} bytes, over the limit of {limit:,}")
    hashed = [(p.relative_to(folder).as_posix(), hash_file(str(p), limit=limit)) for p in files]
    if len(hashed) == 1 and hashed[0][0] == MAIN_FILE:
        return hashed[0][1].digest, total
    return manifest_digest(hashed), total


def _safe_title(uri: str, title: object) -> str:
    path = PurePosixPath(title) if isinstance(title, str) else PurePosixPath()
    unsafe = not path.parts or path.is_absolute() or ".." in path.parts or path.as_posix() != title
    if unsafe or "\\" in str(title) or "\0" in str(title) or title == MAIN_FILE:
        raise ArtifactError(uri, f"an external-data layer has an unsafe or missing title: {title!r}")
    return str(title)


def _layout(uri: str, manifest: object) -> list[tuple[str, str, int]]:
    """(path inside the artifact, layer digest, size) for every layer, refusing anything odd."""
    if not isinstance(manifest, dict) or manifest.get("mediaType", OCI_MANIFEST) not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise ArtifactError(uri, "is not an OCI image manifest")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ArtifactError(uri, "is not an OCI image manifest with layers")
    out: list[tuple[str, str, int]] = []
    for layer in layers:
        if not isinstance(layer, dict):
            raise ArtifactError(uri, "the manifest has a malformed layer")
        digest, size, media = layer.get("digest"), layer.get("size"), layer.get("mediaType")
        if not is_digest(digest):
            raise ArtifactError(uri, f"a layer has an unsupported digest: {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ArtifactError(uri, f"layer {digest} has an invalid size: {size!r}")
        if media == MODEL_MEDIA_TYPE:
            path = MAIN_FILE
        elif media == DATA_MEDIA_TYPE:
            annotations = layer.get("annotations")
            path = _safe_title(uri, annotations.get(TITLE) if isinstance(annotations, dict) else None)
        else:
            raise ArtifactError(uri, f"layer {digest} has media type {media!r}: not a modelcat artifact")
        out.append((path, digest, size))
    paths = [path for path, _, _ in out]
    if paths.count(MAIN_FILE) != 1 or len(set(paths)) != len(paths):
        raise ArtifactError(uri, "the manifest needs exactly one model layer and distinct file titles")
    return out


def _root(folder: Path) -> Path:
    """The artifact laid out in ``folder``: its model file alone, or the folder with external data."""
    main = folder / MAIN_FILE
    return main if [p for p in folder.rglob("*") if not p.is_dir()] == [main] else folder


class OciStore:
    """Artifacts in an OCI registry repository; a verified copy of each fetched one in ``cache``."""

    def __init__(self, reference: str, cache: Path) -> None:
        self.reference = reference
        self.repo, _ = _parse(_REFERENCE, reference, "OCI repository reference (oci://host[:port]/repo/path)")
        self.cache = cache
        self._staging = StagingArea(cache / ".staging")  # uploads staged and downloads verified here
        self._http = _with_timeouts(requests.Session())

    def __repr__(self) -> str:
        return f"OciStore({self.reference})"

    def staging_dir(self) -> Path:
        try:
            with DiskFull.translating(self._staging.area):
                return self._staging.new()
        except OSError as e:
            raise StoreError(self.reference, f"cannot create a staging folder: {e.strerror or e}") from e

    def release_staging(self, folder: Path) -> None:
        self._staging.release(folder)

    def put(self, staged: StagedArtifact) -> str:
        try:
            return self._push(staged)
        finally:
            self.release_staging(staged.root)

    def _push(self, staged: StagedArtifact) -> str:
        self._probe()
        client = _Oras(hostname=self.repo.netloc, insecure=self.repo.base.startswith("http:"))
        _with_timeouts(client.session)
        container = oras.container.Container(self.repo.path, registry=self.repo.netloc)
        namespace, _, container.repository = self.repo.path.rpartition("/")  # as parsed here, not re-guessed
        container.registry, container.namespace = self.repo.netloc, namespace or None
        layers = []
        config = staged.root / ".modelcat-empty-config"
        try:
            with DiskFull.translating(config):
                config.write_bytes(b"{}")
            blobs = [(str(config), EMPTY_CONFIG)]
            for path, hashed in sorted(staged.files, key=lambda item: (item[0] != MAIN_FILE, item[0])):
                media = MODEL_MEDIA_TYPE if path == MAIN_FILE else DATA_MEDIA_TYPE
                layers.append(
                    {"mediaType": media, "digest": hashed.digest, "size": hashed.size, "annotations": {TITLE: path}}
                )
                blobs.append((str(staged.root / path), layers[-1]))
            for blob, layer in blobs:
                response = client.upload_blob(blob, container, dict(layer), do_chunked=True, chunk_size=UPLOAD_CHUNK)
                _check(response, self.reference, f"upload of {layer['digest']}")
        except (requests.RequestException, ValueError, OSError) as e:
            raise _failed(self.reference, f"push to {self.repo.base} failed", e) from e
        annotations = {
            "dev.modelcat.artifact.digest": staged.digest,
            "dev.modelcat.artifact.size": str(staged.size),
            "dev.modelcat.onnx.facts": json.dumps(staged.facts.as_dict(), sort_keys=True, separators=(",", ":")),
        }
        return self._put_manifest(ARTIFACT_TYPE, layers, annotations)

    def _probe(self) -> None:
        """A quick probe before a push: fail in seconds, not after oras's retries."""
        try:
            probe = self._http.get(f"{self.repo.base}/v2/", timeout=PROBE_TIMEOUT)
        except requests.RequestException as e:
            raise _failed(self.reference, f"registry unreachable at {self.repo.base}", e) from e
        _check(probe, self.reference, "GET /v2/", (200, 401))

    def _put_manifest(self, artifact_type: str, layers: list[dict[str, Any]], annotations: dict[str, str]) -> str:
        """PUT the manifest of ``layers`` (their blobs already pushed) by its digest; its URI."""
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type}
        manifest |= {"config": EMPTY_CONFIG, "layers": layers, "annotations": annotations}
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        try:  # PUT by digest: the registry checks the bytes against it; nothing mutable is written
            url, headers = f"{self.repo.api}/manifests/{digest}", {"Content-Type": OCI_MANIFEST}
            response = self._http.put(url, data=body, headers=headers)
        except requests.RequestException as e:
            raise _failed(self.reference, f"push to {self.repo.base} failed", e) from e
        _check(response, self.reference, "manifest upload")
        echoed = response.headers.get("Docker-Content-Digest", digest)
        if echoed != digest:
            raise StoreError(self.reference, f"the registry stored the manifest as {echoed}, not {digest}")
        return f"oci://{self.repo.netloc}/{self.repo.path}@{digest}"

    def put_blob(self, data: bytes) -> str:
        """Push ``data`` as the one layer of its own manifest (a bare blob would be garbage-collected)."""
        self._probe()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        try:
            for blob, blob_digest in ((b"{}", EMPTY_CONFIG["digest"]), (data, digest)):
                self._upload(blob, str(blob_digest))
        except requests.RequestException as e:
            raise _failed(self.reference, f"push to {self.repo.base} failed", e) from e
        layer = {"mediaType": BLOB_MEDIA_TYPE, "digest": digest, "size": len(data)}
        return self._put_manifest(BLOB_ARTIFACT_TYPE, [layer], {})

    def _upload(self, data: bytes, digest: str) -> None:
        """One blob, monolithically (POST a session, PUT the bytes), unless the registry has it."""
        if self._http.head(f"{self.repo.api}/blobs/{digest}").status_code == 200:
            return
        started = self._http.post(f"{self.repo.api}/blobs/uploads/")
        _check(started, self.reference, f"upload of {digest}", (202,))
        location = urljoin(self.repo.base, started.headers.get("Location", ""))
        separator = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream"}
        done = self._http.put(f"{location}{separator}digest={digest}", data=data, headers=headers)
        _check(done, self.reference, f"upload of {digest}", (201,))

    def fetch_blob(self, uri: str, digest: str, limit: int) -> bytes:
        repo, match = _parse(_URI, uri, "OCI blob URI (oci://host[:port]/repo@sha256:<64 hex>)")
        try:
            body = self._manifest(repo, match["digest"], uri)
            layers = body.get("layers") if isinstance(body, dict) else None
            if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
                raise ArtifactError(uri, "is not a blob's manifest (one layer)")
            layer_digest, size = layers[0].get("digest"), layers[0].get("size")
            if layer_digest != digest:
                raise DigestMismatch(uri, digest, str(layer_digest), " (the manifest's layer)")
            if not isinstance(size, int) or size > limit:
                raise ArtifactTooLarge(uri, f"is {size!r} bytes, over the limit of {limit:,}")
            with self._http.get(f"{repo.api}/blobs/{digest}", stream=True) as response:
                _check(response, uri, f"blob {digest}", (200,))
                data = bytearray()
                for chunk in response.iter_content(CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise ArtifactTooLarge(uri, f"is over the limit of {limit:,} bytes")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            raise _failed(uri, f"registry unreachable at {repo.base}", e) from e
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(uri, digest, actual)
        return bytes(data)

    def fetch(self, uri: str, digest: str, size: int, limit: int) -> Fetched:
        repo, match = _parse(_URI, uri, "OCI artifact URI (oci://host[:port]/repo@sha256:<64 hex>)")
        if not is_digest(digest):
            raise ArtifactError(uri, f"the expected digest {digest!r} is not sha256:<64 hex>")
        hexdigest = digest.removeprefix("sha256:")
        final = self.cache / "sha256" / hexdigest[:2] / hexdigest
        try:
            with DiskFull.translating(self.cache):  # a full disk: nothing is cached, nothing changed
                if final.is_dir():
                    try:
                        return self._verified(uri, final, digest, size, limit)
                    except DigestMismatch:
                        shutil.rmtree(final)  # a damaged cached copy: fetch it again
                work = self._staging.new()
                try:
                    self._download(repo, match["digest"], uri, work, limit)
                    fetched = self._verified(uri, work, digest, size, limit)
                    final.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.rename(work, final)
                    except OSError:
                        if not final.is_dir():
                            raise
                        return self._verified(uri, final, digest, size, limit)  # another process won the race
                    return Fetched(main=final / MAIN_FILE, digest=fetched.digest, size=fetched.size, root=_root(final))
                finally:
                    self._staging.release(work)
        except OSError as e:
            raise StoreError(str(self.cache), f"cannot write the artifact cache: {e.strerror or e}") from e

    def _verified(self, uri: str, folder: Path, digest: str, size: int, limit: int) -> Fetched:
        actual, total = _folder_digest(folder, uri, limit)
        if actual != digest:
            raise DigestMismatch(uri, digest, actual)
        if total != size:
            raise ArtifactError(uri, f"is {total:,} bytes but the catalog says size_bytes: {size:,}")
        return Fetched(main=folder / MAIN_FILE, digest=actual, size=total, root=_root(folder))

    def _download(self, repo: _Repo, manifest_ref: str, uri: str, work: Path, limit: int) -> None:
        try:
            layers = _layout(uri, self._manifest(repo, manifest_ref, uri))
            total = sum(layer_size for _, _, layer_size in layers)
            if total > limit:
                raise ArtifactTooLarge(uri, f"is {total:,} bytes, over the limit of {limit:,}")
            for path, layer_digest, layer_size in layers:
                self._blob(repo, uri, path, layer_digest, layer_size, work / path)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            raise _failed(uri, f"registry unreachable at {repo.base}", e) from e

    def _manifest(self, repo: _Repo, manifest_ref: str, uri: str) -> object:
        """The manifest ``manifest_ref`` names, checked against its digest, parsed."""
        headers = {"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"}
        with self._http.get(f"{repo.api}/manifests/{manifest_ref}", headers=headers, stream=True) as response:
            _check(response, uri, "manifest", (200,))
            body = bytearray()
            for chunk in response.iter_content(CHUNK):
                body += chunk
                if len(body) > MAX_MANIFEST:
                    raise StoreError(uri, f"the manifest is larger than {MAX_MANIFEST:,} bytes")
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != manifest_ref:
            raise DigestMismatch(uri, manifest_ref, actual, " (manifest)")
        try:
            parsed: object = json.loads(body)
        except ValueError as e:
            raise ArtifactError(uri, f"the manifest is not JSON: {e}") from e
        return parsed

    def _blob(self, repo: _Repo, uri: str, path: str, digest: str, size: int, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._http.get(f"{repo.api}/blobs/{digest}", stream=True) as response:
            _check(response, uri, f"blob {digest} ({path})", (200,))
            response.raw.decode_content = True
            with open(target, "xb") as sink:
                try:
                    hashed = hash_stream(response.raw, name=uri, sink=sink, limit=size)
                except ArtifactTooLarge:
                    raise DigestMismatch(uri, digest, f"more than {size:,} bytes", f" (layer {path})") from None
        if hashed.digest != digest or hashed.size != size:
            raise DigestMismatch(uri, digest, hashed.digest, f" (layer {path}, {hashed.size:,} bytes)")
