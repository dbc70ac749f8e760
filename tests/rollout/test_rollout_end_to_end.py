"""Rollouts on the real local stack: a catalog in a git repository, `modelcat apply`, a client loop
sending requests through the router the whole time, and `modelcat rollout run --apply` moving the
traffic step by step (bakes of a few seconds). The tests run in order on one project: each starts
where the previous one left the binding."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from catalog.deploy.traffic import share_tolerance
from catalog.feedback.logs import tables_log
from catalog.layout import analytics_dir, run_dir, stack_name, state_root
from tests.deploy.project import ClientLoop, Project, output
from tests.git_catalogs import git_env
from tests.onnx_models import save
from tests.serving.router_fixtures import logged_assignments

pytestmark = pytest.mark.slow

BINDING = """\
        serving:
          replicas: 2
"""
ROLLOUT = """\
        serving:
          replicas: 1
        rollout:
          strategy: linear
          step_percent: 25
          interval_seconds: 2
          guardrails: {max_error_rate: 0.2}
        analysis:
          guardrails: {max_error_rate: 0.2}
          min_samples_per_arm: 20
"""
TRAILERS = ("Rollout-Id", "Step", "Decision", "Evidence", "Decided-By")


def git(project: Project, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(project.dir), *args], capture_output=True, text=True, env=git_env(),
                          check=True)  # fmt: skip
    return done.stdout.strip()


def commit_all(project: Project, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in git_env().items():
            if key.startswith("GIT_"):
                env.setenv(key, value)
        project = Project.create(tmp_path_factory.mktemp("rollout"))
        try:
            text = project.catalog.read_text(encoding="utf-8")
            assert BINDING in text
            project.catalog.write_text(text.replace(BINDING, ROLLOUT), encoding="utf-8")
            (project.dir / ".gitignore").write_text(".modelcat/\n", encoding="utf-8")
            git(project, "init", "-q", "-b", "main")
            commit_all(project, "the catalog")
            project.ok("apply", "--auto-approve")
            yield project
        finally:
            project.cleanup()


def analytics(project: Project) -> Path:
    return analytics_dir(run_dir(state_root(project.catalog), stack_name("production", "local")))


def epochs(project: Project) -> dict[str, dict[str, int]]:
    """The router's routing tables of fraud-scorer, by table hash: version -> weight."""
    lines = tables_log(analytics(project), "checkout").read_text(encoding="utf-8").splitlines()
    return {t["table"]: t["weights"]["fraud-scorer"] for t in map(json.loads, lines)}


def observed(project: Project) -> dict[str, Counter[str]]:
    """Answers per version under each routing table, from the router's assignment log."""
    counts: dict[str, Counter[str]] = {}
    for line in logged_assignments(analytics(project), "checkout"):
        if line.get("model") == "fraud-scorer":
            counts.setdefault(line["table"], Counter())[line["version"]] += 1
    return counts


