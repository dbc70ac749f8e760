"""Where a binding's rollout stands (``modelcat rollout status``): its step, the shares, the bake
left, the last decision and its reason, and whether the routers serve what it decided."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from catalog.deploy.status import catalog_status
from catalog.domain.rollouts import RolloutRecord, routes_text, share_of
from catalog.errors import ModelcatError
from catalog.rollout.record import RolloutState, environment_target, hand_edit

__all__ = ["rollout_stage", "rollout_status", "routers_agree"]


def rollout_stage(record: RolloutRecord, steps: int) -> str:
    """Where the rollout stands, in words: ``step 2 of 4``, ``shadow step (of 4 steps)`` (a mirror
    in force), ``aborted: back on the base routes (...)`` or ``promoted: 100 % on V``."""
    last = record.last
    if record.status == "aborted":
        return f"aborted: back on the base routes ({routes_text(record.base)})"
    if record.status == "promoted":
        return f"promoted: {share_of(record.routes, record.version)} % on {record.version}"
    if last.step:
        return f"step {last.step} of {steps}"
    return f"shadow step (of {steps} steps)" if last.mirror is not None else f"no step yet (of {steps} steps)"


def routers_agree(state: RolloutState) -> dict[str, Any]:
    """Whether the local target's router serves the binding's routes of the catalog at the state's
    commit: ``{"checked": bool, "agree": bool | None, "in_force": {...} | None, "detail": str}``."""
    target = environment_target(state.catalog, state.application.environment)
    if target != "local":
        return {"checked": False, "agree": None, "in_force": None,
                "detail": f"{state.application.environment} deploys to {target}: CI applies the commits"}  # fmt: skip
    wanted = {v: w for v, w in state.routes}
    try:
        status = catalog_status(state.catalog_path, "local", [state.application.environment])
    except ModelcatError as e:
        return {"checked": False, "agree": None, "in_force": None, "detail": f"cannot tell: {e}"}
    app = next((a for a in status.applications if a.name == state.application.name), None)
    if app is None:
        return {"checked": True, "agree": False, "in_force": None, "detail": "not applied: run modelcat apply"}
    in_force = app.in_force.get(state.binding.model)
    agree = in_force == wanted and app.consistent
    detail = "the routers serve these routes" if agree else "; ".join(app.drift) or f"the routers serve {in_force}"
    return {"checked": True, "agree": agree, "in_force": in_force, "detail": detail}


def rollout_status(state: RolloutState, now: datetime, *, routers: bool = True) -> dict[str, Any]:
    """The status document of the binding's newest rollout (``rollout`` None: it never had one)."""
    where = {"application": state.application.name, "model": state.binding.model, "commit": state.commit}
    routes = [{"version": v, "weight": w} for v, w in state.routes]
    agreement = routers_agree(state) if routers else None
    record = state.record
    if record is None:
        return {**where, "rollout": None, "routes": routes, "routers": agreement}
    policy, last = state.policy, record.last
    bake_left = None
    if not record.finished and record.status != "paused" and record.bake_started is not None:
        baked = (now - datetime.fromisoformat(record.bake_started)).total_seconds()
        bake_left = max(0.0, policy.interval_seconds - baked)
    conflict = hand_edit(state)
    return {
        **where,
        "rollout": {
            "rollout_id": record.rollout_id,
            "version": record.version,
            "status": record.status,
            "step": last.step,
            "steps": len(policy.steps),
            "stage": rollout_stage(record, len(policy.steps)),
            "percent": share_of(record.routes, record.version),
            "plan": list(policy.steps),
            "base": [{"version": v, "weight": w} for v, w in record.base],
            "mirror": None if last.mirror is None else {"version": last.mirror[0], "percent": last.mirror[1]},
            "bake_left_seconds": None if bake_left is None else round(bake_left, 1),
            "progress_deadline_seconds": policy.progress_deadline_seconds,
            "last_decision": {
                "decision": last.decision,
                "time": last.time,
                "actor": last.actor,
                "reason": last.reason,
            },
            "hand_edit": None if conflict is None else str(conflict),
        },
        "routes": routes,
        "routers": agreement,
    }
