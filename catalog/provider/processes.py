"""Local process control for the provider: detached replicas and routers that outlive Terraform.

A process is started in a session of its own (``start_new_session``), stdin from /dev/null and
stdout + stderr appended to a log file; its URL is read back from the line it prints once
listening (``--format json``). A process is known by ``ProcessId`` (pid and the start time the
kernel records in ``/proc/<pid>/stat``), so a pid the kernel has since given to another program
is never mistaken for ours, nor signalled: signals go through a pidfd opened *before* the start
time is checked, which pins the very process that was checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from catalog.errors import ProcessFailed

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ProcessId",
    "Started",
    "http_client",
    "is_alive",
    "log_tail",
    "port_is_free",
    "process_cmdline",
    "replica_argv",
    "router_argv",
    "start_process",
    "start_time_of",
    "stop_process",
    "wait_port_free",
    "wait_replica_ready",
    "wait_router_table",
]

START_TIMEOUT = 120.0  # a cold replica hashes and loads its model before it listens
DRAIN_SECONDS = 8.0  # SIGTERM to SIGKILL (a replica drains for up to 5 s)
PORT_TIMEOUT = 5.0  # after exit, until the port can be bound again
_POLL = 0.05


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as the kernel knows it: ``start_time`` is field 22 of /proc/<pid>/stat (ticks)."""

    pid: int
    start_time: int


@dataclass(frozen=True, slots=True)
class Started:
    """A process that is listening: who it is, where, and its log file."""

    ident: ProcessId
    url: str
    log: Path
    grpc: str = ""  # a replica's or router's gRPC address (host:port), when it announced one


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may itself hold spaces or ')'
    return text[text.rfind(")") + 2 :].split()


def start_time_of(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot), or None if there is none."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_alive(ident: ProcessId) -> bool:
    """True while the process ``ident`` names runs (a zombie or a recycled pid is not ours)."""
    fields = _stat_fields(ident.pid)
    if not fields or len(fields) <= 19 or int(fields[19]) != ident.start_time:
        return False
    if fields[0] in ("Z", "X"):
        _reap(ident.pid)
        return False
    return True


