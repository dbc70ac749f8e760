"""``modelcat policy check|test|input``: Rego review policies over the catalog (and synthesized JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from catalog.cli.common import catalog_option, command, examples, parse_now
from catalog.cli.render import Failure, verdict
from catalog.wording import plural

__all__ = ["policy"]

_CATALOG = catalog_option(positional=True)
_POLICIES = click.option(
    "--policies",
    "policies_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of *.rego rules, settings.yaml, waivers.yaml and fixtures/ (default: policies/ beside the catalog).",
)
_NOW = click.option("--now", help="Compute ages and waiver expiry as of this date (default: today).")
_BASE = click.option(
    "--base", "base_ref", metavar="REF", help="Git revision to compare with (stage order, released digests)."
)
_SYNTH = click.option(
    "--synth-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="A 'modelcat synth --out' folder: also check its stacks/*/cdk.tf.json.",
)


def _folder(path: Path, policies_dir: Path | None) -> Path:
    return policies_dir if policies_dir is not None else path.parent / "policies"


@click.group(epilog=examples("modelcat policy check --base origin/main", "modelcat policy test"))
def policy() -> None:
    """Review policies (Rego v1, policies/*.rego) over the catalog: check, test, input."""


@policy.command(
    "check",
    epilog=examples(
        "modelcat policy check",
        "modelcat policy check --base origin/main --synth-dir cdktf.out --format sarif --output policy.sarif",
    ),
)
@_CATALOG
@_BASE
@_NOW
@_POLICIES
@_SYNTH
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
@command(formats=("text", "markdown", "json", "sarif"))
def check(
    path: Path,
    fmt: str,
    base_ref: str | None,
    now: str | None,
    policies_dir: Path | None,
    synth_dir: Path | None,
    output: Path | None,
) -> int:
    """Run every rule on the catalog (default models.yaml); exit 1 on any deny finding, 2 if a rule is broken."""
    from catalog.nogc import no_gc
    from catalog.policy.check import policy_check
    from catalog.policy.render import as_dict, render, summary
    from catalog.policy.sarif import sarif_log

    with no_gc():
        result = policy_check(
            path, policies_dir=_folder(path, policies_dir), now=parse_now(now), base_ref=base_ref, synth_dir=synth_dir
        )
    if fmt == "json":
        failure = Failure(
            "policy_denied",
            f"policy check: {summary(result)}",
            "fix what each deny finding names, or waive it for a while, with a reason, in policies/waivers.yaml",
        )
        text = json.dumps({**as_dict(result), **verdict(None if result.ok else failure)}, indent=2)
    else:
        text = sarif_log(result, path) if fmt == "sarif" else render(result, fmt)
    if output is not None:
        from catalog.files import atomic_write

        atomic_write(output, text.encode("utf-8"))
        click.echo(f"{output}: policy check: {summary(result)}")
    else:
        click.echo(text, nl=not text.endswith("\n"))
    return 0 if result.ok else 1


@policy.command("test", epilog=examples("modelcat policy test", "modelcat policy test --policies my-policies"))
@_POLICIES
@command
def test(fmt: str, policies_dir: Path | None) -> int:
    """Run every rule against its fixtures (policies/fixtures/<ID>/) and assert the exact findings."""
    from catalog.policy.fixtures import run_fixture_tests

    results = run_fixture_tests(policies_dir if policies_dir is not None else Path("policies"))
    failed = sum(not r.ok for r in results)
    if fmt == "json":
        rules = [
            {
                "rule": r.rule.id,
                "ok": r.ok,
                "problems": r.problems,
                "cases": [
                    {
                        "case": c.case,
                        "ok": c.ok,
                        "missing": sorted(c.expected - c.actual),
                        "unexpected": sorted(c.actual - c.expected),
                    }
                    for c in r.cases
                ],
            }
            for r in results
        ]
        failure = Failure(
            "policy_fixtures_failed",
            f"policy test: {failed} of {plural(len(results), 'rule')} fail their fixtures",
            "each failed rule lists its missing and unexpected findings per case",
        )
        click.echo(json.dumps({**verdict(failure if failed else None), "rules": rules}, indent=2))
    else:
        for r in results:
            status = "ok  " if r.ok else "FAIL"
            cases = ", ".join(f"{c.case} ({len(c.actual)})" for c in r.cases)
            click.echo(f"{status} {r.rule.id} {r.rule.title}: {cases or 'no cases'}")
            for problem in r.problems:
                click.echo(f"     {problem}")
            for c in r.cases:
                for subject, message in sorted(c.expected - c.actual):
                    click.echo(f"     {c.case}: missing    {subject}: {message}")
                for subject, message in sorted(c.actual - c.expected):
                    click.echo(f"     {c.case}: unexpected {subject}: {message}")
        click.echo(f"policy test: {len(results) - failed} of {plural(len(results), 'rule')} pass their fixtures")
    return 0 if not failed else 1


@policy.command(
    "input",
    epilog=examples(
        "modelcat policy input > input.json   # then: conftest test --all-namespaces -p policies -d policies/settings.yaml input.json"
    ),
)
@_CATALOG
@_BASE
@_NOW
@_POLICIES
@_SYNTH
@command(formats=("json",))
def input_(
    path: Path, fmt: str, base_ref: str | None, now: str | None, policies_dir: Path | None, synth_dir: Path | None
) -> int:
    """Print the rules' inputs as one JSON array (conftest evaluates each element on its own)."""
    from catalog.policy.check import policy_inputs

    inputs = policy_inputs(
        path, policies_dir=_folder(path, policies_dir), now=parse_now(now), base_ref=base_ref, synth_dir=synth_dir
    )
    click.echo(json.dumps([i.document for i in inputs], indent=2, ensure_ascii=False))
    return 0


input_.name = "input"
