"""A throw-away catalog project driven through the real ``modelcat`` command line.

``Project.create(folder)`` writes a small catalog derived from the demo's models.yaml (its
``models`` section and everything before it, and one application, ``checkout`` in
``production``: fraud-scorer 1.3.0 = 90 / 1.4.0 = 10, sticky on ``x-user-id``, 2 replicas each),
copies the demo's artifacts into the folder's own ``artifacts/`` (copies, not links: a replica's
command line then names the project folder, which is how a leftover process is found), and
checks it with ``modelcat validate``.

Every ``modelcat`` runs as a subprocess in the project folder (the embedded Terraform, real
loopback ports). ``cleanup`` runs ``modelcat destroy --auto-approve`` and then stops, identity
checked (pid and start time), every process the run records list or whose command line or
working directory is inside the project folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from catalog.provider.processes import ProcessId, is_alive, process_cmdline, start_time_of, stop_process
from catalog.provider.runstate import EndpointRecord, RouteRecord, load_endpoint_records, load_route_records
from catalog.telemetry.prometheus import PROMETHEUS_BINARY, MetricsDir, PrometheusRecord
from tests.helpers import with_demo_keys

__all__ = [
    "APPLICATION",
    "FEATURES",
    "ClientLoop",
    "Project",
    "Running",
    "output",
]

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models.yaml"
MODELCAT = str(Path(sys.executable).with_name("modelcat"))
FEATURES = {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.25] * 16}]}
REPLICA, ROUTER = "catalog.cli.replica_command", "catalog.cli.router_command"


def _serves(argv: list[str]) -> bool:
    """A replica, a router or a stack's Prometheus: what an apply leaves running."""
    return REPLICA in argv or ROUTER in argv or argv[:1] == [PROMETHEUS_BINARY]


APPLICATION = """\
applications:
  - name: checkout
    owner: payments-platform@example.com
    environment: production
    description: Card checkout, deployed by the end-to-end tests.
    bindings:
      - model: fraud-scorer
        sticky_key: x-user-id
        routes:
          - {version: 1.3.0, weight: 90}
          - {version: 1.4.0, weight: 10}
        serving:
          replicas: 2
"""


def small_catalog() -> str:
    """The demo catalog up to its applications, then the one application above."""
    demo = DEMO.read_text(encoding="utf-8")
    return demo[: demo.index("\napplications:") + 1] + "\n" + APPLICATION


def output(done: subprocess.CompletedProcess[str]) -> str:
    """Exit code, stdout and stderr of a finished command, for assertion messages."""
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


# A test runner started in the background may have SIGINT ignored, which children inherit and
# Python then keeps: the command is exec'd (same pid) with the default handling a shell gives it.
WITH_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1")
    env.pop("MODELCAT_TERRAFORM", None)  # the embedded Terraform
    return env


class Running:
    """A ``modelcat`` started in its own process group, as at a terminal; its output collected."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.argv = argv
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [*WITH_SIGINT, *argv],
            cwd=cwd,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and self.process.poll() is not None):
                    raise AssertionError(f"no {text!r} from {' '.join(self.argv[1:])}:\n{self.text}")
                self._changed.wait(min(left, 0.2))

    def interrupt(self) -> None:
        """Ctrl-C at the terminal: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout: float = 180) -> int:
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


def _processes_under(folder: Path) -> list[tuple[ProcessId, list[str]]]:
    """Processes whose command line names ``folder`` or whose working directory is inside it."""
    prefix = str(folder) + os.sep
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        argv = process_cmdline(pid)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd") + os.sep
        except OSError:
            cwd = ""
        if any(prefix in part for part in argv) or cwd.startswith(prefix):
            start = start_time_of(pid)
            if start is not None:
                found.append((ProcessId(pid, start), argv))
    return found


