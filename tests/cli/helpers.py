"""Helpers shared by the CLI tests."""

from __future__ import annotations

import click


def commands_of(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command of ``group`` by its full name ("validate", "policy check", ...)."""
    found: dict[str, click.Command] = {}
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found |= commands_of(cmd, f"{prefix}{name} ")
        else:
            found[prefix + name] = cmd
    return found