def logged_since(project: Project, moment: datetime, timeout: float = 60) -> list[dict[str, Any]]:
    """fraud-scorer's assignments the router logged at ``moment`` or later, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in logged_assignments(analytics(project), "checkout")
                 if line.get("model") == "fraud-scorer" and datetime.fromisoformat(line["time"]) >= moment]  # fmt: skip
        if lines:
            return lines
        assert time.monotonic() < deadline, f"the router logged no request since {moment}"
        time.sleep(0.1)


def rollout_commits(project: Project, since: str) -> list[str]:
    return git(project, "log", "--format=%H", f"{since}..HEAD", "--grep", "^rollout ").split()


def assert_decision_commits(project: Project, since: str) -> None:
    """Every rollout commit since ``since`` has the trailers and touches models.yaml and its record only."""
    commits = rollout_commits(project, since)
    assert commits
    for sha in commits:
        text = git(project, "log", "-1", "--format=%(trailers:only,unfold)", sha)
        keys = [line.split(": ", 1)[0] for line in text.splitlines() if line]
        assert keys == list(TRAILERS), (sha, text)
        files = git(project, "show", "--name-only", "--format=", sha).splitlines()
        record = [f for f in files if f.startswith("rollouts/")]
        assert len(record) == 1 and set(files) <= {"models.yaml", record[0]}, files


def rollout(project: Project) -> dict[str, Any]:
    return project.json("rollout", "status", "checkout")


def test_start_two_steps_and_promote_under_load_with_no_failed_request(project: Project) -> None:
    since = git(project, "rev-parse", "HEAD")
    router = project.route()
    with ClientLoop(router.url, workers=3, pause=0.01) as loop:
        loop.wait_for(30)
        project.ok("rollout", "start", "checkout", "--version", "1.4.0")
        done = project.run("rollout", "run", "checkout", "--apply", "--poll", "1", "--max-seconds", "600", timeout=700)
        assert done.returncode == 0, output(done)
        loop.wait_for(30)
    assert not loop.failures, loop.failures[:10]
    assert "switched the router to 1.3.0 50 %, 1.4.0 50 %" in done.stdout, done.stdout  # before Terraform

    state = rollout(project)
    assert state["rollout"]["status"] == "promoted" and state["routes"] == [{"version": "1.4.0", "weight": 100}]
    assert state["routers"]["agree"] is True, state["routers"]
    project.status()  # consistent: catalog, Terraform state and routers agree (exit 0)
    kinds = [json.loads(git(project, "show", f"HEAD:rollouts/{state['rollout']['rollout_id']}.json"))]
    decisions = [d["decision"] for d in kinds[0]["decisions"] if d["decision"] != "hold"]
    assert decisions == ["start", "step", "step", "promote"]
    assert_decision_commits(project, since)

    tables, counts = epochs(project), observed(project)
    seen = {}
    for table, answers in counts.items():
        weights = tables[table]
        total = sum(answers.values())
        seen[weights.get("1.4.0", 0)] = total
        if total >= 30:
            low, high = share_tolerance(total, weights.get("1.4.0", 0), 0.001)
            assert low <= answers["1.4.0"] <= high, (weights, answers)
    assert {25, 50, 75, 100} <= set(seen), seen


def test_a_killed_controller_resumes_from_git_and_a_second_one_exits_2(project: Project) -> None:
    since = git(project, "rev-parse", "HEAD")
    project.ok("rollout", "start", "checkout", "--version", "1.3.0")
    with ClientLoop(project.route().url, workers=2, pause=0.01) as loop:
        first = project.start("rollout", "run", "checkout", "--apply", "--poll", "1", "--max-seconds", "600")
        first.wait_for("step 2 of 4", timeout=300)
        second = project.run("rollout", "run", "checkout", "--format", "json")
        assert second.returncode == 2, output(second)
        error = json.loads(second.stdout)["error"]
        assert error["code"] == "rollout_locked" and f"pid {first.process.pid}" in error["message"], error
        assert "rollout run checkout --apply" in error["message"]
        first.wait_for("applied production-local", timeout=300)
        first.kill()  # kill -9 of the whole process group, mid-rollout
        record_before = rollout(project)["rollout"]
        assert record_before["status"] == "running" and record_before["step"] >= 2
        again = project.run("rollout", "run", "checkout", "--apply", "--poll", "1", "--max-seconds", "600", timeout=700)
        assert again.returncode == 0, output(again)
    assert not loop.failures, loop.failures[:10]
    state = rollout(project)
    assert state["rollout"]["status"] == "promoted" and state["routes"] == [{"version": "1.3.0", "weight": 100}]
    record = json.loads(git(project, "show", f"HEAD:rollouts/{state['rollout']['rollout_id']}.json"))
    moves = [(d["decision"], d["step"]) for d in record["decisions"] if d["decision"] != "hold"]
    assert moves == [("start", 1), ("step", 2), ("step", 3), ("promote", 4)]  # nothing decided twice
    project.status()
    assert_decision_commits(project, since)


def test_a_held_analysis_does_not_step(project: Project) -> None:
    text = project.catalog.read_text(encoding="utf-8")
    held = text.replace(
        "        analysis:\n",
        "        analysis:\n          primary: {outcome: conversion, direction: increase, mde: 0.05}\n",
    ).replace("    bindings:\n      - model: fraud-scorer\n",
              "    outcomes:\n      - {name: conversion, kind: proportion}\n"
              "    bindings:\n      - model: fraud-scorer\n")  # fmt: skip
    project.catalog.write_text(held, encoding="utf-8")
    project.ok("validate")
    commit_all(project, "checkout reports conversions; the analysis decides on them")
    project.ok("apply", "--auto-approve")
    project.ok("rollout", "start", "checkout", "--version", "1.4.0")
    with ClientLoop(project.route().url, workers=2, pause=0.01) as loop:
        loop.wait_for(30)
        done = project.run("rollout", "run", "checkout", "--apply", "--poll", "1", "--max-seconds", "20", timeout=300)
    assert done.returncode == 0, output(done)
    assert "the analysis holds" in done.stdout and "stopping after 20 s" in done.stdout
    state = rollout(project)["rollout"]
    assert (state["status"], state["step"], state["last_decision"]["decision"]) == ("running", 1, "hold")
    holds = git(project, "log", "--format=%s", "-3")
    assert holds.splitlines()[0].endswith("hold at step 1 of 4: the analysis holds")
    assert "hold at" not in holds.splitlines()[1]  # one hold committed, not one per poll
    aborted = project.run("rollout", "abort", "checkout", "--reason", "no conversions reported yet")
    assert aborted.returncode == 0, output(aborted)
    project.ok("apply", "--auto-approve")
    assert rollout(project)["routes"] == [{"version": "1.3.0", "weight": 100}]
    project.status()


def test_a_manual_abort_with_apply_puts_the_base_routes_in_force_under_load(project: Project) -> None:
    # after the test above: 1.3.0 has everything and 1.4.0 no replica; the analysis holds (no conversions)
    since = git(project, "rev-parse", "HEAD")
    started = project.run("rollout", "start", "checkout", "--version", "1.4.0", "--apply", timeout=300)
    assert started.returncode == 0, output(started)
    assert "no fast switch (no replicas of fraud-scorer 1.4.0 run yet" in started.stdout  # Terraform starts it
    assert "applied production-local" in started.stdout
    assert rollout(project)["routers"]["agree"] is True
    with ClientLoop(project.route().url, workers=3, pause=0.01) as loop:
        while sum(1 for _, version, *_ in loop.answers if version == "1.4.0") < 20:  # the canary answers
            loop.wait_for(10)
        aborted = project.run("rollout", "abort", "checkout", "--apply", "--reason", "by hand, under load", timeout=300)
        returned, returned_at = time.monotonic(), datetime.now(UTC)
        loop.wait_for(100)
    assert aborted.returncode == 0, output(aborted)
    lines = aborted.stdout.splitlines()
    assert "abort: back to 1.3.0 100 %" in lines[0], lines
    switched = next(i for i, line in enumerate(lines) if line.startswith("switched the router to 1.3.0 100 % in "))
    assert any(line.startswith("applied production-local") for line in lines[switched + 1 :]), lines
    assert not loop.failures, loop.failures[:10]
    answered = list(loop.answered_after(returned))
    assert answered and {v for v, _ in answered} == {"1.3.0"}
    logged = logged_since(project, returned_at)
    assert {line["version"] for line in logged} == {"1.3.0"}  # the router's own log
    state = rollout(project)
    assert state["rollout"]["status"] == "aborted" and state["routes"] == [{"version": "1.3.0", "weight": 100}]
    assert state["routers"]["agree"] is True, state["routers"]
    project.status()
    assert_decision_commits(project, since)


def failing_model():  # type: ignore[no-untyped-def]
    """fraud-scorer's signature, but its graph reshapes 16 features into rows of 3: every request fails."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(15).standard_normal((16, 16)).astype(np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["mixed"]),
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("s", TensorProto.INT64, [2], [-1, 3])),
        helper.make_node("Reshape", ["mixed", "shape"], ["rows"]),
        helper.make_node("ReduceSum", ["rows"], ["total"], keepdims=1),
        helper.make_node("Sigmoid", ["total"], ["fraud_probability"]),
    ]
    graph = helper.make_graph(
        nodes, "broken",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("fraud_probability", TensorProto.FLOAT, ["batch", 1])],
        [weights],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-tests")
    model.ir_version = 9
    return model