@dataclass
class Project:
    """A catalog folder, the ``modelcat`` commands run in it and the processes they leave."""

    dir: Path
    children: list[Running] = field(default_factory=list)
    frozen: list[ProcessId] = field(default_factory=list)
    first_apply: subprocess.CompletedProcess[str] | None = None

    @classmethod
    def create(cls, folder: Path) -> Self:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "models.yaml").write_text(small_catalog(), encoding="utf-8")
        shutil.copytree(ROOT / "artifacts" / "sha256", folder / "artifacts" / "sha256")
        with_demo_keys(folder)
        project = cls(folder.resolve())
        done = project.run("validate")
        assert done.returncode == 0, output(done)
        return project

    @property
    def catalog(self) -> Path:
        return self.dir / "models.yaml"

    @property
    def run_root(self) -> Path:
        return self.dir / ".modelcat" / "run"

    # -- commands ---------------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MODELCAT, *args],
            check=False,
            cwd=self.dir,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def json(self, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
        """``modelcat ARGS --format json``: its document, once its exit code is one of ``codes``."""
        done = self.run(*args, "--format", "json")
        assert done.returncode in codes, output(done)
        return json.loads(done.stdout)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == 0, output(done)
        return done

    def start(self, *args: str) -> Running:
        running = Running([MODELCAT, *args], self.dir)
        self.children.append(running)
        return running

    def status(self, codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
        return self.json("status", codes=codes)

    def bind(self, **weights: int) -> None:
        """Set checkout's fraud-scorer routes, e.g. ``bind(**{"1.3.0": 50, "1.4.0": 50})``."""
        routes = [a for version, weight in weights.items() for a in ("--route", f"{version}={weight}")]
        self.ok("bind", "checkout", "fraud-scorer", *routes)

    def converge(self) -> dict[str, Any]:
        """Apply if what runs is not what the catalog says; the consistent status."""
        if self.run("status").returncode != 0:
            self.ok("apply", "--auto-approve")
        return self.status()

    def replace_artifact(self, version: str, path: Path) -> str:
        """Give ``version`` of fraud-scorer the bytes at ``path`` (stored by digest), signed with the
        demo key as a release is (production serves only signed bytes); the new digest."""
        data = path.read_bytes()
        hexdigest = hashlib.sha256(data).hexdigest()
        stored = self.dir / "artifacts" / "sha256" / hexdigest[:2] / hexdigest
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(data)
        text = self.catalog.read_text(encoding="utf-8")
        start = text.index(f"- version: {version}")
        end = text.find("- version:", start + 1)
        block = text[start:end]
        new = re.sub(r"uri: \S+", f"uri: artifacts/sha256/{hexdigest[:2]}/{hexdigest}", block, count=1)
        new = re.sub(r"digest: sha256:[0-9a-f]{64}", f"digest: sha256:{hexdigest}", new, count=1)
        new = re.sub(r"size_bytes: \d+", f"size_bytes: {len(data)}", new, count=1)
        self.catalog.write_text(text[:start] + new + text[end:], encoding="utf-8")
        self.ok("sign", "fraud-scorer", "--version", version, "--key", "keys/demo-release.pem")
        self.ok("validate")
        return f"sha256:{hexdigest}"

    # -- processes --------------------------------------------------------------------------------

    def endpoint_records(self) -> list[EndpointRecord]:
        return [r for d in sorted(self.run_root.glob("*")) for r in load_endpoint_records(d)]

    def route_records(self) -> list[RouteRecord]:
        return [r for d in sorted(self.run_root.glob("*")) for r in load_route_records(d)]

    def route(self, application: str = "checkout") -> RouteRecord:
        [record] = [r for r in self.route_records() if r.application == application]
        return record

    def prometheus_records(self) -> list[PrometheusRecord]:
        records = [PrometheusRecord.read(MetricsDir(d)) for d in sorted(self.run_root.glob("*"))]
        return [r for r in records if r is not None]

    def recorded(self) -> list[tuple[ProcessId, str]]:
        """(process, url) of every replica, router and Prometheus the run records list."""
        found = [(i.ident, i.url) for r in self.endpoint_records() for i in r.instances]
        found += [(ProcessId(r.pid, r.start_time), r.url) for r in self.prometheus_records()]
        return found + [(r.ident, r.url) for r in self.route_records()]

    def serving(self) -> list[tuple[ProcessId, list[str]]]:
        """Running replica, router and Prometheus processes of this project, whether recorded or not."""
        return [(p, argv) for p, argv in _processes_under(self.dir) if _serves(argv)]

    def freeze_replica(self, timeout: float = 60, besides: Collection[ProcessId] = ()) -> ProcessId:
        """Stop (SIGSTOP) the first replica of this project to appear (other than those in
        ``besides``): it cannot listen until ``thaw``, so the apply that started it stays in the
        middle of creating its endpoint."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ident, argv in _processes_under(self.dir):
                if REPLICA in argv and ident not in besides and is_alive(ident):
                    os.kill(ident.pid, signal.SIGSTOP)
                    self.frozen.append(ident)
                    return ident
            time.sleep(0.005)
        raise AssertionError(f"no replica of {self.dir} started within {timeout} s")

    def wait_until_commands_end(self, timeout: float = 120) -> bool:
        """Until no process of this project but replicas, routers and Prometheus runs (a
        ``modelcat``, its Terraform, the provider); False if one still runs at the deadline."""
        deadline = time.monotonic() + timeout
        while any(not _serves(a) for _, a in _processes_under(self.dir)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def thaw(self) -> None:
        for ident in self.frozen:
            if is_alive(ident):
                os.kill(ident.pid, signal.SIGCONT)
        self.frozen.clear()

    def cleanup(self) -> None:
        """Whatever happened: no command, replica, router or Prometheus of this project is left running."""
        self.thaw()
        for child in self.children:
            child.kill()  # its Terraform sees its stdin close and stops, releasing the state lock
        self.wait_until_commands_end(timeout=30)
        if (self.dir / ".modelcat" / "terraform").is_dir():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.run("destroy", "--auto-approve", timeout=240)
        for ident, _ in self.recorded():
            stop_process(ident, drain=2.0)
        for ident, _ in _processes_under(self.dir):
            stop_process(ident, drain=2.0)


class ClientLoop:
    """Threads sending keyed inference requests through a router back to back until stopped.

    Every answer is kept as (status, version, digest, sent, received); a request that raised is a
    failure too. Keys change with every request, so every version of the split gets traffic.
    """

    def __init__(self, url: str, model: str = "fraud-scorer", workers: int = 4, pause: float = 0.005) -> None:
        self.url = f"{url}/v2/models/{model}/infer"
        self.pause = pause
        self.answers: list[tuple[int, str, str, float, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(workers)]

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Until ``count`` more answers arrived."""
        target = len(self.answers) + count
        deadline = time.monotonic() + timeout
        while len(self.answers) < target:
            assert time.monotonic() < deadline, f"the client loop got {len(self.answers)} answers, not {target}"
            assert not self.errors, self.errors[:5]
            time.sleep(0.02)

    @property
    def failures(self) -> list[str]:
        bad = [f"{status} from {version} {digest}" for status, version, digest, _, _ in self.answers if status != 200]
        return self.errors + bad

    def answered_after(self, moment: float) -> Iterator[tuple[str, str]]:
        """(version, digest) of the answers to requests sent after ``moment`` (time.monotonic)."""
        return ((v, d) for status, v, d, sent, _ in list(self.answers) if sent > moment and status == 200)

    def _work(self, n: int) -> None:
        import httpx

        with httpx.Client(timeout=30, trust_env=False) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                sent = time.monotonic()
                try:
                    r = client.post(self.url, json=FEATURES, headers={"x-user-id": f"loop-{n}-{i}"})
                except httpx.HTTPError as e:  # recorded: the tests assert there are none
                    self.errors.append(f"{type(e).__name__}: {e}")
                else:
                    version, digest = r.headers.get("x-model-version", ""), r.headers.get("x-model-digest", "")
                    self.answers.append((r.status_code, version, digest, sent, time.monotonic()))
                time.sleep(self.pause)
