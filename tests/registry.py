"""A throwaway OCI registry for tests: Debian's ``docker-registry`` on a free loopback port.

Storage is a temp folder (deletes enabled), so tests may look at or damage the stored blobs.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["BINARY", "RegistryUnavailable", "free_port", "running_registry"]

BINARY = Path("/usr/bin/docker-registry")

CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
"""


class RegistryUnavailable(RuntimeError):
    """The test registry could not be started."""


def free_port() -> int:
    """A loopback port nothing listens on (the OS picked it; it is free until someone binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _start(workdir: Path, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    storage, log = workdir / "storage", workdir / "registry.log"
    storage.mkdir(exist_ok=True)
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(CONFIG.format(storage=storage, port=port), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        process = subprocess.Popen([str(BINARY), "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RegistryUnavailable(f"docker-registry exited with {process.returncode}:\n{tail}")
        if _answers(url):
            return process, url
        time.sleep(0.1)
    _stop(process)
    raise RegistryUnavailable(f"docker-registry did not answer GET {url}/v2/ within {timeout:.0f} s")


@contextmanager
def running_registry(timeout: float = 15.0) -> Iterator[tuple[str, Path]]:
    """Start a registry; yield ``(http://127.0.0.1:PORT, storage folder)``; stop it and delete everything."""
    if not BINARY.exists():
        raise RegistryUnavailable(
            f"{BINARY} is missing: the OCI store tests need a local registry. `.ci/run` installs the Debian "
            "package docker-registry (by hand: apt-get install -y docker-registry)."
        )
    workdir = Path(tempfile.mkdtemp(prefix="modelcat-registry-"))
    try:
        for attempt in range(3):  # the free port may be taken between picking and binding it
            try:
                process, url = _start(workdir, timeout)
                break
            except RegistryUnavailable:
                if attempt == 2:
                    raise
        try:
            yield url, workdir / "storage"
        finally:
            _stop(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
