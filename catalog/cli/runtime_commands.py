"""Commands on what runs: status (does it match the catalog?), predict, smoke (observed split)."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from catalog.cli.common import command, examples
from catalog.cli.deploy_commands import CATALOG_OPTION, ENV_OPTION, TARGET_OPTION
from catalog.cli.render import Failure, verdict
from catalog.errors import UsageError
from catalog.wording import plural

__all__ = ["predict", "smoke", "status"]


def _status_json(status: Any) -> dict[str, Any]:
    failure = Failure(
        "inconsistent",
        f"what runs differs from the catalog: {plural(len(status.drift), 'drift item')}",
        "'drift' lists each difference; 'modelcat plan' shows what an apply would change",
    )
    return {
        **verdict(None if status.consistent else failure),
        "consistent": status.consistent,
        "drift": status.drift,
        "stacks": [
            {
                "name": s.name,
                "environment": s.environment,
                "declared": s.declared,
                "applied": s.applied,
                "leftovers": [leftover.as_dict() for leftover in s.leftovers],
                "prometheus": None
                if s.prometheus is None
                else {"url": s.prometheus.url, "pid": s.prometheus.pid, "alive": s.prometheus.alive},
                "drift": s.drift,
            }
            for s in status.stacks
        ],
        "applications": [
            {
                "name": a.name,
                "environment": a.environment,
                "url": a.url,
                "grpc": a.grpc,
                "router_alive": a.router_alive,
                "weights_in_force": a.in_force,
                "weights_in_catalog": a.in_catalog,
                "consistent": a.consistent,
                "endpoints": [
                    {
                        "model": e.model,
                        "version": e.version,
                        "digest": e.digest,
                        "replicas_wanted": e.wanted,
                        "deposed": e.deposed,
                        "replicas": [
                            {
                                "pid": r.pid,
                                "url": r.url,
                                "alive": r.alive,
                                "ready": r.ready,
                                "digest": r.digest,
                                "healthy": r.healthy,
                                "error": r.error,
                                "signature": r.signature,
                                "signed": r.signed if r.ready else None,
                            }
                            for r in e.replicas
                        ],
                    }
                    for e in a.endpoints
                ],
                "drift": a.drift,
            }
            for a in status.applications
        ],
    }


def _weights_text(weights: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{m} " + ", ".join(f"{v}={w}%" for v, w in vs.items()) for m, vs in weights.items()) or "-"


def _echo_status(status: Any) -> None:
    for stack in status.stacks:
        if stack.declared and not stack.applied:
            click.echo(f"{stack.name}: not applied; run modelcat apply")
            continue
        for app in stack.applications:
            _echo_application(app)
        if stack.prometheus is not None:
            running = "" if stack.prometheus.alive else " " + click.style("not running", fg="red")
            click.echo(f"{stack.name}: Prometheus {stack.prometheus.url} (pid {stack.prometheus.pid}){running}")
        lines = [f"{stack.name}: {leftover.line()}" for leftover in stack.leftovers] + stack.prometheus_drift
        if not stack.declared:  # all of its drift: it is not there, and what of it still runs
            click.echo(click.style(f"{stack.name}", bold=True) + ": " + click.style("INCONSISTENT", fg="red"))
            lines = stack.drift
        for line in lines:
            click.echo(click.style(f"  drift: {line}", fg="yellow"))
    overall = "consistent" if status.consistent else f"INCONSISTENT ({plural(len(status.drift), 'drift item')})"
    click.echo(f"verdict: {overall}")


def _echo_application(app: Any) -> None:
    verdict = click.style("consistent", fg="green") if app.consistent else click.style("INCONSISTENT", fg="red")
    grpc = f" (gRPC {app.grpc})" if app.grpc else ""
    where = f"{app.url}{grpc}" if app.url else "no router"
    click.echo(click.style(f"{app.name}", bold=True) + f" ({app.environment}): {where} {verdict}")
    click.echo(f"  weights in force:   {_weights_text(app.in_force)}")
    click.echo(f"  weights in catalog: {_weights_text(app.in_catalog)}")
    for e in app.endpoints:
        flag = " (old, draining)" if e.deposed else ""
        click.echo(f"  {e.model} {e.version}{flag}: {e.healthy}/{e.wanted} healthy, catalog digest {e.digest[:19]}")
        for r in e.replicas:
            port = r.url.rsplit(":", 1)[-1]
            state = "ready" if r.ready else "NOT READY"
            digest = (r.digest or "-")[:19]
            mark = "ok" if r.healthy else click.style(r.error or "unhealthy", fg="red")
            signed = f"  {r.signed}" if r.ready else ""
            click.echo(f"    pid {r.pid:<7} port {port:<6} {state:<9} {digest}  {mark}{signed}")
    for line in app.drift:
        click.echo(click.style(f"  drift: {line}", fg="yellow"))


@click.command(epilog=examples("modelcat status", "modelcat status --env production --format json"))
@CATALOG_OPTION
@TARGET_OPTION
@ENV_OPTION
@command
def status(path: Path, target: str, envs: tuple[str, ...], fmt: str) -> int:
    """Per application: router URL, weights in force vs the catalog; per replica: pid, port, ready,
    digest, and who signed the bytes it verified ("signed by KEY vN, verified" or "unsigned"). Exit 1 when anything differs from the catalog, or runs that the catalog does not
    declare (a stack applied earlier, an old replica an interrupted apply left running)."""
    from catalog.deploy.status import catalog_status

    result = catalog_status(path, target, envs)
    if fmt == "json":
        click.echo(json.dumps(_status_json(result), indent=2))
    else:
        _echo_status(result)
    return 0 if result.consistent else 1


def _read_input(payload: str) -> Any:
    """``--input``: the request JSON itself, or @FILE holding it."""
    try:
        text = Path(payload[1:]).read_text(encoding="utf-8") if payload.startswith("@") else payload
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(f"--input {payload}: cannot read {payload[1:]}: {reason}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageError(f"--input is not JSON: {e}") from None


@click.command(
    epilog=examples(
        "modelcat predict checkout --model fraud-scorer --key alice",
        "modelcat predict checkout --model fraud-scorer --input @request.json",
    )
)
@click.argument("application")
@click.option("--model", "model_name", help="The model to ask (optional when APPLICATION routes one model).")
@click.option("--input", "payload", help="OIP v2 request JSON, or @FILE (default: an input fitting the signature).")
@click.option("--key", help="Sticky key value, sent in the binding's sticky header.")
@CATALOG_OPTION
@TARGET_OPTION
@command
def predict(
    application: str, model_name: str | None, payload: str | None, key: str | None, path: Path, target: str, fmt: str
) -> int:
    """Send one inference request through APPLICATION's router; print the answer and who served it."""

    from catalog.deploy.traffic import ask

    body = functools.partial(_read_input, payload) if payload is not None else None
    model_name, response = ask(path, application, model_name, target, key, body)
    served = {h: response.headers.get(h) for h in ("x-model-version", "x-model-digest", "x-request-id")}
    if fmt == "json":
        failure = Failure(
            "request_failed", f"{application} answered HTTP {response.status_code}", "'body' holds the answer"
        )
        ok = verdict(None if response.status_code == 200 else failure)
        click.echo(json.dumps({**ok, "status": response.status_code, **served, "body": response.json()}, indent=2))
    else:
        click.echo(f"{response.status_code} from {model_name} {served['x-model-version']} "
                   f"({served['x-model-digest']}), request {served['x-request-id']}")  # fmt: skip
        click.echo(json.dumps(response.json(), indent=2))
    return 0 if response.status_code == 200 else 1


