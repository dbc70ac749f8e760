"""``modelcat smoke`` and ``modelcat predict`` against a stand-in router: a loopback HTTP server
that splits as a router does (the real bucket hash), named as the application's router in the
project's run records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog.cli.main import main
from catalog.domain.routing import bucket_table, pick_version
from catalog.provider.runstate import RouteRecord, RunDir
from tests.deploy.project import small_catalog
from tests.helpers import with_demo_keys

FRAUD = {  # fraud-scorer's digests in the demo catalog
    "1.3.0": "sha256:fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0",
    "1.4.0": "sha256:344eb462ff67b4412ea59c01ab3b175619c097825114981a233597eaa0c8575b",
}


class StandInRouter:
    """A loopback HTTP server answering OIP inference as a router splitting fraud-scorer by
    ``weights`` (sticky on x-user-id, the real bucket hash), with the catalog's digests."""

    def __init__(self, weights: dict[str, int]) -> None:
        slots = bucket_table(weights.items())
        requests: list[dict[str, object]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                model = self.path.split("/")[3]
                requests.append({"model": model, "body": body})
                version = pick_version(slots, self.headers.get("x-user-id"), salt=model).version
                data = json.dumps({"model_name": model, "model_version": version, "outputs": []}).encode()
                self.send_response(200)
                for name, value in (("x-model-version", version), ("x-model-digest", FRAUD[version]),
                                    ("x-request-id", "r1"), ("content-type", "application/json"),
                                    ("content-length", str(len(data)))):  # fmt: skip
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.requests = requests
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for the loop's next poll: 0.05 s rather than the default 0.5 s
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def project_routed_by(folder: Path, router: StandInRouter, catalog_weights: tuple[int, int] = (90, 10)) -> Path:
    """A catalog (checkout: fraud-scorer 1.3.0 / 1.4.0 at ``catalog_weights``) whose run records
    name ``router`` as checkout's router."""
    text = small_catalog().replace("weight: 90}", f"weight: {catalog_weights[0]}}}")
    text = text.replace("weight: 10}", f"weight: {catalog_weights[1]}}}")
    (folder / "models.yaml").write_text(text, encoding="utf-8")
    with_demo_keys(folder)
    run = RunDir(folder / ".modelcat" / "run" / "production-local")
    run.write_route(RouteRecord("checkout", router.url, 0, 0, str(run.table_file("checkout")), "", ""))
    return folder / "models.yaml"


@pytest.fixture
def router_at_90() -> Iterator[StandInRouter]:
    router = StandInRouter({"1.3.0": 90, "1.4.0": 10})
    yield router
    router.close()


def modelcat(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.slow
def test_smoke_exits_1_when_an_observed_share_differs_from_the_catalog_weight_beyond_tolerance(
    tmp_path: Path, router_at_90: StandInRouter
) -> None:
    catalog = project_routed_by(tmp_path, router_at_90, (80, 20))
    code, out = modelcat("smoke", "--catalog", str(catalog), "--format", "json")
    assert code == 1, out
    report = json.loads(out)
    assert not report["ok"]
    rows = {r["version"]: r for r in report["rows"]}
    assert rows["1.3.0"]["catalog_weight"] == 80 and rows["1.3.0"]["observed"] > 85, rows
    assert not rows["1.3.0"]["within_tolerance"] and rows["1.3.0"]["accepted"][1] < rows["1.3.0"]["observed"]
    assert rows["1.3.0"]["failures"] == rows["1.3.0"]["mismatches"] == 0
    code, text = modelcat("smoke", "--catalog", str(catalog))
    assert code == 1 and "OUT OF RANGE" in text and "outside the range" in text, text

    catalog = project_routed_by(tmp_path, router_at_90, (90, 10))  # what the router does
    code, out = modelcat("smoke", "--catalog", str(catalog), "--format", "json")
    assert code == 0, out
    assert all(r["within_tolerance"] for r in json.loads(out)["rows"])


def test_predict_names_a_missing_input_file_and_suggests_a_model(tmp_path: Path, router_at_90: StandInRouter) -> None:
    catalog = str(project_routed_by(tmp_path, router_at_90))
    code, out = modelcat("predict", "checkout", "--catalog", catalog, "--input", "@nosuch.json")
    assert code == 2, out
    assert "nosuch.json" in out and "No such file" in out and "internal error" not in out, out

    code, out = modelcat("predict", "checkout", "--catalog", catalog, "--model", "fraud-scroer")
    assert code == 2, out
    assert "did you mean 'fraud-scorer'?" in out, out

    code, out = modelcat("predict", "checkout", "--catalog", catalog, "--key", "alice", "--format", "json")
    assert code == 0, out  # --model left out: checkout routes one model
    assert json.loads(out)["status"] == 200
    assert [r["model"] for r in router_at_90.requests] == ["fraud-scorer"]
