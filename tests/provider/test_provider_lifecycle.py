"""The provider under real Terraform: init offline, apply, heal, reweight, destroy.

One applied setup is shared by the tests of this module, in order: two endpoints of the demo
catalog's fraud-scorer (1.3.0 with 2 replicas, 1.4.0 with 1) behind the router of "checkout".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog.provider.processes import is_alive
from catalog.provider.runstate import RunDir, load_endpoint_records, load_route_records, probe_endpoint
from tests.provider.terraform_fixtures import (
    DEMO,
    FEATURES,
    FRAUD_130,
    FRAUD_140,
    Workspace,
    busy_ports,
    endpoint_block,
    errors_text,
    infer,
    model_block,
    provider_block,
    route_block,
)

pytestmark = pytest.mark.slow


def config(ws: Workspace, weights: tuple[int, int] = (90, 10), replicas: int = 2) -> dict[str, Any]:
    document = provider_block(DEMO, ws.run_dir)
    main = endpoint_block("checkout.fraud-scorer.1.3.0", FRAUD_130, replicas)
    main["lifecycle"] = {"create_before_destroy": True}  # as the synthesizer writes it
    document["resource"] = {
        "modelcat_endpoint": {
            "e": main,
            "e14": endpoint_block("fraud-140", FRAUD_140, 1),
        },
        "modelcat_route": {
            "r": {
                "application": "checkout",
                "outcomes": {"is_fraud": "label"},
                "model": [
                    model_block(
                        "fraud-scorer",
                        route_block(FRAUD_130, weights[0], "e", grpc=True),
                        route_block(FRAUD_140, weights[1], "e14", grpc=True),
                    )
                ],
            }
        },
    }
    document["output"] = {
        "urls": {"value": "${modelcat_endpoint.e.urls}"},
        "router": {"value": "${modelcat_route.r.url}"},
        "router_grpc": {"value": "${modelcat_route.r.grpc_address}"},
    }
    return document


def endpoint(ws: Workspace, name: str):
    record = RunDir(ws.run_dir).read_endpoint(name)
    assert record is not None, f"no record for endpoint {name}"
    return record


def router(ws: Workspace):
    record = RunDir(ws.run_dir).read_route("checkout")
    assert record is not None
    return record


def routing(ws: Workspace) -> dict[str, Any]:
    return httpx.get(f"{router(ws).url}/routing", timeout=5, trust_env=False).json()


def test_init_works_offline_and_writes_the_lock_file(workspace: Workspace) -> None:
    workspace.write_json(config(workspace))
    result = workspace.init()
    assert result.retcode == 0, result.error
    lock = (workspace.dir / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/modelcat/modelcat"' in lock
    assert '"h1:' in lock


def test_apply_starts_replicas_that_serve_the_right_bytes_behind_a_router(workspace: Workspace) -> None:
    result = workspace.apply()
    assert result.retcode == 0, errors_text(result)
    main, canary = endpoint(workspace, "checkout.fraud-scorer.1.3.0"), endpoint(workspace, "fraud-140")
    assert len(main.instances) == 2 and len(canary.instances) == 1
    assert workspace.outputs()["urls"] == [i.url for i in main.instances]
    for record, version in ((main, FRAUD_130), (canary, FRAUD_140)):
        for instance in record.instances:
            answer = infer(instance.url, "fraud-scorer")
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-model-digest"] == version["digest"]

    base = router(workspace).url
    assert workspace.outputs()["router"] == base
    seen = {}
    for user in range(40):
        answer = infer(base, "fraud-scorer", {"x-user-id": f"user-{user}"})
        assert answer.status_code == 200, answer.text
        seen[answer.headers["x-model-version"]] = answer.headers["x-model-digest"]
        again = infer(base, "fraud-scorer", {"x-user-id": f"user-{user}"})
        assert again.headers["x-model-version"] == answer.headers["x-model-version"]  # sticky
    assert seen["1.3.0"] == FRAUD_130["digest"]
    assert set(seen) <= {"1.3.0", "1.4.0"}
    tables = {r["version"]: [x["url"] for x in r["replicas"]] for r in routing(workspace)["models"][0]["routes"]}
    assert tables == {"1.3.0": [i.url for i in main.instances], "1.4.0": [canary.instances[0].url]}


def test_the_router_routes_grpc_to_the_replicas_grpc_addresses(workspace: Workspace) -> None:
    import grpc

    from catalog.serving.oip_grpc import inference_pb2 as pb
    from catalog.serving.oip_grpc.inference_pb2_grpc import GRPCInferenceServiceStub

    record = router(workspace)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", record.grpc) and workspace.outputs()["router_grpc"] == record.grpc
    main, canary = endpoint(workspace, "checkout.fraud-scorer.1.3.0"), endpoint(workspace, "fraud-140")
    table = json.loads(Path(record.table).read_text())
    addresses = {r["version"]: r["grpc_replicas"] for r in table["models"][0]["routes"]}
    assert addresses == {"1.3.0": [i.grpc for i in main.instances], "1.4.0": [canary.instances[0].grpc]}
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", a) for a in addresses["1.3.0"] + addresses["1.4.0"])
    [features] = FEATURES["inputs"]
    request = pb.ModelInferRequest(model_name="fraud-scorer")
    tensor = request.inputs.add(name=features["name"], datatype="FP32", shape=features["shape"])
    tensor.contents.fp32_contents.extend(features["data"])
    with grpc.insecure_channel(record.grpc) as channel:
        stub = GRPCInferenceServiceStub(channel)
        for user in range(10):
            answer, call = stub.ModelInfer.with_call(request, metadata=[("x-user-id", f"user-{user}")], timeout=30)
            said = dict(call.trailing_metadata())
            assert said["x-model-version"] == answer.model_version in ("1.3.0", "1.4.0")
            http = infer(record.url, "fraud-scorer", {"x-user-id": f"user-{user}"})
            assert http.headers["x-model-version"] == answer.model_version  # one key, one version
        pinned = pb.ModelInferRequest()
        pinned.CopyFrom(request)
        pinned.model_version = "1.4.0"
        assert stub.ModelInfer(pinned, timeout=30).model_version == "1.4.0"


def test_the_router_stores_the_outcome_events_of_its_declared_outcomes_in_the_stacks_analytics_folder(
    workspace: Workspace,
) -> None:
    url = f"{router(workspace).url}/v2/feedback"
    labels = {"events": [{"event_id": "chargeback-1", "unit": "user-1", "outcome": "is_fraud", "value": 1}]}
    answer = httpx.post(url, json=labels, timeout=30, trust_env=False)
    assert (answer.status_code, answer.json()) == (200, {"accepted": 1, "duplicates": 0})
    undeclared = {"events": [{"event_id": "c-2", "unit": "user-1", "outcome": "conversion", "value": 1}]}
    assert httpx.post(url, json=undeclared, timeout=30, trust_env=False).status_code == 400
    (segment,) = (workspace.run_dir / "analytics" / "outcomes" / "application=checkout").glob("day=*/*.jsonl")
    assert [json.loads(line)["event_id"] for line in segment.read_text().splitlines()] == ["chargeback-1"]


def test_import_rebuilds_the_state_from_the_records(workspace: Workspace) -> None:
    tf = workspace.tf
    assert tf.state_rm("modelcat_endpoint.e", "modelcat_route.r").retcode == 0
    assert tf.import_resource("modelcat_endpoint.e", "checkout.fraud-scorer.1.3.0").retcode == 0
    result = tf.import_resource("modelcat_route.r", "checkout")
    assert result.retcode == 0, result.error


def test_a_second_plan_shows_no_changes(workspace: Workspace) -> None:
    result = workspace.plan()
    assert result.retcode == 0, errors_text(result)
    assert workspace.actions() == {}


def test_a_killed_replica_is_planned_back_and_healed(workspace: Workspace) -> None:
    before = endpoint(workspace, "checkout.fraud-scorer.1.3.0")
    router_pid = router(workspace).pid
    victim = before.instances[0]
    os.kill(victim.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_alive(victim.ident) and time.monotonic() < deadline:
        time.sleep(0.05)

    result = workspace.plan()
    assert result.retcode == 0, errors_text(result)
    assert workspace.actions() == {"modelcat_endpoint.e": ["update"], "modelcat_route.r": ["update"]}
    change = workspace.changes()["modelcat_endpoint.e"]
    assert (change["before"]["replicas"], change["after"]["replicas"]) == (1, 2)
    assert change["after_unknown"].get("urls") is True

    result = workspace.apply()
    assert result.retcode == 0, errors_text(result)
    after = endpoint(workspace, "checkout.fraud-scorer.1.3.0")
    assert len(after.instances) == 2 and victim.pid not in [i.pid for i in after.instances]
    assert all(status.healthy for status in probe_endpoint(after))
    assert router(workspace).pid == router_pid  # the table was rewritten, the router kept
    served = {r["version"]: [x["url"] for x in r["replicas"]] for r in routing(workspace)["models"][0]["routes"]}
    assert served["1.3.0"] == [i.url for i in after.instances]
    for user in range(10):
        assert infer(router(workspace).url, "fraud-scorer", {"x-user-id": f"u{user}"}).status_code == 200


def test_a_hand_edited_table_shows_up_in_the_plan_and_a_lost_record_is_adopted(workspace: Workspace) -> None:
    canary = endpoint(workspace, "fraud-140")
    RunDir(workspace.run_dir).endpoint_file("fraud-140").unlink()  # lost: its replica still runs
    table = RunDir(workspace.run_dir).table_file("checkout")
    document = json.loads(table.read_text())
    document["models"][0]["routes"][0]["weight"] = 80
    document["models"][0]["routes"][1]["weight"] = 20
    table.write_text(json.dumps(document))

    result = workspace.plan()
    assert result.retcode == 0, errors_text(result)
    assert workspace.actions() == {"modelcat_route.r": ["update"]}
    change = workspace.changes()["modelcat_route.r"]
    assert [r["weight"] for r in change["before"]["model"][0]["route"]] == [80, 20]
    assert [r["weight"] for r in change["after"]["model"][0]["route"]] == [90, 10]
    adopted = endpoint(workspace, "fraud-140")  # proven by its command line, re-recorded by the refresh
    assert [(i.pid, i.start_time, i.url) for i in adopted.instances] == [
        (i.pid, i.start_time, i.url) for i in canary.instances
    ]


def test_a_weight_change_rewrites_the_table_without_restarting_the_router(workspace: Workspace) -> None:
    pid = router(workspace).pid
    before = endpoint(workspace, "checkout.fraud-scorer.1.3.0").instances
    workspace.write_json(config(workspace, weights=(50, 50), replicas=1))  # and scale 1.3.0 down to 1
    result = workspace.apply()
    assert result.retcode == 0, errors_text(result)
    assert router(workspace).pid == pid
    now = routing(workspace)
    assert {r["version"]: r["weight"] for r in now["models"][0]["routes"]} == {"1.3.0": 50, "1.4.0": 50}
    oldest, newest = sorted(before, key=lambda i: (i.start_time, i.pid))
    assert endpoint(workspace, "checkout.fraud-scorer.1.3.0").instances == (oldest,)  # the newest went
    assert not is_alive(newest.ident) and busy_ports([newest.url]) == []
    assert [x["url"] for x in now["models"][0]["routes"][0]["replicas"]] == [oldest.url]
    table = RunDir(workspace.run_dir).table_file("checkout")
    assert now["table"]["sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()


def test_a_replacement_starts_the_new_replicas_before_stopping_the_old(workspace: Workspace) -> None:
    old = endpoint(workspace, "checkout.fraud-scorer.1.3.0")
    result = workspace.tf.apply(json=True, replace="modelcat_endpoint.e")
    assert result.retcode == 0, errors_text(result)
    new = endpoint(workspace, "checkout.fraud-scorer.1.3.0")
    assert len(new.instances) == 1 and not {i.pid for i in new.instances} & {i.pid for i in old.instances}
    assert not any(is_alive(i.ident) for i in old.instances)
    assert busy_ports([i.url for i in old.instances]) == []
    assert [r.name for r in load_endpoint_records(workspace.run_dir) if r.deposed] == []
    served = {r["version"]: [x["url"] for x in r["replicas"]] for r in routing(workspace)["models"][0]["routes"]}
    assert served["1.3.0"] == [i.url for i in new.instances]
    done = [
        e["hook"]["action"]
        for e in result.value
        if isinstance(e, dict) and e.get("type") == "apply_complete" and e["hook"]["resource"]["addr"].endswith(".e")
    ]
    assert done == ["create", "delete"]  # create_before_destroy: the new replicas first


def test_destroy_leaves_no_process_and_no_bound_port(workspace: Workspace) -> None:
    processes = workspace.processes()
    assert len(processes) == 3  # 1 + 1 replicas and the router
    result = workspace.destroy()
    assert result.retcode == 0, errors_text(result)
    assert [ident for ident, _ in processes if is_alive(ident)] == []
    assert busy_ports([url for _, url in processes]) == []
    assert load_endpoint_records(workspace.run_dir) == [] and load_route_records(workspace.run_dir) == []
    assert not RunDir(workspace.run_dir).table_file("checkout").exists()
