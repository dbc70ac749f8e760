"""`modelcat status` compares the mirror the router has in force (a shadow step) with the catalog's:
a router still mirroring after the catalog's shadow step ended, or not yet mirroring, is drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog.deploy import status as status_module
from catalog.domain.deployment import ApplicationPlan, environments
from catalog.provider.runstate import RouteRecord, RouteStatus
from catalog.validate import load_catalog
from tests.helpers import DEMO, shadow_step_demo, with_demo_keys

MIRROR = {"version": "1.4.0", "percent": 20, "max_abs_difference": 0.05}


def _checkout(path: Path) -> ApplicationPlan:
    (production,) = environments(load_catalog(path), only=["production"])
    return next(app for app in production.applications if app.name == "checkout")


def _drift(monkeypatch: pytest.MonkeyPatch, app: ApplicationPlan, mirror: dict[str, Any] | None) -> list[str]:
    """The drift of ``app`` when its router shows the catalog's weights and ``mirror`` for fraud-scorer."""
    models = []
    for binding in app.bindings:
        routes = [{"version": r.version, "weight": r.weight, "replicas": []} for r in binding.routes]
        shown = mirror if binding.model == "fraud-scorer" else None
        models.append({"name": binding.model, "routes": routes, "mirror": shown})
    shown_status = RouteStatus(app.name, 1, "http://127.0.0.1:1", True, "0" * 64, 1, None, models=tuple(models))
    monkeypatch.setattr(status_module, "probe_route", lambda record: shown_status)
    record = RouteRecord(app.name, "http://127.0.0.1:1", 1, 1, "table.json", "", "")
    status = status_module._application_status(app, record, {}, {})
    return [line for line in status.drift if "mirror" in line]


def test_a_mirror_in_force_that_the_catalog_does_not_declare_is_drift(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(shadow_step_demo())
    with_demo_keys(tmp_path)
    mirrored = _checkout(path)
    assert _drift(monkeypatch, mirrored, MIRROR) == []
    assert _drift(monkeypatch, mirrored, None) == [
        f"mirrors in force none differ from the catalog's {{'fraud-scorer': {MIRROR}}}"
    ]
    assert _drift(monkeypatch, _checkout(DEMO), MIRROR) == [
        f"mirrors in force {{'fraud-scorer': {MIRROR}}} differ from the catalog's none"
    ]
