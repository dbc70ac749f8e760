"""Rollouts recorded in a real git repository, as the controller commits them (issue #15's format):
each decision a commit made with ``catalog.gitwrite.commit_files`` touching models.yaml and
``rollouts/<id>.json``, with the trailers Rollout-Id, Step, Decision, Evidence and Decided-By;
and ordinary commits by hand that change weights."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from catalog.analysis.data import ArmData, Observations
from catalog.analysis.document import analysis_document
from catalog.analysis.evidence import evidence_of
from catalog.analysis.verdict import decide
from catalog.domain.effective import effective_analysis
from catalog.domain.rollouts import (
    DecisionRecord,
    RolloutPolicy,
    RolloutRecord,
    Routes,
    decide_next,
    evidence_digest,
    first_step,
    policy_digest,
    rollout_id,
    routes_at,
)
from catalog.gitwrite import commit_files, message_with_trailers
from catalog.rollout.record import policy_of
from tests.git_catalogs import GitRepo, catalog_of, demo_repository, demo_text, git_env

__all__ = [
    "APP",
    "MODEL",
    "Recorder",
    "hand_commit",
    "observations",
    "recorded_repository",
    "started_repository",
    "with_routes",
]

APP, MODEL = "checkout", "fraud-scorer"
CONTROLLER = "modelcat rollout run (pid 4242 on ci-runner)"


def _env(monkeypatch: pytest.MonkeyPatch, time: str) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", time)
    monkeypatch.setenv("GIT_AUTHOR_DATE", time)


def hand_commit(repo: GitRepo, text: str, message: str, time: str, author: str = "bob <bob@example.com>") -> str:
    """An ordinary commit of models.yaml by ``author`` at ``time``."""
    repo.catalog.write_text(text, encoding="utf-8")
    env = {**git_env(), "GIT_COMMITTER_DATE": time, "GIT_AUTHOR_DATE": time}
    for args in (["add", "models.yaml"], ["commit", "-q", "--author", author, "-m", message]):
        subprocess.run(["git", "-C", str(repo.root), *args], check=True, env=env, capture_output=True)
    return repo.git("rev-parse", "HEAD")


def observations(units: tuple[int, int], errors: int = 0, version: str = "1.4.0") -> Observations:
    """Observations of the base 1.3.0 and ``version``: two requests per unit, p99 80 ms."""
    base, new = units
    return Observations(
        APP,
        MODEL,
        "2026-12-06T20:10:00Z",
        "2026-12-06T20:40:00Z",
        (ArmData("1.3.0", base, 2 * base, 0, 10.0, 80.0, 0), ArmData(version, new, 2 * new, errors, 10.0, 80.0, 0)),
    )


@dataclass
class Recorder:
    """Commits a rollout's decisions: each one what ``decide_next`` says, as the controller would."""

    repo: GitRepo
    monkeypatch: pytest.MonkeyPatch
    version: str = "1.4.0"
    record: RolloutRecord | None = None
    shas: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.repo.catalog.read_text(encoding="utf-8")

    def _binding(self, text: str) -> tuple[Any, Any, Any]:
        catalog = catalog_of(text)
        app = next(a for a in catalog.applications if a.name == APP)
        return catalog, app, next(b for b in app.bindings if b.model == MODEL)

    def policy(self) -> RolloutPolicy:
        catalog, _, binding = self._binding(self.text)
        return policy_of(catalog, binding)

    def start(self, time: str, actor: str = "modelcat rollout start (alice <alice@example.com>)") -> str:
        _, _, binding = self._binding(self.text)
        base = tuple((r.version, r.weight) for r in binding.routes)
        started = rollout_id(APP, MODEL, self.version, _instant(time))
        self.record = RolloutRecord(started, APP, MODEL, self.version, "production", base)
        policy = self.policy()
        step = first_step(base, self.version, policy.steps)
        routes = routes_at(base, self.version, policy.steps[step - 1])
        reason = f"start: {policy.steps[step - 1]} % on {self.version}"
        decision = DecisionRecord("start", time, actor, step, routes, reason, policy={"rollout": policy.as_json()})
        return self._commit(replace(decision, policy_digest=policy_digest(decision.policy)), time)

    def decide(self, time: str, obs: Observations | None) -> str:
        """The controller's decision at ``time`` on ``obs`` (None: no analysis could be read)."""
        assert self.record is not None
        catalog, app, binding = self._binding(self.text)
        plan = effective_analysis(catalog, app, binding)
        evidence = verdict = None
        if obs is not None:
            decision = decide(plan, obs)
            verdict = next(v.verdict for v in decision.versions if v.version == self.version)
            evidence = json.loads(json.dumps(evidence_of(analysis_document(plan, obs, decision), obs)))
        policy = self.policy()
        move = decide_next(self.record, policy, verdict, time)
        assert move.decision is not None, move.reason
        recorded = {"rollout": policy.as_json(), "analysis": evidence["plan"] if evidence else None}
        made = DecisionRecord(
            move.decision, time, CONTROLLER, move.step, move.routes, move.reason, move.mirror,
            inputs=dict(move.inputs), policy=recorded, policy_digest=policy_digest(recorded), evidence=evidence,
        )  # fmt: skip
        return self._commit(made, time)

    def decide_on_document(self, time: str, document: dict[str, Any]) -> str:
        """The controller's decision at ``time`` on an analysis document that keeps no observations
        (the shadow step's), its verdict read from it."""
        assert self.record is not None
        verdict = next(v["verdict"] for v in document["versions"] if v["version"] == self.version)
        policy = self.policy()
        move = decide_next(self.record, policy, verdict, time)
        assert move.decision is not None, move.reason
        recorded = {"rollout": policy.as_json(), "analysis": document.get("plan")}
        made = DecisionRecord(
            move.decision, time, CONTROLLER, move.step, move.routes, move.reason, move.mirror,
            inputs=dict(move.inputs), policy=recorded, policy_digest=policy_digest(recorded), evidence=document,
        )  # fmt: skip
        return self._commit(made, time)

    def person(self, kind: str, time: str, actor: str, reason: str, **extra: Any) -> str:
        """A decision a person made by command (pause, resume, abort, promote --force)."""
        assert self.record is not None
        routes = self.record.routes
        step = self.record.last.step
        if kind == "abort":
            routes, step = self.record.base, 0
        if kind == "promote":
            routes, step = ((self.version, 100),), len(self.policy().steps)
        made = DecisionRecord(kind, time, actor, step, routes, reason, **extra)  # type: ignore[arg-type]
        return self._commit(made, time)

    def commit_record(self, record: RolloutRecord, time: str, decision: str = "step") -> str:
        """Commit ``record`` as it is (a tampered record, for replay's tests), models.yaml unchanged."""
        self.record = record
        name = f"rollouts/{record.rollout_id}.json"
        _env(self.monkeypatch, time)
        message = message_with_trailers(
            f"rollout {APP}/{MODEL} {self.version}: edited",
            "",
            [("Rollout-Id", record.rollout_id), ("Decision", decision)],
        )
        return commit_files(self.repo.root, {name: record.dumps().encode()}, message)

    def _commit(self, made: DecisionRecord, time: str) -> str:
        assert self.record is not None
        self.record = self.record.with_decision(made)
        index = len(self.record.decisions) - 1
        steps = len(self.policy().steps)
        name = f"rollouts/{self.record.rollout_id}.json"
        files = {name: self.record.dumps().encode()}
        if made.decision in ("start", "step", "promote", "abort"):
            files["models.yaml"] = with_routes(self.text, made.routes).encode()
        what = {"start": f"start, step {made.step} of {steps}", "step": f"step {made.step} of {steps}"}.get(
            made.decision, made.decision
        )
        shares = ", ".join(f"{v} {w} %" for v, w in made.routes)
        trailers = [
            ("Rollout-Id", self.record.rollout_id),
            ("Step", f"{made.step}/{steps}"),
            ("Decision", made.decision),
            ("Evidence", f"{name}#{index} {evidence_digest(made.evidence)}"),
            ("Decided-By", made.actor),
        ]
        subject = f"rollout {APP}/{MODEL} {self.version}: {what} ({shares})"
        _env(self.monkeypatch, time)
        sha = commit_files(self.repo.root, files, message_with_trailers(subject, made.reason, trailers))
        self.shas.append(sha)
        return sha


