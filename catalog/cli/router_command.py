"""`modelcat router`: serve one application's traffic split from a routing table file."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from catalog.cli.common import command, examples
from catalog.serving import DEFAULT_MAX_BODY_BYTES
from catalog.wording import plural

__all__ = ["router"]


@click.command(
    "router",
    epilog=examples(
        "modelcat router --table checkout.json --port 8000 --analytics-dir .modelcat/run/production-local/analytics",
        "modelcat router --table /etc/modelcat/table.json --port 8080 --assignments-stdout",
    ),
)
@click.option(
    "--table",
    "table_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Routing table (JSON, see catalog.serving.table); watched and reloaded on change.",
)
@click.option("--port", required=True, type=click.IntRange(0, 65535), help="Port to listen on (0: any free port).")
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    help="Also route OIP v2 over gRPC on this port (0: any free port), to the table's grpc_replicas.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--analytics-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The stack's analytics folder: one JSON line per inference request (version, digest, key hash, "
    "status) and each routing table installed are logged there, and outcome events posted to /v2/feedback "
    "stored. Default: no log, and /v2/feedback answers 503.",
)
@click.option(
    "--assignments-stdout",
    is_flag=True,
    help="Write the assignment lines to stdout too (for a cluster's log pipeline).",
)
@click.option(
    "--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1), help="Replica read timeout, s."
)
@click.option(
    "--connect-timeout",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Replica connect timeout, s.",
)
@click.option(
    "--poll-interval",
    default=0.25,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Table file check period, s.",
)
@click.option(
    "--mirror-max-in-flight",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Copies of a shadow step's mirrored requests in flight at once; one more is dropped (and counted).",
)
@click.option(
    "--max-request-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1),
    help="The largest request body forwarded (JSON or binary tensors); a larger one is answered 413.",
)
@command
def router(
    fmt: str,
    table_path: Path,
    port: int,
    grpc_port: int | None,
    host: str,
    analytics_dir: Path | None,
    assignments_stdout: bool,
    timeout: float,
    connect_timeout: float,
    poll_interval: float,
    mirror_max_in_flight: int,
    max_request_bytes: int,
) -> int:
    """Route an application's OIP v2 inference requests to model versions by weight or sticky key.

    Prints one line once listening (with --grpc-port, the gRPC address too); stops gracefully on
    SIGTERM or Ctrl-C. Exit 1 when the table
    is invalid, 2 when it cannot be read or the address cannot be bound.
    """
    from catalog.serving.router import Router, RouterSettings
    from catalog.serving.router_server import serve

    serving_log = logging.getLogger("catalog.serving")
    if not serving_log.handlers:  # reload errors, ejected replicas: one line each on stderr
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        serving_log.addHandler(handler)
        serving_log.setLevel(logging.INFO)

    settings = RouterSettings(
        table_path=table_path,
        analytics_dir=analytics_dir,
        assignments_stdout=assignments_stdout,
        poll_interval=poll_interval,
        connect_timeout=connect_timeout,
        timeout=timeout,
        mirror_max_in_flight=mirror_max_in_flight,
        max_body_bytes=max_request_bytes,
    )
    app = Router(settings)

    def listening(url: str, grpc_address: str | None) -> None:
        live = app.live
        if fmt == "json":
            fields = {"event": "listening", "url": url, "application": live.application, "table": str(table_path)}
            line = json.dumps(fields | ({"grpc": grpc_address} if grpc_address else {}))
        else:
            also = f"gRPC on {grpc_address}, " if grpc_address else ""
            line = (
                f"modelcat router: application {live.application} listening on {url} "
                f"({also}table {table_path}, {plural(len(live.models), 'model')})"
            )
        click.echo(line)
        sys.stdout.flush()

    serve(app, host, port, on_listening=listening, grpc_port=grpc_port)
    return 0


if __name__ == "__main__":
    router()
