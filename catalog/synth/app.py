"""Build the CDK app from a catalog: one stack per environment and target, synthesized to JSON."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from catalog.domain.deployment import environments
from catalog.domain.models import Catalog
from catalog.errors import UsageError
from catalog.synth.base import StackContext, Target, stack_name
from catalog.synth.node import prepare_jsii

__all__ = ["STATE_ROOT", "TARGETS", "StackOutput", "SynthResult", "build_app", "get_target", "synthesize"]

STATE_ROOT = ".modelcat"
TARGETS = ("local",)


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
    if name == "local":
        from catalog.synth.targets.local import LocalTarget

        return LocalTarget()
    raise UsageError(f"unknown target {name!r}; the targets are {', '.join(TARGETS)}")


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def build_app(
    catalog: Catalog, catalog_path: Path, outdir: Path, target: str = "local", only: Iterable[str] | None = None
) -> tuple[object, list[StackOutput]]:
    """A ``cdktn.App`` writing to ``outdir`` with one stack per environment, not yet synthesized."""
    wanted = list(only) if only is not None else None
    envs = environments(catalog, wanted)
    if wanted is not None:
        missing = sorted(set(wanted) - {e.name for e in envs})
        if missing:
            known = sorted({a.environment for a in catalog.applications})
            raise UsageError(f"no application runs in environment {', '.join(missing)}; known: {', '.join(known)}")
    builder = get_target(target)
    prepare_jsii()
    from cdktn import App, LocalBackend, TerraformStack

    app = App(outdir=str(outdir))
    project = catalog_path.resolve().parent
    outputs = []
    for env in envs:
        name = stack_name(env.name, target)
        workdir = project / STATE_ROOT / "terraform" / name  # where the runner runs Terraform
        context = StackContext(
            name=name,
            environment=env,
            catalog=_relative(catalog_path, workdir),
            state_root=_relative(project / STATE_ROOT, workdir),
        )
        stack = TerraformStack(app, name)
        LocalBackend(stack, path="terraform.tfstate")
        builder.build(stack, context)
        outputs.append(StackOutput(name, env.name, target, outdir / "stacks" / name / "cdk.tf.json"))
    return app, outputs


def synthesize(
    catalog: Catalog, catalog_path: Path, outdir: Path, target: str = "local", only: Iterable[str] | None = None
) -> SynthResult:
    """Synthesize every stack of ``catalog`` for ``target`` into ``outdir/stacks/<stack>/cdk.tf.json``."""
    app, stacks = build_app(catalog, catalog_path, outdir, target, only)
    app.synth()  # type: ignore[attr-defined]
    return SynthResult(outdir, tuple(stacks))
