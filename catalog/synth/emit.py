"""Add many resources to a stack with one crossing into jsii per resource type.

Each construct created through jsii costs a round trip to Node (about 1.5-2 ms with its
attributes here), which would dominate a synth of a thousand endpoints. Resource bodies are
built as plain, typed Python values, then merged into the stack's JSON with one
``add_override`` per resource type; Terraform references are written as ``${type.id.attr}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["add_outputs", "add_resources", "reference"]


def reference(kind: str, resource_id: str, attribute: str) -> str:
    """A Terraform expression naming another resource's attribute."""
    return f"${{{kind}.{resource_id}.{attribute}}}"


def add_resources(stack: Any, kind: str, bodies: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge ``{id: body}`` of resource type ``kind`` into ``stack`` (ids sorted)."""
    if bodies:
        stack.add_override(f"resource.{kind}", {key: dict(bodies[key]) for key in sorted(bodies)})


def add_outputs(stack: Any, outputs: Mapping[str, Mapping[str, Any]]) -> None:
    if outputs:
        stack.add_override("output", {key: dict(outputs[key]) for key in sorted(outputs)})