@click.command(epilog=examples("modelcat smoke", "modelcat smoke --env production --requests 300 --protocol grpc"))
@CATALOG_OPTION
@TARGET_OPTION
@ENV_OPTION
# 1000 requests per binding tell 80 % from 90 % (tests/deploy/test_smoke_split.py measures it)
@click.option("--requests", "count", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--protocol",
    type=click.Choice(["http", "grpc"]),
    default="http",
    show_default=True,
    help="OIP over REST (JSON), or over gRPC (raw contents; the sticky key in the call's metadata).",
)
@command
def smoke(path: Path, target: str, envs: tuple[str, ...], count: int, protocol: str, fmt: str) -> int:
    """Send keyed requests through every application's router; per version, the observed share next
    to the catalog's weight and the range a correct router gives. Exit 1 on a failed request, an
    answer from bytes the catalog does not name, or a share outside its range.

    The ranges come from an exact two-sided binomial test; their level is shared among the routes
    tested (Bonferroni), so a correct deployment fails one run in 1000. Keys are user-0, user-1, ...:
    a rerun sends the same keys and gets the same split."""
    from catalog.deploy.traffic import SMOKE_ALPHA, smoke_test

    result = smoke_test(path, target, envs or None, count, protocol)
    bad, off = result.bad, result.off
    rows = [asdict(row) for row in result.rows]
    if fmt == "json":
        failure = None
        if bad or off:
            failure = Failure(
                "smoke_failed",
                f"{plural(bad, 'bad answer')} (a failed request, or an answer from bytes the catalog does not "
                f"name), {plural(off, 'share')} outside the range a correct router gives",
                "'rows' counts the failures and mismatches per version and shows each accepted range; "
                "'modelcat status' shows what runs",
            )
        click.echo(json.dumps({"rows": rows, "alpha": SMOKE_ALPHA, **verdict(failure)}, indent=2))
    else:
        click.echo(f"{'application':<22} {'model':<18} {'version':<9} {'catalog':>8} {'observed':>9}  accepted")
        for r in rows:
            low, high = r["accepted"]
            mark = "" if r["within_tolerance"] else "  OUT OF RANGE"
            click.echo(f"{r['application']:<22} {r['model']:<18} {r['version']:<9} {r['catalog_weight']:>7}% "
                       f"{r['observed']:>8}%  {low}-{high}%{mark}"
                       + (f"  {r['failures']} failed" if r["failures"] else ""))  # fmt: skip
        click.echo("every answer came from the bytes the catalog names" if bad == 0 else plural(bad, "bad answer"))
        if off:
            click.echo(f"{plural(off, 'observed share')} outside the range a router splitting by the catalog's "
                       f"weights gives (a correct one lands outside in 1 run of {round(1 / SMOKE_ALPHA)})")  # fmt: skip
    return 0 if result.ok else 1
