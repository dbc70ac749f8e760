"""Fetch one artifact by digest into a given place, verified: what a cluster's init container runs.

``fetch_artifact(source, digest, size, out)`` makes ``out`` the artifact's bytes (a file, or a
folder holding ``model.onnx`` and its external data) or raises, leaving nothing at ``out``:

- ``http://`` / ``https://`` URL: one file, streamed into a private staging file while hashed;
  ``token`` (e.g. from a Kubernetes Secret) is sent as ``Authorization: Bearer``;
- ``oci://host/repo@sha256:...``: pulled by its manifest digest and verified layer by layer
  (``catalog.artifacts.stores.oci``, anonymously: registry credentials are not supported yet);
- a local path (a mounted volume): the file, or every file of the folder, copied while hashed.

The digest is the file's sha256, or for a folder the manifest digest over its files (as the
stores compute it); the size must equal ``size`` too, and no more than ``size`` bytes are read.

``fetch_blob(source, digest, limit)`` returns a small file (a signing bundle) from the same kinds
of source, verified against its sha256, at most ``limit`` bytes of it read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from catalog.artifacts.hashing import CHUNK, Hashed, manifest_digest, read_verified
from catalog.errors import ArtifactError, ArtifactTooLarge, DigestMismatch, DiskFull, StoreError, StoreUnreachable

__all__ = ["HTTP_TIMEOUT", "TOKEN_ENV", "fetch_artifact", "fetch_blob"]

HTTP_TIMEOUT = (10.0, 120.0)  # connect, read (seconds)
TOKEN_ENV = "MODELCAT_FETCH_TOKEN"  # where `modelcat fetch` reads an http token (never an argument)


def _http(url: str, target: Path, size: int, token: str | None) -> Hashed:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    digest, written = hashlib.sha256(), 0
    timeout = httpx.Timeout(HTTP_TIMEOUT[1], connect=HTTP_TIMEOUT[0])
    try:
        with httpx.stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise StoreError(url, f"the server answered HTTP {response.status_code}")
            with DiskFull.translating(target), open(target, "xb") as sink:
                for chunk in response.iter_bytes(CHUNK):
                    written += len(chunk)
                    if written > size:
                        raise ArtifactTooLarge(url, f"more than the {size:,} bytes the catalog names")
                    digest.update(chunk)
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
    except httpx.TransportError as e:  # no answer: refused, broken or timed out
        raise StoreUnreachable(url, f"cannot fetch: {e}") from e
    except httpx.HTTPError as e:
        raise StoreError(url, f"cannot fetch: {e}") from e
    return Hashed("sha256:" + digest.hexdigest(), written)


def _local(source: Path, target: Path, size: int) -> Hashed:
    from catalog.artifacts.staging import copy_hashed  # (the stores import onnx: only when fetching)
    from catalog.artifacts.stores.base import MAIN_FILE

    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        if total > size:
            raise ArtifactTooLarge(str(source), f"is {total:,} bytes, more than the {size:,} the catalog names")
        hashed = [
            (p.relative_to(source).as_posix(), copy_hashed(p, target / p.relative_to(source), limit=size))
            for p in files
        ]
        if len(hashed) == 1 and hashed[0][0] == MAIN_FILE:
            return Hashed(hashed[0][1].digest, total)
        return Hashed(manifest_digest(hashed), total)
    if not source.is_file():
        raise StoreError(str(source), "no such file or folder")
    return copy_hashed(source, target, limit=size)


def _oci(uri: str, target: Path, digest: str, size: int, cache: Path) -> Hashed:
    from catalog.artifacts.stores.oci import OciStore

    fetched = OciStore(uri.split("@", 1)[0], cache=cache).fetch(uri, digest, size, size)
    folder = fetched.main.parent
    files = [p for p in folder.rglob("*") if p.is_file()]
    os.rename(fetched.main if files == [fetched.main] else folder, target)  # verified; the cache is this pod's own
    return Hashed(fetched.digest, fetched.size)


def fetch_artifact(source: str, digest: str, size: int, out: Path, token: str | None = None) -> Hashed:
    """Make ``out`` the verified artifact (see the module's docstring); return its digest and size."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        shutil.rmtree(out)  # a restarted init container: start again
    else:
        out.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staged = work / "artifact"
    try:
        if source.startswith(("http://", "https://")):
            hashed = _http(source, staged, size, token)
        elif source.startswith("oci://"):
            hashed = _oci(source, staged, digest, size, out.parent / ".cache")
        elif "://" in source:
            raise ArtifactError(source, "fetch takes an http(s):// URL, an oci:// URI or a local path")
        else:
            hashed = _local(Path(source), staged, size)
        if hashed.digest != digest:
            raise DigestMismatch(source, digest, hashed.digest)
        if hashed.size != size:
            raise ArtifactError(source, f"is {hashed.size:,} bytes but the catalog says size_bytes: {size:,}")
        os.rename(staged, out)
        return hashed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch_blob(source: str, digest: str, limit: int, work: Path, token: str | None = None) -> bytes:
    """The bytes of the small file at ``source`` (an http(s):// URL, an oci:// blob URI or a local
    path), refused unless their sha256 is ``digest``; ArtifactTooLarge past ``limit`` bytes. It is
    staged in a temporary folder under ``work`` (a pod's root file system is read-only)."""
    work.mkdir(parents=True, exist_ok=True)
    if source.startswith("oci://"):
        from catalog.artifacts.stores.oci import OciStore

        with tempfile.TemporaryDirectory(prefix=".blob-", dir=work) as cache:
            return OciStore(source.split("@", 1)[0], cache=Path(cache)).fetch_blob(source, digest, limit)
    if "://" in source and not source.startswith(("http://", "https://")):
        raise ArtifactError(source, "fetch takes an http(s):// URL, an oci:// URI or a local path")
    if not source.startswith(("http://", "https://")):
        return read_verified(source, digest, limit, source)
    with tempfile.TemporaryDirectory(prefix=".blob-", dir=work) as staging:
        staged = Path(staging) / "blob"
        hashed = _http(source, staged, limit, token)
        if hashed.digest != digest:
            raise DigestMismatch(source, digest, hashed.digest)
        return staged.read_bytes()