def test_a_failing_version_is_aborted_and_the_traffic_is_back_on_the_base(project: Project, tmp_path: Path) -> None:
    project.replace_artifact("1.4.0", save(failing_model(), tmp_path / "broken.onnx"))
    commit_all(project, "1.4.0: new bytes (they fail at inference)")
    project.ok("rollout", "start", "checkout", "--version", "1.4.0")
    with ClientLoop(project.route().url, workers=3, pause=0.01) as loop:
        loop.wait_for(30)
        done = project.run("rollout", "run", "checkout", "--apply", "--poll", "1", "--max-seconds", "600", timeout=700)
        assert done.returncode == 1, output(done)
        after = time.monotonic()
        loop.wait_for(50)
    lines = done.stdout.splitlines()
    aborted = next(i for i, line in enumerate(lines) if "abort: back to 1.3.0 100 %" in line)
    assert lines[aborted + 1].startswith("switched the router to 1.3.0 100 % in "), lines[aborted:]
    assert any(line.startswith("applied production-local") for line in lines[aborted + 2 :]), lines[aborted:]
    answered = list(loop.answered_after(after))
    assert answered and {v for v, _ in answered} == {"1.3.0"}
    late = [a for a in loop.answers if a[3] > after and a[0] != 200]
    assert not late, late[:5]
    assert any(status >= 500 for status, *_ in loop.answers), "the broken version never answered"
    state = rollout(project)
    assert state["rollout"]["status"] == "aborted" and state["routes"] == [{"version": "1.3.0", "weight": 100}]
    assert "the analysis says roll back" in state["rollout"]["last_decision"]["reason"]
    project.status()


