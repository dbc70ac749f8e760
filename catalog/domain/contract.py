"""Contract checks: does a version's signature still fit the callers of the versions it joins?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from catalog.domain.models import Catalog, Signature, TensorSpec, is_free_dim

__all__ = ["SignatureChange", "contract_changes", "signature_changes"]


@dataclass(frozen=True, slots=True)
class SignatureChange:
    kind: Literal["breaking", "additive"]
    text: str
    application: str = ""
    against: str = ""  # the routed version compared with


def _same_dim(a: int | str, b: int | str) -> bool:
    """Equal sizes, or the same expression however it is spaced (``s0 + 1`` and ``s0+1``)."""
    if isinstance(a, str) and isinstance(b, str):
        return a.replace(" ", "") == b.replace(" ", "")
    return a == b


def _dims(old: TensorSpec, new: TensorSpec, what: str) -> list[SignatureChange]:
    """A dimension made free (a name or ?) is additive; any other change (a size fixed or changed,
    a size now computed from other dimensions, another expression) is breaking. A free dimension
    renamed is no change."""
    name = f"{what} {old.name!r}"
    if len(old.shape) != len(new.shape):
        return [SignatureChange("breaking", f"{name}: rank {len(old.shape)} -> {len(new.shape)}")]
    changes = []
    for i, (a, b) in enumerate(zip(old.shape, new.shape, strict=True)):
        if _same_dim(a, b) or (is_free_dim(a) and is_free_dim(b)):
            continue
        if is_free_dim(b):
            changes.append(SignatureChange("additive", f"{name}: dimension {i} {a} relaxed to {b}"))
        elif isinstance(a, str) and isinstance(b, int):
            changes.append(SignatureChange("breaking", f"{name}: dimension {i} {a} fixed to {b}"))
        else:
            changes.append(SignatureChange("breaking", f"{name}: dimension {i} {a} -> {b}"))
    return changes


def _side(old: list[TensorSpec], new: list[TensorSpec], what: str) -> list[SignatureChange]:
    before, after = {t.name: t for t in old}, {t.name: t for t in new}
    changes = []
    for name, spec in before.items():
        if name not in after:
            changes.append(SignatureChange("breaking", f"{what} {name!r} removed or renamed"))
            continue
        other = after[name]
        if other.dtype != spec.dtype:
            changes.append(SignatureChange("breaking", f"{what} {name!r}: element type {spec.dtype} -> {other.dtype}"))
        changes += _dims(spec, other, what)
    for name in after.keys() - before.keys():
        kind: Literal["breaking", "additive"] = "breaking" if what == "input" else "additive"
        note = "callers do not send it" if what == "input" else "callers may ignore it"
        changes.append(SignatureChange(kind, f"{what} {name!r} added ({note})"))
    return changes


def signature_changes(old: Signature, new: Signature) -> list[SignatureChange]:
    """What changes for a caller of ``old`` when it is served ``new`` instead."""
    return _side(old.inputs, new.inputs, "input") + _side(old.outputs, new.outputs, "output")


def contract_changes(catalog: Catalog, model: str, signature: Signature) -> list[SignatureChange]:
    """``signature`` compared with every version routed for ``model`` in every application."""
    versions = {v.version: v for m in catalog.models if m.name == model for v in m.versions}
    found: list[SignatureChange] = []
    for app in catalog.applications:
        for binding in app.bindings:
            if binding.model != model:
                continue
            for route in binding.routes:
                routed = versions.get(route.version)
                if routed is None:
                    continue
                for change in signature_changes(routed.signature, signature):
                    found.append(
                        SignatureChange(change.kind, change.text, application=app.name, against=routed.version)
                    )
    return found
