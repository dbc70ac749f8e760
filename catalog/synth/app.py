"""Build the CDK app from a catalog: one stack per environment and target, synthesized to JSON."""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.domain.deployment import Environment, environments
from catalog.domain.models import Catalog
from catalog.errors import UsageError
from catalog.layout import STATE_ROOT, stack_name, workspace_dir
from catalog.nogc import no_gc
from catalog.synth.base import StackContext, Target
from catalog.synth.emit import deferred_bodies, write_pending
from catalog.synth.node import prepare_jsii

__all__ = [
    "TARGETS",
    "TARGET_CLASSES",
    "TARGET_MODULES",
    "StackOutput",
    "SynthResult",
    "build_app",
    "check_environments",
    "get_target",
    "no_gc",
    "public_keys",
    "selected_environments",
    "stack_context",
    "stack_targets",
    "synthesize",
]

# Every target this modelcat synthesizes: name -> (module, class), imported only when used (the
# kubernetes one loads a large provider package). A new target (kserve, sagemaker) is one line here
# plus its module under catalog/synth/targets/; its class names the settings block it needs.
TARGET_CLASSES = {
    "local": ("catalog.synth.targets.local", "LocalTarget"),
    "kubernetes": ("catalog.synth.targets.kubernetes", "KubernetesTarget"),
    "kserve": ("catalog.synth.targets.kserve", "KServeTarget"),
    "sagemaker": ("catalog.synth.targets.sagemaker", "SageMakerTarget"),
}
TARGETS: tuple[str, ...] = tuple(TARGET_CLASSES)
TARGET_MODULES: dict[str, str] = {name: module for name, (module, _) in TARGET_CLASSES.items()}


@dataclass(frozen=True, slots=True)
class StackOutput:
    name: str
    environment: str
    target: str
    path: Path  # the stack's cdk.tf.json

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class SynthResult:
    outdir: Path
    stacks: tuple[StackOutput, ...]


def get_target(name: str) -> Target:
    """The target called ``name``, its module imported now; UsageError when modelcat has no such
    target (yet), or its module or a package it needs is not installed."""
    if name not in TARGET_CLASSES:
        raise UsageError(
            f"unknown target {name!r}: modelcat cannot synthesize it yet; the targets are {', '.join(TARGETS)}"
        )
    module_name, cls = TARGET_CLASSES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            raise UsageError(f"target {name!r} is not available in this modelcat ({module_name} is missing)") from e
        raise UsageError(f"target {name!r} needs the Python package {e.name!r}, which is not installed") from e
    target: Target = getattr(module, cls)()
    return target


def stack_targets(envs: Iterable[Environment], target: str | None = None) -> list[tuple[Environment, str]]:
    """Each environment with the target it is synthesized for: ``target`` when given, else its own.

    Raises UsageError naming the environment when that target is unknown, or needs a settings
    block (``kubernetes:``, ...) the environment does not have.
    """
    pairs = []
    for env in envs:
        chosen = target or env.target
        if chosen not in TARGET_CLASSES:
            how = "--target" if target else f"environment {env.name!r} (target: {chosen})"
            raise UsageError(
                f"{how}: modelcat cannot synthesize target {chosen!r} yet; the targets are {', '.join(TARGETS)}"
            )
        if chosen != "local" and env.settings(chosen) is None:
            raise UsageError(
                f"environment {env.name!r} has no {chosen}: block, which target {chosen} needs; "
                f"add one under environments: in the catalog, or choose another --target"
            )
        pairs.append((env, chosen))
    return pairs


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def public_keys(env: Environment, folder: Path) -> dict[str, str]:
    """The PEM text of each public key ``env``'s trust policy names, read from the catalog's
    ``folder`` (key name -> PEM); UsageError naming the key and file when one cannot be read."""
    pems = {}
    for key in env.trust.keys:
        if key.public_key is None:
            continue
        path = folder / key.public_key
        try:
            pems[key.name] = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise UsageError(f"trust key {key.name}: cannot read its public key {path}: {reason}") from e
    return pems


