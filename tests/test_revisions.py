"""One way to read a revision (``catalog.revisions``): diff, review, policy check --base and verify
--changed-since load a revision through one loader, and review and verify --changed-since verify
the same versions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from catalog import revisions
from tests.git_catalogs import demo_text
from tests.helpers import DEMO, ROOT

NOW = "2026-11-27"
RANKER_3_2_0_OUTPUT = "{name: relevance, dtype: float32, shape: [batch, 20]}\n        metrics: {ndcg@10: 0.538"


def _verified_by_both(cli) -> tuple[set[tuple[str, str]], int, set[tuple[str, str]], int]:
    """(versions, exit code) of ``verify --changed-since base``, then of ``review base``."""
    verify = cli("verify", "--changed-since", "base", "--format", "json")
    by_verify = {(r["model"], r["version"]) for r in json.loads(verify.stdout)["results"]}
    review = cli("review", "base", "--now", NOW)
    by_review = {(a["model"], a["version"]) for a in json.loads(Path("review/review.json").read_text())["artifacts"]}
    return by_verify, verify.exit_code, by_review, review.exit_code


def test_verify_changed_since_and_review_verify_the_same_versions_on_a_signature_only_change(cli, repo) -> None:
    """Only a version's declared signature changes (its bytes do not): review verified it (and
    failed it), while verify --changed-since compared the artifact block alone and checked nothing."""
    text = demo_text()
    assert RANKER_3_2_0_OUTPUT in text
    Path("models.yaml").write_text(text.replace(RANKER_3_2_0_OUTPUT, RANKER_3_2_0_OUTPUT.replace("20]", "21]")))
    by_verify, verify_code, by_review, review_code = _verified_by_both(cli)
    assert by_verify == by_review == {("search-ranker", "3.2.0")}
    assert verify_code == 1 and review_code == 1  # the artifact's real output is [batch, 20]


def test_verify_changed_since_and_review_verify_the_same_versions_when_the_base_fails_the_schema(cli, repo) -> None:
    """A base that is YAML but not a valid catalog is an empty base for both: every version is new
    (verify --changed-since compared the raw artifact blocks and checked nothing)."""
    broken = demo_text().replace("task: classification", "task: classifier", 1)
    repo.commit(broken, "a broken catalog", "broken")
    repo.git("tag", "-f", "base")
    Path("models.yaml").write_text(demo_text())
    by_verify, verify_code, by_review, _ = _verified_by_both(cli)
    everything = {(m.name, v.version) for m in revisions.load_revision(DEMO).valid().models for v in m.versions}
    assert by_verify == by_review == everything
    assert verify_code == 0


def test_the_four_commands_read_revisions_through_one_loader(cli, repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """diff, review, policy check --base and verify --changed-since each read the base through
    ``catalog.revisions`` (the only module besides gitio that reads a file at a revision)."""
    read: list[str] = []
    real = revisions.file_at_revision

    def spy(path: Path, revision: str) -> bytes | None:
        read.append(revision)
        return real(path, revision)

    monkeypatch.setattr(revisions, "file_at_revision", spy)
    commands = {
        "diff": ("diff", "base"),
        "review": ("review", "base", "--now", NOW),
        "policy check": ("policy", "check", "--base", "base", "--now", NOW),
        "verify": ("verify", "--changed-since", "base"),
    }
    for name, args in commands.items():
        read.clear()
        result = cli(*args)
        assert result.exit_code == 0, (name, result.output)
        assert read == ["base"], name
    users = [
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "catalog").rglob("*.py"))
        if re.search(r"\bfile_at_revision\b", p.read_text())
    ]
    assert users == ["catalog/gitio.py", "catalog/revisions.py"]


def test_a_revision_reuses_the_models_written_alike(repo) -> None:
    """The base, read like the head, shares the head's model objects where the text is the same."""
    Path("models.yaml").write_text(demo_text().replace("metrics: {auc: 0.928", "metrics: {auc: 0.929"))
    head = revisions.load_revision(Path("models.yaml"))
    base = revisions.load_revision(Path("models.yaml"), "base", like=head)
    assert base.present and base.source == "models.yaml@base" and base.problems == ()
    assert base.catalog is not None and head.catalog is not None
    same = [b is h for b, h in zip(base.catalog.models, head.catalog.models, strict=True)]
    assert same == [m.name != "fraud-scorer" for m in head.catalog.models]
    change = revisions.change_since(head, "base")
    assert change.touched == frozenset() and [v.version for v in change.diff.versions_changed] == ["1.4.0"]
