"""Fixtures of the end-to-end deploy tests: catalog projects driven through the real CLI.

``deployed`` is one project applied once and shared by the tests of a module (each test starts
from ``converged``: what runs matches the project's catalog as the previous test left it);
``fresh_project`` is a project of its own that nothing has applied yet. Either is destroyed at the
end, and every process it recorded or left behind is stopped, whether the test passed or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.project import Project


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project.create(tmp_path_factory.mktemp("deployed"))
    try:
        project.first_apply = project.run("apply", "--auto-approve")
        yield project
    finally:
        project.cleanup()


@pytest.fixture
def converged(deployed: Project) -> Project:
    deployed.thaw()
    deployed.converge()
    return deployed


@pytest.fixture
def fresh_project(tmp_path: Path) -> Iterator[Project]:
    project = Project.create(tmp_path / "project")
    try:
        yield project
    finally:
        project.cleanup()
