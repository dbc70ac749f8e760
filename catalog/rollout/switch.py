"""The fast switch: new weights in force in an application's running router without Terraform.

On the local target the provider writes each application's routing table to a file its router
watches (``catalog.provider.route``). ``switch_routes`` rewrites that file the way the provider
does: the table read back as ``model`` blocks, one model's weights set, written by the provider's
own ``table_bytes`` atomically; then it waits until the router reports the new table's sha256
on ``GET /routing``. So the next ``modelcat apply`` of a catalog whose routes say the same sees
no difference (a version the routes leave out keeps its replicas at weight 0 until that apply
removes it). A shadow step's ``mirror`` (the table's copy of requests to a version) is kept, or set
as the catalog's binding now says. The rollout controller calls it before its Terraform apply on every route change,
and an abort is in force in well under a second instead of the seconds a Terraform run takes.

Only the versions the running table already serves can be switched to: a version with no
replicas there (a new one) needs its endpoint started, so the answer is ``switched=False`` with
the reason, and the caller applies through Terraform. So is it when the target is not local,
nothing runs yet, or the router does not take the table (it exited, or timed out).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.editing import KEEP_MIRROR
from catalog.errors import EditRefused, ModelcatError, ProcessFailed
from catalog.files import atomic_write
from catalog.layout import run_dir, stack_name, state_root
from catalog.provider.processes import is_alive, wait_router_table
from catalog.provider.route import table_bytes
from catalog.provider.runstate import RunDir
from catalog.serving.table import model_blocks, parse_table

__all__ = ["DEFAULT_TIMEOUT", "SwitchResult", "switch_routes"]

DEFAULT_TIMEOUT = 10.0  # seconds the router has to report the new table in force


@dataclass(frozen=True, slots=True)
class SwitchResult:
    """What ``switch_routes`` did: ``switched`` when the router has the new weights in force;
    otherwise ``reason`` says why not (the caller applies through Terraform)."""

    switched: bool
    reason: str
    routes: tuple[tuple[str, int], ...] = ()  # the model's routes in the running table after it
    mirror: tuple[str, int] | None = None  # the model's mirror (version, percent) in force after it
    table_sha256: str | None = None  # the table the router has in force after it
    seconds: float = 0.0  # from the call to the router reporting the new table

    def __bool__(self) -> bool:
        return self.switched


def _switched_blocks(
    blocks: list[dict[str, Any]], model: str, routes: Sequence[tuple[str, int]], mirror: object
) -> tuple[list[dict[str, Any]], str]:
    """The ``model`` blocks with ``model``'s weights set to ``routes`` (its other versions at 0,
    after the routed ones, whose order ``routes`` gives) and its mirror set to ``mirror``; or the
    reason it cannot be switched."""
    block = next((b for b in blocks if b["name"] == model), None)
    if block is None:
        served = ", ".join(str(b["name"]) for b in blocks) or "none"
        return blocks, f"the running table routes no model {model!r} (models: {served})"
    running = {str(r["version"]): r for r in block["route"]}
    new = [version for version, _ in routes if version not in running or not running[version]["replicas"]]
    if new:
        return blocks, f"no replicas of {model} {', '.join(new)} run yet: an apply starts them"
    mirrored = block.get("mirror")
    if isinstance(mirror, tuple):
        version, percent = mirror
        if not mirrored or mirrored["version"] != version:  # its tolerance is the catalog's rollout's
            return blocks, f"the running table mirrors no {model} {version}: an apply starts the mirror"
        mirrored = {**mirrored, "percent": percent}
    elif mirror is None:
        mirrored = None
    weights = dict(routes)
    ordered = [{**running[v], "weight": weights[v]} for v, _ in routes]
    ordered += [{**r, "weight": 0} for v, r in running.items() if v not in weights]
    return [{**b, "route": ordered, "mirror": mirrored} if b is block else b for b in blocks], ""


def switch_routes(
    catalog_path: str | Path,
    application: str,
    model: str,
    routes: Sequence[tuple[str, int]],
    *,
    environment: str,
    target: str = "local",
    mirror: tuple[str, int] | None | object = KEEP_MIRROR,
    timeout: float = DEFAULT_TIMEOUT,
) -> SwitchResult:
    """Put ``routes`` ((version, weight) in the binding's order) in force for ``model`` in the
    running router of ``application`` (in ``environment``'s stack of ``target``, beside the
    catalog at ``catalog_path``), without Terraform; until the router reports the new table.
    ``mirror``: the model's shadow step after it, (version, percent) or None for none; by default
    the running table's is kept.

    A version of ``routes`` the running table has no replicas of, a mirror of a version it does not
    mirror yet, another target than local, no running router or a router that does not take the
    table: ``switched=False`` with the reason.
    RoutingTableInvalid when ``routes`` make no valid table (weights not summing to 100, ...).
    """
    started = time.monotonic()
    if target != "local":
        return SwitchResult(False, f"the {target} target has no fast switch: its routes change when CI applies them")
    records = RunDir(run_dir(state_root(Path(catalog_path)), stack_name(environment, target)))
    try:
        record = records.read_route(application)
        if record is None or not record.url or not is_alive(record.ident):
            return SwitchResult(False, f"no router of {application} runs in {stack_name(environment, target)}")
        original = Path(record.table).read_bytes()
        table = parse_table(original, record.table)
    except (OSError, ModelcatError) as e:  # an unreadable record or table: Terraform's apply rewrites it
        return SwitchResult(False, f"the running table of {application} cannot be read: {e}")
    blocks, refused = _switched_blocks(model_blocks(table), model, routes, mirror)
    if refused:
        return SwitchResult(False, refused)
    outcomes: dict[str, str] = dict(table.outcomes)
    data = table_bytes(application, blocks, outcomes or None)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        if data != original:
            atomic_write(record.table, data, expected=original)
        wait_router_table(record.url, record.ident, sha256, Path(record.log), timeout)
    except (OSError, EditRefused, ProcessFailed) as e:
        return SwitchResult(False, f"the router of {application} did not take the new table: {e}")
    in_force = next(b for b in blocks if b["name"] == model)
    routed = tuple((str(r["version"]), int(r["weight"])) for r in in_force["route"])
    mirrored = (str(in_force["mirror"]["version"]), int(in_force["mirror"]["percent"])) if in_force["mirror"] else None
    return SwitchResult(True, "in force", routed, mirrored, sha256, time.monotonic() - started)
