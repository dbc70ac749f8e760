"""End to end through the ``modelcat`` command line: nothing runs that the catalog does not know
about. An application moved to another environment, then every application removed: plan shows
the stacks left behind to destroy, status calls them drift, apply destroys them."""

from __future__ import annotations

import pytest

from catalog.provider.processes import is_alive
from tests.deploy.project import APPLICATION, Project, output, small_catalog

pytestmark = pytest.mark.slow


def test_stacks_the_catalog_no_longer_declares_are_planned_reported_and_destroyed(fresh_project: Project) -> None:
    project = fresh_project
    project.ok("apply", "--auto-approve")
    in_production = {ident for ident, _ in project.serving()}
    assert len(in_production) == 6  # 2 x 2 replicas, the router and the stack's Prometheus

    moved = APPLICATION.replace("environment: production", "environment: staging")
    project.catalog.write_text(small_catalog().replace(APPLICATION, moved), encoding="utf-8")
    stacks = {s["name"]: s for s in project.status(codes=(1,))["stacks"]}
    assert (stacks["production-local"]["declared"], stacks["staging-local"]["applied"]) == (False, False), stacks
    running = {p["pid"] for x in stacks["production-local"]["leftovers"] for p in x["processes"]}
    assert running == {ident.pid for ident in in_production}
    plan = {s["stack"]: s for s in project.json("plan")["stacks"]}
    assert [c["action"] for c in plan["production-local"]["changes"]] == ["delete"] * 4, plan
    assert plan["production-local"]["orphan"] and not plan["staging-local"]["orphan"]
    assert [c["action"] for c in plan["staging-local"]["changes"]] == ["create"] * 4, plan

    applied = project.ok("apply", "--auto-approve")
    text = applied.stdout
    assert text.index("== staging-local: applying") < text.index("== production-local: destroying"), output(applied)
    assert "staging-local: 4 added, 0 changed, 0 destroyed" in text, output(applied)
    assert "production-local: 0 added, 0 changed, 4 destroyed" in text, output(applied)
    assert not [ident for ident in in_production if is_alive(ident)]
    status = project.status()
    assert [(a["name"], a["environment"], a["consistent"]) for a in status["applications"]] == [
        ("checkout", "staging", True)
    ]

    project.catalog.write_text(small_catalog().replace(APPLICATION, "applications: []\n"), encoding="utf-8")
    project.ok("validate")
    assert project.run("plan", "--detailed-exitcode").returncode == 2
    assert project.run("status").returncode == 1
    applied = project.ok("apply", "--auto-approve")
    assert "staging-local: 0 added, 0 changed, 4 destroyed" in applied.stdout, output(applied)
    assert not project.serving(), project.serving()
    assert project.status()["consistent"]
    assert project.run("plan", "--detailed-exitcode").returncode == 0
