"""`modelcat serve`: the replica as a SageMaker inference container, configured by its environment.

SageMaker starts the image as ``docker run <image> serve``, puts the model data under
``/opt/ml/model`` (or ``$SM_MODEL_DIR``) and talks to port 8080 (or ``$SAGEMAKER_BIND_TO_PORT``):
``GET /ping`` for health, ``POST /invocations`` for inference. Which model version the bytes must be
comes from the container's environment, ``MODELCAT_MODEL``, ``MODELCAT_VERSION`` and
``MODELCAT_DIGEST``; as with ``modelcat replica``, nothing listens until the bytes match the digest
and, given a signing bundle and a trust file (``MODELCAT_BUNDLE``, ``MODELCAT_BUNDLE_DIGEST``,
``MODELCAT_TRUST``), until the signature verifies against a trusted key.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import click

from catalog.cli.common import command, examples
from catalog.cli.replica_command import runtime_options, signature_options
from catalog.errors import UsageError
from catalog.wording import plural

__all__ = ["DEFAULT_MODEL_DIR", "DEFAULT_PORT", "find_artifact", "serve"]

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080


def _setting(option: str | None, variable: str) -> str | None:
    """An option's value, else the environment variable's (an empty variable counts as unset)."""
    return option if option is not None else (os.environ.get(variable) or None)


def _port(option: int | None) -> int:
    if option is not None:
        return option
    raw = os.environ.get("SAGEMAKER_BIND_TO_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise UsageError(f"SAGEMAKER_BIND_TO_PORT={raw!r} is not a TCP port (0-65535)")
    return int(raw)


def _describe(entries: list[Path]) -> str:
    shown = ", ".join(sorted(e.name + ("/" if e.is_dir() and not e.is_symlink() else "") for e in entries)[:10])
    return shown + (f", ... ({len(entries)} in all)" if len(entries) > 10 else "")


def find_artifact(artifact: str | None, model_dir: str | None) -> Path:
    """The artifact to verify: ``artifact`` when given (``--artifact`` or ``$MODELCAT_ARTIFACT``),
    else what the model directory (``model_dir``, ``$SM_MODEL_DIR`` or /opt/ml/model) holds.

    The directory holds one model: a single ONNX file (an uncompressed S3 object keeps its key's last
    part as its name, so the name is not relied on), the files of a multi-file artifact directly
    (``model.onnx`` among them: the directory itself is the artifact), or one folder holding
    ``model.onnx``. Anything else (empty, several entries, a link) is a UsageError naming the
    directory and what is in it; which entry the digest belongs to is not guessed.
    """
    from catalog.serving.replica_model import MAIN_FILE  # onnxruntime: only once a model is to be served

    if artifact is not None:
        path = Path(artifact)
        if not path.exists():
            raise UsageError(f"the artifact {path} (--artifact or MODELCAT_ARTIFACT) does not exist")
        return path
    folder = Path(model_dir or os.environ.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR)
    try:
        entries = list(folder.iterdir())
    except OSError as e:
        raise UsageError(
            f"cannot read the model directory {folder}: {e.strerror or e} "
            "(set SM_MODEL_DIR or MODELCAT_ARTIFACT, or pass --model-dir or --artifact)"
        ) from e
    if (folder / MAIN_FILE).is_file():
        return folder  # the files of a multi-file artifact; the manifest digest covers every one
    if not entries:
        raise UsageError(f"the model directory {folder} is empty: no model artifact to serve")
    if len(entries) > 1:
        raise UsageError(
            f"the model directory {folder} holds {plural(len(entries), 'entry', 'entries')} ({_describe(entries)}); expected "
            f"one ONNX file, the files of one artifact with {MAIN_FILE}, or one folder with {MAIN_FILE} (set MODELCAT_ARTIFACT to name the artifact)"
        )
    [entry] = entries
    mode = entry.lstat().st_mode
    if stat.S_ISREG(mode) or (stat.S_ISDIR(mode) and (entry / MAIN_FILE).is_file()):
        return entry
    if stat.S_ISLNK(mode):
        kind = "a symbolic link"
    elif stat.S_ISDIR(mode):
        kind = f"a folder without {MAIN_FILE}"
    else:
        kind = "not a regular file"
    raise UsageError(f"the model directory {folder} holds only {entry.name}, which is {kind}: no model artifact")


@click.command(
    "serve",
    epilog=examples(
        "modelcat serve   # as SageMaker runs it: MODELCAT_MODEL, MODELCAT_VERSION, MODELCAT_DIGEST set",
        "modelcat serve --model fraud-scorer --version 1.3.0 --digest sha256:fbe81f1d... --model-dir ./model",
    ),
)
@click.option("--model", "model_name", help="Model name [env MODELCAT_MODEL].")
@click.option("--version", "model_version", help="Model version [env MODELCAT_VERSION].")
@click.option("--digest", help="sha256:<64 hex> the catalog names for the artifact [env MODELCAT_DIGEST].")
@click.option(
    "--artifact", help="The ONNX file or folder to serve [env MODELCAT_ARTIFACT; default: found in the model dir]."
)
@click.option("--model-dir", help=f"Where the model data is [env SM_MODEL_DIR; default {DEFAULT_MODEL_DIR}].")
@click.option(
    "--port", type=click.IntRange(0, 65535), help=f"TCP port [env SAGEMAKER_BIND_TO_PORT; default {DEFAULT_PORT}]."
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@runtime_options(drain_seconds=25.0, drain_note="SageMaker kills 30 s after SIGTERM")
@signature_options(env=True)
@command
def serve(
    fmt: str,
    model_name: str | None,
    model_version: str | None,
    digest: str | None,
    artifact: str | None,
    model_dir: str | None,
    port: int | None,
    host: str,
    threads: int,
    drain_seconds: float,
    max_request_bytes: int,
    bundle: Path | None,
    bundle_digest: str | None,
    trust_file: Path | None,
) -> int:
    """Serve the model version SageMaker downloaded: verify its digest, then listen for /ping and /invocations.

    Settings come from the environment (MODELCAT_MODEL, MODELCAT_VERSION, MODELCAT_DIGEST; options
    override them). The OIP v2 routes of `modelcat replica` are served too. Nothing listens until
    the bytes are verified: on a digest mismatch, or a bad, untrusted or (when the trust file
    requires one) missing signature, the command exits 1 with the reason; a missing setting or an
    ambiguous model directory exits 2. Once listening it prints one line with the URL.
    """
    settings = {
        "MODELCAT_MODEL": _setting(model_name, "MODELCAT_MODEL"),
        "MODELCAT_VERSION": _setting(model_version, "MODELCAT_VERSION"),
        "MODELCAT_DIGEST": _setting(digest, "MODELCAT_DIGEST"),
    }
    missing = [name for name, value in settings.items() if value is None]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: the container's environment "
            "must name the model version to serve (or pass --model, --version, --digest)"
        )
    name, version, expected = (str(v) for v in settings.values())
    bind_port = _port(port)
    path = find_artifact(_setting(artifact, "MODELCAT_ARTIFACT"), model_dir)

    from catalog.serving.replica import create_app
    from catalog.serving.replica import serve as run_server
    from catalog.serving.replica_model import load_verified
    from catalog.serving.signature import check_release, signature_info, signature_text

    signed = check_release(path, bundle, bundle_digest, trust_file, name, version)
    loaded = load_verified(path, expected, threads=threads)
    app = create_app(loaded, name, version, max_body_bytes=max_request_bytes, sagemaker=True, signed_by=signed)

    def announce(url: str) -> None:
        if fmt == "json":
            fields = {"model": name, "version": version, "digest": loaded.digest, "artifact": str(path), "url": url}
            line = json.dumps(fields | {"signature": signature_info(signed)})
        else:
            signature = signature_text(signature_info(signed))
            line = f"serve {name} {version} {loaded.digest} ({signature}) from {path} listening on {url}"
        click.echo(line)

    stopped_by = run_server(app, host=host, port=bind_port, drain_seconds=drain_seconds, on_listening=announce)
    reason = ", ".join(signal.Signals(s).name for s in stopped_by) or "shutdown"
    click.echo(f"serve {name} {version} stopped ({reason})", err=True)
    return 0


if __name__ == "__main__":
    serve()