def process_cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` (empty when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (otherwise init does)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# What a replica or router never inherits: proxies (loopback only), and the provider's Vault
# credentials (a replica gets its secrets as files, never the token that reads them).
_NOT_INHERITED = ("VAULT_TOKEN",)


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k.upper() not in _NOT_INHERITED}
    env["PYTHONUNBUFFERED"] = "1"
    return env | dict(extra or {})


def replica_argv(
    model: str,
    version: str,
    artifact: Path,
    digest: str,
    host: str,
    port: int = 0,
    release: Sequence[str] = (),
    grpc_port: int = 0,
) -> list[str]:
    """A replica's command line, serving REST on ``port`` and gRPC on ``grpc_port`` (0: free ones);
    ``release``: its release check's flags (--trust, --bundle, --bundle-digest)."""
    return [
        sys.executable, "-m", "catalog.cli.replica_command", "--format", "json",
        "--model", model, "--version", version, "--artifact", str(artifact), "--digest", digest,
        "--port", str(port), "--grpc-port", str(grpc_port), "--host", host, *release,
    ]  # fmt: skip


def router_argv(table: Path, host: str, port: int, analytics: Path, grpc_port: int = 0) -> list[str]:
    """A router's command line, serving HTTP on ``port`` and gRPC on ``grpc_port`` (0: free ones)."""
    return [
        sys.executable, "-m", "catalog.cli.router_command", "--format", "json",
        "--table", str(table), "--port", str(port), "--grpc-port", str(grpc_port), "--host", host,
        "--analytics-dir", str(analytics), "--poll-interval", "0.1",
    ]  # fmt: skip


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _announced_url(log: Path, offset: int, key: str = "url") -> str | None:
    """The ``url`` (or ``key``) of the first JSON line with one, written to ``log`` after ``offset``."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return None
    for raw in data.splitlines():
        line = raw.strip()
        if line.startswith(b"{"):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and isinstance(value := doc.get(key), str):
                    return value
    return None


def start_process(
    argv: Sequence[str],
    log: Path,
    what: str,
    timeout: float = START_TIMEOUT,
    on_spawn: Callable[[ProcessId], object] | None = None,
    announced: Callable[[Path, int], str | None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Started:
    """Start ``argv`` detached, logging to ``log``; return once it has announced its URL.

    ``on_spawn`` is called with the new process as soon as it exists, before it listens (to put
    it on record at once); if it raises, the process is stopped. ``announced(log, offset)`` gives
    the URL once the process listens (default: the ``url`` of the first JSON line it logged after
    ``offset``). ``env`` is added to the environment the process inherits. Raises ProcessFailed with the log's last lines if the process exits first or says
    nothing in time.
    """
    announced = announced or _announced_url
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        offset = out.tell()
        out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting {what}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=_child_env(env),
        )
    start = start_time_of(proc.pid)  # our unreaped child: its pid cannot have been reused yet
    ident = ProcessId(proc.pid, start if start is not None else -1)
    if on_spawn is not None:
        try:
            on_spawn(ident)
        except BaseException:
            stop_process(ident, drain=1.0)
            raise
    deadline = time.monotonic() + timeout
    while True:
        url = announced(log, offset)
        if url is not None:
            return Started(ident, url, log, _announced_url(log, offset, "grpc") or "")
        code = proc.poll()
        if code is not None:
            raise ProcessFailed(f"{what} exited with status {code} before listening", str(log), log_tail(log))
        if time.monotonic() > deadline:
            stop_process(ident, drain=1.0)
            raise ProcessFailed(f"{what} did not listen within {timeout:.0f} s", str(log), log_tail(log))
        time.sleep(_POLL)


def http_client(timeout: float = 5.0) -> httpx.Client:
    """An HTTP client for loopback health checks: no proxies from the environment."""
    import httpx  # imported on first use: a provider that only plans never needs it

    return httpx.Client(timeout=timeout, trust_env=False)


def wait_replica_ready(started: Started, model: str, version: str, digest: str, timeout: float = START_TIMEOUT) -> None:
    """Until /v2/health/ready is 200 and the version's metadata names ``digest``.

    A replica serving other bytes is stopped and refused (ProcessFailed naming both digests).
    """
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    with http_client() as client:
        while time.monotonic() < deadline:
            if not is_alive(started.ident):
                raise ProcessFailed(f"replica {started.url} exited", str(started.log), log_tail(started.log))
            try:
                ready = client.get(f"{started.url}/v2/health/ready")
                if ready.status_code == 200:
                    meta = client.get(f"{started.url}/v2/models/{model}/versions/{version}").json()
                    served = (meta.get("parameters") or {}).get("model_digest")
                    if served == digest:
                        return
                    stop_process(started.ident)
                    raise ProcessFailed(
                        f"replica {started.url} serves {model} {version} as {served}, not {digest}; stopped it",
                        str(started.log),
                        log_tail(started.log),
                    )
                last = f"/v2/health/ready answered {ready.status_code}"
            except (httpx.HTTPError, ValueError, AttributeError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(_POLL)
    stop_process(started.ident)
    raise ProcessFailed(f"replica {started.url} not ready in {timeout:.0f} s ({last})", str(started.log))


def wait_router_table(url: str, ident: ProcessId, sha256: str, log: Path, timeout: float = 30.0) -> dict[str, object]:
    """Until the router at ``url`` reports the table ``sha256`` in force; its /routing answer."""
    import httpx

    deadline = time.monotonic() + timeout
    seen: object = None
    with http_client() as client:
        while time.monotonic() < deadline:
            if not is_alive(ident):
                raise ProcessFailed(f"router {url} exited", str(log), log_tail(log))
            with contextlib.suppress(httpx.HTTPError, ValueError):
                routing: dict[str, Any] = client.get(f"{url}/routing").json()
                table = routing.get("table") or {}
                if table.get("sha256") == sha256:
                    return routing
                seen = table.get("last_error") or table.get("sha256")
            time.sleep(_POLL)
    raise ProcessFailed(f"router {url} did not load table {sha256[:12]} in {timeout:.0f} s (has: {seen})", str(log))


def _open_pidfd(ident: ProcessId) -> int | None:
    """A pidfd for ``ident`` if that very process still runs, else None."""
    try:
        fd = os.pidfd_open(ident.pid)
    except (ProcessLookupError, OSError):
        return None
    if is_alive(ident):  # checked after opening: the fd now pins the process we checked
        return fd
    os.close(fd)
    return None


def _wait_exit(fd: int, ident: ProcessId, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        readable, _, _ = select.select([fd], [], [], max(0.0, min(left, 0.2)))
        if readable or not is_alive(ident):
            _reap(ident.pid)
            return True
        if left <= 0:
            return False


def stop_process(ident: ProcessId, drain: float = DRAIN_SECONDS) -> bool:
    """SIGTERM, up to ``drain`` seconds to finish in-flight work, then SIGKILL.

    Only the process ``ident`` names is signalled; returns False if it was not running.
    """
    fd = _open_pidfd(ident)
    if fd is None:
        return False
    try:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, signal.SIGTERM)
        if not _wait_exit(fd, ident, drain):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            _wait_exit(fd, ident, 5.0)
    finally:
        os.close(fd)
    return True


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    return (parts.hostname, parts.port) if parts.hostname and parts.port else None


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host``:``port`` (bound the way the servers bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_port_free(url: str, timeout: float = PORT_TIMEOUT, on_busy: Callable[[], None] | None = None) -> bool:
    """Until the port of ``url`` can be bound again; False if it is still taken at the end."""
    where = _host_port(url)
    if where is None:
        return True
    deadline = time.monotonic() + timeout
    while not port_is_free(*where):
        if time.monotonic() > deadline:
            if on_busy is not None:
                on_busy()
            return False
        time.sleep(_POLL)
    return True
