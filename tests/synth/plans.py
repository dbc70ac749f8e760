"""The demo catalog's production environment as a deployment plan, and edits of it (and of catalog
texts) for target tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from catalog.domain.deployment import Environment, MirrorPlan, environments
from catalog.domain.effective import EffectiveRollout
from catalog.synth.base import StackContext
from catalog.validate import load_catalog
from tests.helpers import DEMO


def production() -> Environment:
    (plan,) = environments(load_catalog(DEMO), ["production"])
    return plan


def context(env: Environment, target: str) -> StackContext:
    return StackContext(name=f"{env.name}-{target}", environment=env, catalog="", state_root="")


def _replace_binding(env: Environment, app: str, **changes: Any) -> Environment:
    application = next(a for a in env.applications if a.name == app)
    binding = dataclasses.replace(application.bindings[0], **changes)
    new_app = dataclasses.replace(application, bindings=(binding, *application.bindings[1:]))
    return dataclasses.replace(env, applications=tuple(new_app if a is application else a for a in env.applications))


def with_routes(env: Environment, app: str, weights: dict[str, int], **endpoint: Any) -> Environment:
    """``env`` with the first binding of ``app`` routed by ``weights`` ({version: weight}), each
    version's artifact from the demo catalog (``endpoint`` overrides endpoint fields)."""
    binding = next(a for a in env.applications if a.name == app).bindings[0]
    model = next(m for m in load_catalog(DEMO).models if m.name == binding.model)
    template = binding.routes[0]

    def route(version: str, weight: int) -> Any:
        artifact = next(v.artifact for v in model.versions if v.version == version)
        facts = {"artifact": artifact.uri, "digest": artifact.digest, "version": version, **endpoint}
        return dataclasses.replace(
            template, version=version, weight=weight, endpoint=dataclasses.replace(template.endpoint, **facts)
        )

    return _replace_binding(env, app, routes=tuple(route(v, w) for v, w in weights.items()))


def with_rollout(env: Environment, app: str, **rollout: Any) -> Environment:
    """``env`` with the first binding of ``app`` rolled out as ``rollout`` (EffectiveRollout fields)."""
    return _replace_binding(env, app, rollout=EffectiveRollout(**rollout))


def with_serving(env: Environment, app: str, **serving: Any) -> Environment:
    """``env`` with every route of the first binding of ``app`` served as ``serving`` says."""
    binding = next(a for a in env.applications if a.name == app).bindings[0]
    routes = tuple(
        dataclasses.replace(
            r, endpoint=dataclasses.replace(r.endpoint, serving=dataclasses.replace(r.endpoint.serving, **serving))
        )
        for r in binding.routes
    )
    return _replace_binding(env, app, routes=routes)


def with_mirror(env: Environment, app: str, version: str, percent: int) -> Environment:
    """``env`` with a shadow step in force on the first binding of ``app``: ``percent`` % of its
    requests mirrored to its route of ``version``."""
    return _replace_binding(env, app, mirror=MirrorPlan(version, percent, max_abs_difference=0.05))


def mirrored(text: str, version: str, percent: int) -> str:
    """A catalog text from ``tests.helpers.MINIMAL`` with ``mirror: {version, percent}`` on its binding."""
    anchor = "        enabled: true\n"
    assert text.count(anchor) == 1
    return text.replace(anchor, f"{anchor}        mirror: {{version: {version}, percent: {percent}}}\n")


def in_shadow_step(text: str, percent: int) -> str:
    """A catalog text from ``tests.helpers.MINIMAL`` in a shadow step: all of the binding's traffic
    on 1.0.0, ``percent`` % of its requests mirrored to 1.1.0 (weight 0)."""
    routes = "          - {version: 1.0.0, weight: 90}\n          - {version: 1.1.0, weight: 10}\n"
    assert text.count(routes) == 1
    shadow = "          - {version: 1.0.0, weight: 100}\n          - {version: 1.1.0, weight: 0}\n"
    return mirrored(text.replace(routes, shadow), "1.1.0", percent)


FRAUD_130_URI = "artifacts/sha256/fb/fbe81f1d53c2fbde9c15c2e8e3c16f91482720b723d0dced0d4aeb0b1ceecab0"
BUNDLE_URI, BUNDLE_DIGEST = f"artifacts/sha256/ab/{'ab' * 32}", "sha256:" + "ab" * 32


def signed_demo(folder: Path) -> list[dict[str, Any]]:
    """The demo catalog in ``folder`` (with its artifacts) made to trust a PEM key ``release`` and a
    Vault key ``transit`` (min_version 2) in production, which requires signatures, and fraud-scorer
    1.3.0 to carry a bundle (``BUNDLE_URI``: not a real one; synthesis does not read it). The
    ``trusted_key`` blocks its endpoints' bodies carry."""
    from tests.signing.keyfiles import record_bundle, with_trust, write_key

    write_key(folder / "keys", "release")
    keys = "    - {name: release, public_key: keys/release.pub.pem}\n"
    keys += "    - {name: transit, vault: vault://transit/keys/release, min_version: 2}\n"
    rules = "    - {environment: production, keys: [release, transit]}\n"
    path = folder / "models.yaml"
    text = with_trust(path.read_text(), keys, rules)
    path.write_text(record_bundle(text, FRAUD_130_URI, BUNDLE_URI, BUNDLE_DIGEST, "release"))
    return [
        {"name": "release", "pem": (folder / "keys" / "release.pub.pem").read_text(), "min_version": 1},
        {"name": "transit", "vault": "vault://transit/keys/release", "min_version": 2},
    ]
