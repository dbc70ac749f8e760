"""Commands on what runs: status (does it match the catalog?), predict, smoke (observed split)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from catalog.cli.common import command
from catalog.cli.deploy_commands import CATALOG_OPTION, ENV_OPTION, TARGET_OPTION
from catalog.cli.render import Failure, verdict
from catalog.errors import UsageError
from catalog.wording import did_you_mean, plural

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
                "drift": s.drift,
            }
            for s in status.stacks
        ],
        "applications": [
            {
                "name": a.name,
                "environment": a.environment,
                "url": a.url,
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
        lines = [f"{stack.name}: {leftover.line()}" for leftover in stack.leftovers]
        if not stack.declared:  # all of its drift: it is not there, and what of it still runs
            click.echo(click.style(f"{stack.name}", bold=True) + ": " + click.style("INCONSISTENT", fg="red"))
            lines = stack.drift
        for line in lines:
            click.echo(click.style(f"  drift: {line}", fg="yellow"))
    overall = "consistent" if status.consistent else f"INCONSISTENT ({plural(len(status.drift), 'drift item')})"
    click.echo(f"verdict: {overall}")


def _echo_application(app: Any) -> None:
    verdict = click.style("consistent", fg="green") if app.consistent else click.style("INCONSISTENT", fg="red")
    click.echo(click.style(f"{app.name}", bold=True) + f" ({app.environment}): {app.url or 'no router'} {verdict}")
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
            click.echo(f"    pid {r.pid:<7} port {port:<6} {state:<9} {digest}  {mark}")
    for line in app.drift:
        click.echo(click.style(f"  drift: {line}", fg="yellow"))


@click.command()
@CATALOG_OPTION
@TARGET_OPTION
@ENV_OPTION
@command
def status(path: Path, target: str, envs: tuple[str, ...], fmt: str) -> int:
    """Per application: router URL, weights in force vs the catalog; per replica: pid, port, ready,
    digest. Exit 1 when anything differs from the catalog, or runs that the catalog does not
    declare (a stack applied earlier, an old replica an interrupted apply left running)."""
    from catalog.deploy.stacks import select_stacks, state_root
    from catalog.deploy.status import collect_status
    from catalog.domain.deployment import environments
    from catalog.validate import validate_file

    catalog = validate_file(path).raise_for_errors()
    declared, orphans = select_stacks(path, catalog, envs)
    orphans = [s for s in orphans if s.endswith(f"-{target}")]
    result = collect_status(environments(catalog, declared), state_root(path) / "run", target, orphans)
    if fmt == "json":
        click.echo(json.dumps(_status_json(result), indent=2))
    else:
        _echo_status(result)
    return 0 if result.consistent else 1


def _router_url(path: Path, application: str, target: str) -> tuple[str, Any]:
    from catalog.deploy.stacks import state_root
    from catalog.provider.runstate import load_route_records
    from catalog.validate import validate_file

    catalog = validate_file(path).raise_for_errors()
    app = next((a for a in catalog.applications if a.name == application), None)
    if app is None:
        known = ", ".join(a.name for a in catalog.applications)
        raise UsageError(f"no application {application!r} in {path} (applications: {known})")
    run_dir = state_root(path) / "run" / f"{app.environment}-{target}"
    routes = {r.application: r for r in load_route_records(run_dir)} if run_dir.exists() else {}
    if application not in routes:
        raise UsageError(f"{application} has no router running: run 'modelcat apply' first")
    return routes[application].url, (catalog, app)


@click.command()
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

    from catalog.deploy.traffic import example_request
    from catalog.deploy.traffic import predict as send

    url, (catalog, app) = _router_url(path, application, target)
    routed = [b.model for b in app.bindings if b.enabled]
    if model_name is None:
        if len(routed) != 1:
            raise UsageError(
                f"{application} routes {len(routed)} models ({', '.join(routed)}): choose one with --model"
            )
        model_name = routed[0]
    binding = next((b for b in app.bindings if b.enabled and b.model == model_name), None)
    if binding is None:
        hint = did_you_mean(model_name, routed)
        raise UsageError(
            f"{application} does not route model {model_name!r} (it routes {', '.join(routed)})"
            + (f"; {hint.rstrip()}" if hint else "")
        )
    if payload is None:
        model = next(m for m in catalog.models if m.name == model_name)
        body = example_request(next(v for v in model.versions if v.version == binding.routes[0].version))
    else:
        try:
            text = Path(payload[1:]).read_text(encoding="utf-8") if payload.startswith("@") else payload
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise UsageError(f"--input {payload}: cannot read {payload[1:]}: {reason}") from None
        try:
            body = json.loads(text)
        except ValueError as e:
            raise UsageError(f"--input is not JSON: {e}") from None
    sticky = (binding.sticky_key, key) if key and binding.sticky_key else None
    if key and not binding.sticky_key:
        raise UsageError(f"{application}'s binding of {model_name} has no sticky_key; --key has nothing to pin")
    response = send(url, model_name, body, sticky)
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


@click.command()
@CATALOG_OPTION
@TARGET_OPTION
@ENV_OPTION
# 1000 requests per binding tell 80 % from 90 % (tests/deploy/test_smoke_split.py measures it)
@click.option("--requests", "count", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@command
def smoke(path: Path, target: str, envs: tuple[str, ...], count: int, fmt: str) -> int:
    """Send keyed requests through every application's router; per version, the observed share next
    to the catalog's weight and the range a correct router gives. Exit 1 on a failed request, an
    answer from bytes the catalog does not name, or a share outside its range.

    The ranges come from an exact two-sided binomial test; their level is shared among the routes
    tested (Bonferroni), so a correct deployment fails one run in 1000. Keys are user-0, user-1, ...:
    a rerun sends the same keys and gets the same split."""
    from catalog.deploy.traffic import SMOKE_ALPHA, example_request, sample_split, share_tolerance, smoke_keys
    from catalog.synth import selected_environments
    from catalog.validate import validate_file

    catalog = validate_file(path).raise_for_errors()
    versions = {(m.name, v.version): v for m in catalog.models for v in m.versions}
    samples = []
    for env in selected_environments(catalog, envs or None):
        for app in env.applications:
            url, _ = _router_url(path, app.name, target)
            for binding in app.bindings:
                first = versions[(binding.model, binding.routes[0].version)]
                digests = {r.version: r.endpoint.digest for r in binding.routes}
                keys = smoke_keys(count)
                sample = sample_split(url, binding.model, example_request(first), digests, keys, binding.sticky_key)
                samples.append((app, binding, sample))
    tested = sum(0 < r.weight < 100 for _, binding, _ in samples for r in binding.routes)
    alpha = SMOKE_ALPHA / max(1, tested)
    rows, bad, off = [], 0, 0
    for app, binding, sample in samples:
        bad += len(sample.failures) + len(sample.mismatches)
        answered = sum(sample.answered.values())
        for r in binding.routes:
            low, high = share_tolerance(answered, r.weight, alpha)
            within = low <= sample.answered[r.version] <= high
            off += not within
            rows.append({"application": app.name, "model": binding.model, "version": r.version,
                         "catalog_weight": r.weight, "observed": round(100 * sample.share(r.version), 1),
                         "accepted": [round(100 * n / max(1, answered), 1) for n in (low, high)],
                         "within_tolerance": within, "requests": sample.total, "failures": len(sample.failures),
                         "mismatches": len(sample.mismatches)})  # fmt: skip
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
    return 0 if bad == 0 and off == 0 else 1
