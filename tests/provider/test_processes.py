"""Process control and run-state records, without Terraform: identity, start, refusal, stop."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from catalog.cli.render import problem_lines
from catalog.errors import ProcessFailed, RunStateError
from catalog.provider.config import problem_text
from catalog.provider.install import install_provider, provider_version, write_cli_config
from catalog.provider.processes import (
    ProcessId,
    is_alive,
    port_is_free,
    replica_argv,
    start_process,
    start_time_of,
    stop_process,
    wait_replica_ready,
)
from catalog.provider.runstate import (
    EndpointRecord,
    Instance,
    RouteRecord,
    RunDir,
    load_endpoint_records,
    load_route_records,
    probe_endpoint,
)
from catalog.validate import validate_bytes
from tests.provider.terraform_fixtures import FRAUD_130, FRAUD_140, ROOT

PY = sys.executable


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_recycled_pid_is_neither_alive_nor_signalled(sleeper: subprocess.Popen[bytes]) -> None:
    start = start_time_of(sleeper.pid)
    assert start is not None
    ours, impostor = ProcessId(sleeper.pid, start), ProcessId(sleeper.pid, start + 1)
    assert is_alive(ours) and not is_alive(impostor)
    assert stop_process(impostor) is False
    assert sleeper.poll() is None  # untouched
    assert stop_process(ours, drain=5) is True
    assert sleeper.wait(5) is not None and not is_alive(ours)


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    code = "import json, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code += "print(json.dumps({'url': 'http://127.0.0.1:9'}), flush=True); time.sleep(60)"
    started = start_process([PY, "-c", code], tmp_path / "stubborn.log", "stubborn")
    began = time.monotonic()
    assert stop_process(started.ident, drain=0.5)
    assert not is_alive(started.ident) and time.monotonic() - began < 30  # not the 60 s it would sleep


def test_the_url_comes_from_the_first_json_line_of_the_log(tmp_path: Path) -> None:
    code = "import json, sys, time; print('warming up', file=sys.stderr, flush=True); "
    code += "print(json.dumps({'url': 'http://127.0.0.1:1234'}), flush=True); time.sleep(60)"
    started = start_process([PY, "-c", code], tmp_path / "ok.log", "announcer")
    try:
        assert started.url == "http://127.0.0.1:1234"
        assert "warming up" in started.log.read_text()
        assert os.getsid(started.ident.pid) == started.ident.pid  # a session of its own
    finally:
        stop_process(started.ident, drain=1)


def test_a_process_that_exits_first_fails_with_its_log_tail(tmp_path: Path) -> None:
    code = "import sys; print('cannot bind: address in use', file=sys.stderr); sys.exit(3)"
    with pytest.raises(ProcessFailed) as info:
        start_process([PY, "-c", code], tmp_path / "bad.log", "doomed")
    assert "doomed exited with status 3" in str(info.value)
    assert "cannot bind: address in use" in info.value.tail


def test_a_replica_given_the_wrong_digest_refuses_naming_both(tmp_path: Path) -> None:
    argv = replica_argv("fraud-scorer", "1.3.0", ROOT / FRAUD_130["artifact"], FRAUD_140["digest"], "127.0.0.1")
    with pytest.raises(ProcessFailed) as info:
        start_process(argv, tmp_path / "replica.log", "replica")
    assert "digest mismatch" in info.value.tail
    assert FRAUD_130["digest"] in info.value.tail and FRAUD_140["digest"] in info.value.tail


def test_a_replica_serving_other_bytes_than_expected_is_stopped(tmp_path: Path) -> None:
    argv = replica_argv("fraud-scorer", "1.3.0", ROOT / FRAUD_130["artifact"], FRAUD_130["digest"], "127.0.0.1")
    started = start_process(argv, tmp_path / "replica.log", "replica")
    try:
        with pytest.raises(ProcessFailed) as info:
            wait_replica_ready(started, "fraud-scorer", "1.3.0", FRAUD_140["digest"])
        assert FRAUD_130["digest"] in str(info.value) and FRAUD_140["digest"] in str(info.value)
        assert not is_alive(started.ident)
        port = int(started.url.rsplit(":", 1)[1])
        assert port_is_free("127.0.0.1", port)
    finally:
        stop_process(started.ident, drain=1)


def test_a_replica_the_provider_starts_serves_grpc_where_it_announced(tmp_path: Path) -> None:
    import grpc

    from catalog.serving.oip_grpc import inference_pb2 as pb
    from catalog.serving.oip_grpc.inference_pb2_grpc import GRPCInferenceServiceStub

    argv = replica_argv("fraud-scorer", "1.3.0", ROOT / FRAUD_130["artifact"], FRAUD_130["digest"], "127.0.0.1")
    started = start_process(argv, tmp_path / "replica.log", "replica")
    try:
        wait_replica_ready(started, "fraud-scorer", "1.3.0", FRAUD_130["digest"])
        host, port = started.grpc.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        with grpc.insecure_channel(started.grpc) as channel:
            metadata = GRPCInferenceServiceStub(channel).ModelMetadata(pb.ModelMetadataRequest(name="fraud-scorer"))
        assert metadata.properties["model_digest"] == FRAUD_130["digest"]
    finally:
        stop_process(started.ident, drain=1)
    assert port_is_free("127.0.0.1", int(port))


def test_an_instance_keeps_its_grpc_address_on_record(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    run = RunDir(tmp_path / "run")
    instance = Instance(sleeper.pid, start_time_of(sleeper.pid) or 0, "http://127.0.0.1:9", "", grpc="127.0.0.1:10")
    record = EndpointRecord("app.fraud-scorer.1.3.0", "fraud-scorer", "1.3.0", FRAUD_130["digest"], "/x", "127.0.0.1")
    run.write_endpoint(record.with_instances([instance]))
    stored = run.read_endpoint(record.name)
    assert stored is not None and [i.grpc for i in stored.instances] == ["127.0.0.1:10"]


def test_records_round_trip_and_are_listed_for_status(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    run = RunDir(tmp_path / "run")
    start = start_time_of(sleeper.pid) or 0
    live = Instance(sleeper.pid, start, "http://127.0.0.1:9", str(run.log_file("a")))
    record = EndpointRecord("app.fraud-scorer.1.3.0", "fraud-scorer", "1.3.0", FRAUD_130["digest"], "/x", "127.0.0.1")
    written = run.write_endpoint(record.with_instances([live]))
    assert run.read_endpoint(record.name) == written
    deposed = run.depose_endpoint(written)
    assert deposed.deposed and run.read_endpoint(record.name) is None
    assert run.write_endpoint(record).name == record.name
    assert [(r.name, r.deposed) for r in load_endpoint_records(run.root)] == [(record.name, False), (record.name, True)]
    assert [r.file for r in run.endpoint_records(record.name)][1] == deposed.file

    [status] = probe_endpoint(deposed)  # alive, but nothing answers on port 9
    assert status.alive and not status.healthy and status.error
    dead = deposed.with_instances([Instance(sleeper.pid, start + 1, live.url, "")])
    assert probe_endpoint(dead)[0].alive is False

    route = RouteRecord("checkout", "http://127.0.0.1:9", 1, 2, str(run.table_file("checkout")), "", "")
    run.write_route(route)
    run.table_file("checkout").write_text("{}")  # a table is not a record
    assert [r.application for r in load_route_records(run.root)] == ["checkout"]
    run.route_file("checkout").write_text("{not json")
    with pytest.raises(RunStateError):
        load_route_records(run.root)
    assert load_endpoint_records(tmp_path / "nowhere") == [] and load_route_records(tmp_path / "nowhere") == []


def test_install_writes_an_executable_mirror_entry_once(tmp_path: Path) -> None:
    version = provider_version()
    path = install_provider(tmp_path / "mirror")
    expected = f"registry.terraform.io/modelcat/modelcat/{version}/linux_amd64/terraform-provider-modelcat_v{version}"
    assert path == tmp_path / "mirror" / expected
    assert path.read_text().startswith(f"#!{sys.executable}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    before = path.stat()
    assert install_provider(tmp_path / "mirror") == path
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten

    config = write_cli_config(tmp_path / "cli.tfrc", tmp_path / "mirror")
    text = config.read_text()
    assert f"path    = {json.dumps(str((tmp_path / 'mirror').resolve()))}" in text
    assert 'include = ["registry.terraform.io/modelcat/*"]' in text
    assert 'exclude = ["registry.terraform.io/modelcat/*"]' in text
    inode = config.stat().st_ino
    write_cli_config(config, tmp_path / "mirror")
    assert config.stat().st_ino == inode
    write_cli_config(config, tmp_path / "elsewhere")
    assert "elsewhere" in config.read_text()


def test_diagnostics_carry_the_lines_modelcat_validate_prints() -> None:
    text = (ROOT / "models.yaml").read_text().replace("{version: 1.4.0, weight: 10}", "{version: 1.5.0, weight: 10}")
    text = text.replace("{version: 3.2.0, weight: 100}", "{version: 3.2.0, weight: 90}")
    report = validate_bytes(text.encode(), "models.yaml")
    assert len(report.problems) >= 2 and any(p.hint for p in report.problems)
    assert problem_text(report.problems).splitlines() == [click.unstyle(x) for x in problem_lines(report.problems)]