def test_a_shadow_step_of_a_failing_version_aborts_without_a_failed_answer(project: Project) -> None:
    # runs last: 1.4.0 fails at inference since the test above; the binding sends 1.3.0 everything
    text = project.catalog.read_text(encoding="utf-8")
    project.catalog.write_text(
        text.replace(
            "          interval_seconds: 2\n", "          interval_seconds: 2\n          shadow: {percent: 50}\n"
        ),
        encoding="utf-8",
    )
    project.ok("validate")
    commit_all(project, "checkout's rollouts begin with a shadow step")
    project.ok("rollout", "start", "checkout", "--version", "1.4.0")
    with ClientLoop(project.route().url, workers=3, pause=0.01) as loop:
        loop.wait_for(30)
        done = project.run("rollout", "run", "checkout", "--apply", "--poll", "1", "--max-seconds", "600", timeout=700)
        assert done.returncode == 1, output(done)
        loop.wait_for(30)
    assert not loop.failures, loop.failures[:10]  # the copies' answers are never returned
    assert {v for _, v, *_ in loop.answers} == {"1.3.0"}
    record = rollout(project)["rollout"]
    assert record["status"] == "aborted" and record["mirror"] is None
    first = json.loads(git(project, "show", f"HEAD:rollouts/{record['rollout_id']}.json"))["decisions"][0]
    assert first["step"] == 0 and first["mirror"] == {"version": "1.4.0", "percent": 50}
    last = json.loads(git(project, "show", f"HEAD:rollouts/{record['rollout_id']}.json"))["decisions"][-1]
    assert last["evidence"]["schema"] == "modelcat/shadow-analysis-v1" and last["routes"] == [
        {"version": "1.3.0", "weight": 100}
    ]
    project.status()
