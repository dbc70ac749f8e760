"""`modelcat replica`: serve one model version over the Open Inference Protocol v2, verified first."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from catalog.cli.common import command, examples
from catalog.serving import DEFAULT_MAX_BODY_BYTES

__all__ = ["replica", "runtime_options", "signature_options"]

F = TypeVar("F", bound=Callable[..., Any])


def runtime_options(drain_seconds: float, drain_note: str = "") -> Callable[[F], F]:
    """--threads, --drain-seconds (default ``drain_seconds``) and --max-request-bytes: the options of
    every command that serves a model version (replica, serve)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--max-request-bytes", default=DEFAULT_MAX_BODY_BYTES, show_default=True, type=click.IntRange(1)
        )(func)
        func = click.option(
            "--drain-seconds",
            default=drain_seconds,
            show_default=True,
            type=click.FloatRange(0),
            help="On SIGTERM/SIGINT, how long in-flight requests may still run"
            + (f" ({drain_note})." if drain_note else "."),
        )(func)
        return click.option(
            "--threads", default=0, type=click.IntRange(0), help="onnxruntime intra-op threads (0: its default)."
        )(func)

    return decorate


def signature_options(env: bool = False) -> Callable[[F], F]:
    """--bundle, --bundle-digest and --trust: the release check of every command that serves a model
    version (replica, serve; ``env``: also from MODELCAT_BUNDLE, MODELCAT_BUNDLE_DIGEST, MODELCAT_TRUST)."""

    def named(variable: str) -> dict[str, Any]:
        return {"envvar": variable, "show_envvar": True} if env else {}

    def decorate(func: F) -> F:
        func = click.option(
            "--trust",
            "trust_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="JSON trust file: whether signatures are required, the trusted public keys (name, version, PEM).",
            **named("MODELCAT_TRUST"),
        )(func)
        func = click.option(
            "--bundle-digest",
            help="sha256:<64 hex> the catalog records for the bundle.",
            **named("MODELCAT_BUNDLE_DIGEST"),
        )(func)
        return click.option(
            "--bundle",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="The version's signing bundle (OpenSSF model signing), verified before anything listens.",
            **named("MODELCAT_BUNDLE"),
        )(func)

    return decorate


@click.command(
    "replica",
    epilog=examples(
        "modelcat replica --model fraud-scorer --version 1.3.0 --artifact fraud.onnx --digest sha256:fbe81f1d... --port 8001"
    ),
)
@click.option("--model", "model_name", required=True, help="Model name, as in models.yaml.")
@click.option("--version", "model_version", required=True, help="Model version, as in models.yaml.")
@click.option(
    "--artifact",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The ONNX file, or the folder holding model.onnx and its external data.",
)
@click.option("--digest", required=True, help="sha256:<64 hex> the catalog names for the artifact.")
@click.option("--port", required=True, type=click.IntRange(0, 65535), help="TCP port; 0 picks a free one.")
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    help="Also serve the Open Inference Protocol over gRPC on this TCP port; 0 picks a free one.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@runtime_options(drain_seconds=5.0)
@signature_options()
@command
def replica(
    fmt: str,
    model_name: str,
    model_version: str,
    artifact: Path,
    digest: str,
    port: int,
    grpc_port: int | None,
    host: str,
    threads: int,
    drain_seconds: float,
    max_request_bytes: int,
    bundle: Path | None,
    bundle_digest: str | None,
    trust_file: Path | None,
) -> int:
    """Verify ARTIFACT against --digest (and its signing --bundle against --trust), load it, then
    serve it until SIGTERM or SIGINT.

    Nothing listens until the bytes are verified: on a digest mismatch the command exits 1 naming
    both digests; on a bad, untrusted or (when the trust file requires one) missing signature it
    exits 1 with the reason. Once listening it prints one line with the URL (and the gRPC address
    with --grpc-port: the same model, the same checks, the same size limit).
    """
    from catalog.serving.replica import create_app, serve
    from catalog.serving.replica_model import load_verified
    from catalog.serving.signature import check_release, signature_info, signature_text

    signed = check_release(artifact, bundle, bundle_digest, trust_file, model_name, model_version)
    loaded = load_verified(artifact, digest, threads=threads)
    app = create_app(loaded, model_name, model_version, max_body_bytes=max_request_bytes, signed_by=signed)
    signature = signature_text(signature_info(signed))
    grpc_server, grpc_address = None, None
    if grpc_port is not None:
        from catalog.serving import listen
        from catalog.serving.replica_grpc import start_grpc

        grpc_server, bound = start_grpc(
            loaded, model_name, model_version, host=host, port=grpc_port, max_message_bytes=max_request_bytes,
            signed_by=signed, metrics=app.state.metrics,
        )  # fmt: skip
        grpc_address = listen.grpc_address(host, bound)

    def announce(url: str) -> None:
        if fmt == "json":
            fields = {"model": model_name, "version": model_version, "digest": loaded.digest, "url": url}
            grpc_field = {"grpc": grpc_address} if grpc_address else {}
            line = json.dumps(fields | grpc_field | {"signature": signature_info(signed)})
        else:
            also = f", gRPC on {grpc_address}," if grpc_address else ""  # the URL stays last on the line
            line = f"replica {model_name} {model_version} {loaded.digest} ({signature}){also} listening on {url}"
        click.echo(line)  # click.echo flushes: a supervisor reading stdout sees the line at once

    try:
        stopped_by = serve(app, host=host, port=port, drain_seconds=drain_seconds, on_listening=announce)
    finally:
        if grpc_server is not None:  # calls in flight get the same drain window as HTTP's
            grpc_server.stop(drain_seconds).wait()
    reason = ", ".join(signal.Signals(s).name for s in stopped_by) or "shutdown"
    click.echo(f"replica {model_name} {model_version} stopped ({reason})", err=True)
    return 0


if __name__ == "__main__":
    replica()