def stack_context(env: Environment, target: str, catalog_path: Path) -> StackContext:
    """What a target is handed for ``env``: paths as seen from where the runner runs Terraform,
    and the public keys its replicas trust."""
    name = stack_name(env.name, target)
    project = catalog_path.resolve().parent
    workdir = workspace_dir(project / STATE_ROOT, name)
    return StackContext(
        name=name,
        environment=env,
        catalog=_relative(catalog_path, workdir),
        state_root=_relative(project / STATE_ROOT, workdir),
        public_keys=public_keys(env, project),
    )


def selected_environments(catalog: Catalog, only: Iterable[str] | None = None) -> list[Environment]:
    """The environments named by applications (or just ``only``; an unknown name is a UsageError)."""
    wanted = list(only) if only is not None else None
    if wanted is not None:
        check_environments(wanted, {a.environment for a in catalog.applications})
    return environments(catalog, wanted)


def check_environments(only: Iterable[str] | None, known: Iterable[str]) -> None:
    """UsageError naming the ``known`` environments when ``only`` names another."""
    known = sorted(set(known))
    missing = sorted(set(only or ()) - set(known))
    if missing:
        raise UsageError(
            f"no application runs in environment {', '.join(missing)}; known: {', '.join(known) or 'none'}"
        )


def build_app(
    catalog: Catalog,
    catalog_path: Path,
    outdir: Path,
    target: str | None = None,
    only: Iterable[str] | None = None,
) -> tuple[object, list[StackOutput]]:
    """A ``cdktn.App`` writing to ``outdir`` with one stack per environment, not yet synthesized.

    Each environment is synthesized for ``target`` when given, else for its own declared target.
    """
    app, outputs, _ = _build(catalog, catalog_path, outdir, target, only)
    return app, outputs


def _build(
    catalog: Catalog, catalog_path: Path, outdir: Path, target: str | None, only: Iterable[str] | None
) -> tuple[Any, list[StackOutput], list[Any]]:
    pairs = stack_targets(selected_environments(catalog, only), target)
    builders = {name: get_target(name) for name in dict.fromkeys(t for _, t in pairs)}
    _make_outdir(outdir)
    prepare_jsii()
    from cdktn import App, LocalBackend, TerraformStack

    app = App(outdir=str(outdir.resolve()))  # jsii's Node keeps the cwd it started in: never relative
    outputs, stacks = [], []
    for env, env_target in pairs:
        context = stack_context(env, env_target, catalog_path)
        name = context.name
        stack = TerraformStack(app, name)
        LocalBackend(stack, path="terraform.tfstate")
        builders[env_target].build(stack, context)
        outputs.append(StackOutput(name, env.name, env_target, outdir / "stacks" / name / "cdk.tf.json"))
        stacks.append(stack)
    return app, outputs, stacks


def _make_outdir(outdir: Path) -> None:
    """``outdir`` and the folders above it created (the CDK makes only the last one); a UsageError
    naming the path when it cannot be (a file in the way, no permission)."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{outdir}: cannot create the output folder: {e.strerror or e}") from e


def synthesize(
    catalog: Catalog,
    catalog_path: Path,
    outdir: Path,
    target: str | None = None,
    only: Iterable[str] | None = None,
) -> SynthResult:
    """Synthesize every stack of ``catalog`` into ``outdir/stacks/<stack>/cdk.tf.json``: one per
    environment, for ``target`` when given, else for each environment's own target."""
    with no_gc(), deferred_bodies():  # resource bodies go into the JSON after synth, not through jsii
        app, outputs, stacks = _build(catalog, catalog_path, outdir, target, only)
        app.synth()
        for stack, output in zip(stacks, outputs, strict=True):
            write_pending(stack, output.path)
    return SynthResult(outdir, tuple(outputs))
