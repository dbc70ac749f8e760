"""The ``modelcat rollout`` group; its commands live in ``rollout_commands`` (the decisions and the
controller) and ``rollout_history_commands`` (history and replay), which attach to it."""

from __future__ import annotations

import click

from catalog.cli.common import examples

__all__ = ["rollout"]


@click.group(
    epilog=examples(
        "modelcat rollout start checkout --model fraud-scorer --version 1.4.0",
        "modelcat rollout run checkout --apply --until done",
    )
)
def rollout() -> None:
    """Progressive delivery from git: move a binding's traffic to a version step by step, each
    decision a commit with its evidence."""
