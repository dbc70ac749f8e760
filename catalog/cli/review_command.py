"""``modelcat review BASE``: one pull-request check: a Markdown comment, a SARIF file, a JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from catalog.cli.common import catalog_option, command, examples, parse_now
from catalog.cli.render import Failure, verdict
from catalog.wording import plural

if TYPE_CHECKING:
    from catalog.review import Review

__all__ = ["review", "review_json", "review_markdown"]

COMMENT, SARIF, REPORT = "comment.md", "review.sarif", "review.json"


def _checks(r: Review) -> list[tuple[str, bool | None, str]]:
    """(check, passed (None: not run), what it found) for the summary table."""
    rows: list[tuple[str, bool | None, str]] = []
    n = len(r.problems)
    rows.append(("validate", not r.problems, "valid" if not n else plural(n, "error")))
    if r.diff is None:
        return rows
    failed = r.failed_artifacts
    if r.verified:
        what = f"{len(r.verified)} verified" if not failed else f"{len(failed)} of {len(r.verified)} failed"
        rows.append(("artifacts the change touches", not failed, what))
    else:
        rows.append(("artifacts the change touches", None, "none touched"))
    bad = r.failed_signatures
    if r.signatures:
        what = f"{len(r.signatures)} verified" if not bad else f"{len(bad)} of {len(r.signatures)} failed"
        rows.append(("signatures the change touches", not bad, what))
    if r.policy is not None:
        p = r.policy
        waived = f", {len(p.waived)} waived" if p.waived else ""
        touched = plural(r.subjects, "subject")
        what = f"{len(p.denies)} denied, {plural(len(p.warnings), 'warning')}{waived} ({touched} the change touches)"
        rows.append(("policies", not p.denies, what))
    if r.blast is not None:
        counts = r.blast.counts
        rows.append(("blast radius", None, ", ".join(f"{n} to {a}" for a, n in counts.items())))
    return rows


def review_markdown(r: Review, head_label: str = "working tree") -> str:
    """The pull-request comment."""
    from catalog.cli.diff_render import diff_markdown
    from catalog.diffing import DiffOutcome, Side
    from catalog.policy.render import to_markdown

    blocking = len(r.blocking)
    if r.ok:
        title = "## ✅ modelcat review: nothing blocks this change"
    else:
        title = (
            f"## ❌ modelcat review: {plural(blocking, 'problem')} {'blocks' if blocking == 1 else 'block'} this change"
        )
    out = [title, "", f"`{r.base}` → {head_label} (`{r.file}`)", ""]
    out += [f"> {note}" for note in r.notes] + ([""] if r.notes else [])
    out += ["| check | | result |", "| --- | --- | --- |"]
    for name, passed, what in _checks(r):
        mark = "✅" if passed else "❌" if passed is False else "·"
        out.append(f"| {name} | {mark} | {what} |")
    out.append("")
    if r.ok and r.diff is not None and r.diff.empty:
        out += ["The catalog is unchanged.", ""]
    elif r.ok:
        out += ["Valid, every artifact the change adds or alters verified, no policy denies it.", ""]
    if r.problems:
        out += ["### Validation", "", "| where | problem |", "| --- | --- |"]
        out += [f"| `{p.file}:{p.line}:{p.column}` | {p.message.replace('|', '/')} |" for p in r.problems]
        out.append("")
    if r.failed_artifacts:
        out += ["### Artifacts", "", "| version | problem |", "| --- | --- |"]
        out += [f"| {a.model} {a.version} | {a.message.replace('|', '/')} |" for a in r.failed_artifacts]
        out.append("")
    if r.failed_signatures:
        out += ["### Signatures", "", "| version | problem |", "| --- | --- |"]
        out += [f"| {c.subject} | {c.message.replace('|', '/')} |" for c in r.failed_signatures]
        out.append("")
    if r.policy is not None and (r.policy.findings or r.policy.waived):
        body = to_markdown(r.policy).splitlines()
        out += ["### Policies", "", *body[2:], ""]  # without its own title
    if r.rollout_commits:
        out += ["### Rollout and rollback commits", ""]
        out += [f"- {c.line()}" for c in r.rollout_commits]
        out.append("")
    if r.diff is not None:
        base = Side(file=r.file, revision=r.base, present=True)
        head = Side(file=r.file, revision=None, present=True)
        changes = diff_markdown(DiffOutcome(base, head, r.diff, r.blast, [])).splitlines()
        out += ["### What changes", "", *changes[2:]]  # without its own title
    return "\n".join(out).rstrip() + "\n"


def review_json(r: Review) -> dict[str, Any]:
    from dataclasses import asdict

    from catalog.policy.render import as_dict as policy_dict

    failure = Failure(
        "review_blocked",
        f"review: {plural(len(r.blocking), 'problem')} {'blocks' if len(r.blocking) == 1 else 'block'} this change",
        f"the comment ({COMMENT}) and the report ({REPORT}) list each one and where it is",
    )
    return {
        **verdict(None if r.ok else failure),
        "exit_code": r.exit_code,
        "base": r.base,
        "file": r.file,
        "notes": r.notes,
        "checks": [{"check": n, "passed": p, "result": w} for n, p, w in _checks(r)],
        "problems": [p.as_dict() for p in r.problems],
        "artifacts": [asdict(a) for a in r.verified],
        "signatures": [asdict(c) for c in r.signatures],
        "policy": policy_dict(r.policy) if r.policy is not None else None,
        "diff": r.diff.model_dump(mode="json") if r.diff is not None else None,
        "blast_radius": r.blast.model_dump(mode="json") if r.blast is not None else None,
        "rollout_commits": [{**c.as_json(), "line": c.line()} for c in r.rollout_commits],
    }


@click.command(
    "review",
    epilog=examples("modelcat review origin/main", "modelcat review origin/main --out review --now 2027-01-01"),
)
@click.argument("base")
@catalog_option()
@click.option(
    "--out",
    "out_dir",
    default="review",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder for {COMMENT} (the PR comment), {SARIF} and {REPORT}.",
)
@click.option(
    "--policies",
    "policies_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Rules folder (default: policies/ beside the catalog).",
)
@click.option("--now", help="Judge ages as of this date (default: today).")
@click.option("--target", help="Blast radius as if every environment deployed to this target.")
@click.option("--no-verify", is_flag=True, help="Skip fetching and checking the touched artifacts.")
@command(formats=("text", "json", "markdown"))
def review(
    base: str,
    path: Path,
    out_dir: Path,
    policies_dir: Path | None,
    now: str | None,
    target: str | None,
    no_verify: bool,
    fmt: str,
) -> int:
    """Review the change from BASE (a git revision, e.g. origin/main) to the working tree's catalog:
    validate, verify the artifacts the change touches, run the policies on what it touches, diff,
    and the resources an apply would change. Writes the comment, SARIF and JSON into --out.
    Exit 0: nothing blocks; 1: something does (invalid, an artifact failed, a policy denies)."""
    from catalog.files import atomic_write
    from catalog.nogc import no_gc
    from catalog.policy.sarif import sarif_log
    from catalog.review import review as run_review

    with no_gc():
        result = run_review(
            path,
            base,
            policies_dir=policies_dir if policies_dir is not None else path.parent / "policies",
            now=parse_now(now),
            target=target,
            verify=not no_verify,
        )
    comment = review_markdown(result)
    report = review_json(result)
    assert result.policy is not None
    sarif = sarif_log(result.policy, path)  # before writing anything: it asks git where the repository is
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / COMMENT, comment.encode())
    atomic_write(out_dir / REPORT, (json.dumps(report, indent=2) + "\n").encode())
    atomic_write(out_dir / SARIF, (sarif + "\n").encode())
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    elif fmt == "markdown":
        click.echo(comment, nl=False)
    else:
        for name, passed, what in _checks(result):
            mark = "ok  " if passed else "FAIL" if passed is False else "    "
            click.echo(f"{mark} {name}: {what}")
        for c in result.rollout_commits:
            click.echo(f"     {c.line()}")
        for p in result.problems:
            click.echo(f"{p.file}:{p.line}:{p.column}: error: {p.message}", err=True)
        if result.policy is not None:
            for f in result.policy.findings:
                if f.rule != "VALIDATE":  # printed above as validate's errors
                    click.echo(f"{f.file}:{f.line}:{f.column}: {f.severity}: {f.rule} {f.message} [{f.subject}]")
        verdict = "nothing blocks this change" if result.ok else "this change is blocked"
        click.echo(f"review: {verdict}; wrote {out_dir / COMMENT}, {out_dir / SARIF}, {out_dir / REPORT}")
    return result.exit_code