def with_routes(text: str, routes: Routes) -> str:
    """``text`` with checkout's fraud-scorer routes replaced, whatever they are now."""
    start = text.index("        routes: # canary")
    start = text.index("\n", start) + 1
    end = text.index("        serving:", start)
    lines = "".join(f"          - {{version: {v}, weight: {w}}}\n" for v, w in routes)
    return text[:start] + lines + text[end:]


def _instant(time: str):
    from datetime import datetime

    return datetime.fromisoformat(time)


T0 = "2026-12-01T09:00:00Z"  # the demo catalog (1.3.0 90 %, 1.4.0 10 %), committed by t
T1 = "2026-12-02T10:00:00Z"  # bob puts 1.3.0 back to 100 % by hand
T2 = "2026-12-06T20:10:00Z"  # alice starts the rollout of 1.4.0 (10 %)
T3 = "2026-12-06T20:21:00Z"  # the controller holds: too few requests
T4 = "2026-12-06T20:40:00Z"  # the controller promotes: 100 % on 1.4.0


def started_repository(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[GitRepo, Recorder]:
    """The demo repository (T0), 1.3.0 back to 100 % by hand (T1), then alice starts the rollout of
    1.4.0 (T2). The cwd is the repository; git has a fixed identity and no user configuration."""
    for key, value in git_env().items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)
    _env(monkeypatch, T0)
    repo = demo_repository(root)
    monkeypatch.chdir(repo.root)
    text = with_routes(demo_text(), (("1.3.0", 100),))
    hand_commit(repo, text, "checkout: 1.3.0 back to 100 % while 1.4.0 is checked", T1)
    recorder = Recorder(repo, monkeypatch)
    recorder.start(T2)
    return repo, recorder


def recorded_repository(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[GitRepo, Recorder]:
    """``started_repository``, then the controller holds (T3: too few requests) and promotes (T4)."""
    repo, recorder = started_repository(root, monkeypatch)
    recorder.decide(T3, observations((450, 50)))
    recorder.decide(T4, observations((9000, 1000)))
    return repo, recorder


def with_mirror(text: str, version: str, percent: int) -> str:
    """``text`` with a mirror on checkout's fraud-scorer binding (a shadow step in force)."""
    anchor = "        serving:\n          replicas: 3\n"
    assert anchor in text
    return text.replace(anchor, f"        mirror: {{version: {version}, percent: {percent}}}\n{anchor}", 1)
