"""Hypothesis strategies for the policy tests: generated catalogs (with a base revision) and the
bodies of synthesized Terraform blocks, shaped to reach every branch of the built-in rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st

from catalog.domain.models import Catalog
from catalog.policy.inputs import BaseVersion

__all__ = ["NOW", "catalogs", "stack_bodies"]

# regopy cannot read a number under about 1e-307 (its std::stod fails: PolicyEvalFailed, exit 2)
METRIC_VALUES = st.floats(0, 1).filter(lambda x: x == 0 or x > 1e-300)

NOW = datetime(2026, 11, 27, tzinfo=UTC)
SIG = {
    "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 1]}],
}
SIZES = [100, 512, 2048, 4096, 2**31 - 1, 2**31, 2**31 + 1, 3_000_000_000, 2**40]
SIGNING_KEYS = ["release", "dev", "other"]
OWNERS = ["ml@example.com", "TBD", "  ", "n/a", 'team "core" \\ ml', "Nobody"]


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


@st.composite
def catalogs(draw):
    models, versions_of = [], {}
    for m in range(draw(st.integers(1, 2))):
        name = f"model-{m}"
        versions = []
        for v in range(draw(st.integers(1, 4))):
            digest = _hex(f"{name}-{v}")
            uri = draw(
                st.sampled_from(
                    [
                        f"artifacts/sha256/{digest[:2]}/{digest}",
                        "artifacts/latest/model.onnx",
                        f"oci://registry.example.com/ml/{name}:v{v}",
                        f"oci://registry.example.com/ml/{name}@sha256:{_hex('manifest' + digest)}",
                        f"artifacts/sha256/{_hex('other')}",
                    ]
                )
            )
            trained = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 690)))
            metrics = draw(st.dictionaries(st.sampled_from(["auc", "recall"]), METRIC_VALUES, max_size=2))
            artifact = {"uri": uri, "digest": f"sha256:{digest}", "size_bytes": draw(st.sampled_from(SIZES))}
            if draw(st.booleans()):  # MC014: signed by a key the environment may or may not trust, maybe revoked
                bundle = _hex(f"bundle-{name}-{v}")
                artifact["bundle"] = {
                    "uri": f"artifacts/sha256/{bundle[:2]}/{bundle}",
                    "digest": f"sha256:{bundle}",
                    "key": draw(st.sampled_from(SIGNING_KEYS)),
                    "key_version": draw(st.integers(1, 4)),
                    "signed_at": f"{trained.isoformat()}T13:00:00Z",
                }
            versions.append(
                {
                    "version": f"1.{v}.0",
                    "artifact": artifact,
                    "signature": SIG,
                    "metrics": metrics,
                    "trained_at": trained.isoformat(),
                    "registered_at": f"{trained.isoformat()}T12:00:00Z",
                    "stage": draw(st.sampled_from(["candidate", "production", "deprecated", "retired"])),
                }
            )
        model = {"name": name, "owner": draw(st.sampled_from(OWNERS)), "task": "classification", "versions": versions}
        if draw(st.booleans()):
            model["max_artifact_bytes"] = draw(st.sampled_from([4096, 2**32]))
        models.append(model)
        versions_of[name] = [v["version"] for v in versions]
    apps = []
    for a in range(draw(st.integers(0, 3))):
        model = draw(st.sampled_from(sorted(versions_of)))
        chosen = draw(st.lists(st.sampled_from(versions_of[model]), min_size=1, max_size=3, unique=True))
        cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(chosen) - 1, max_size=len(chosen) - 1)))
        weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        binding = {
            "model": model,
            "enabled": draw(st.booleans()),
            "routes": [{"version": v, "weight": w} for v, w in zip(chosen, weights, strict=True)],
            "serving": draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "replicas": st.integers(0, 4),
                        "min_replicas": st.integers(0, 4),
                        "max_replicas": st.integers(1, 5),
                    },
                )
            ),
        }
        rollout = draw(
            st.sampled_from(
                [None, {"strategy": "all_at_once"}, {"strategy": "canary", "step_percent": 10}]
                + [{"strategy": "canary", "step_percent": 50}, {"strategy": "linear", "step_percent": 25}]
                + [{"strategy": "linear", "step_percent": 50, "guardrails": {"max_error_rate": 0.01}}]
                + [{"strategy": "canary", "steps": [5, 25, 100]}, {"strategy": "linear", "steps": [10, 20, 100]}]
                + [{"strategy": "linear", "steps": [20, 40, 60, 80, 100]}]
            )
        )
        if rollout is not None:
            binding["rollout"] = rollout
        if draw(st.booleans()):  # a shadow step's mirror (validate's rules on it are not the point here)
            binding["mirror"] = {"version": draw(st.sampled_from(versions_of[model])), "percent": 10}
        gates = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "max_age_days": st.sampled_from([30, 365]),
                    "min_metrics": st.fixed_dictionaries({"auc": st.sampled_from([0.9, 1.0, 0.0, 1e-05])}),
                },
            )
        )
        if gates or draw(st.booleans()):
            binding["gates"] = gates
        apps.append(
            {
                "name": f"app-{a}",
                "owner": draw(st.sampled_from(OWNERS)),
                "environment": draw(st.sampled_from(["production", "staging"])),
                "bindings": [binding],
            }
        )
    document = {
        "apiVersion": "modelcat/v1",
        "limits": {"max_artifact_bytes": draw(st.sampled_from([4096, 2**31, 10**13]))},
        "models": models,
        "applications": apps,
    }
    if draw(st.booleans()):
        document["limits"]["min_artifact_bytes"] = 512
    if draw(st.booleans()):
        document["trust"] = {
            "keys": [
                {"name": "release", "vault": "vault://transit/keys/release", "min_version": draw(st.integers(1, 3))},
                {"name": "dev", "public_key": "keys/dev.pub.pem"},
            ],
            "environments": [
                {
                    "environment": env,
                    "require_signatures": draw(st.booleans()),
                    "keys": draw(st.lists(st.sampled_from(["release", "dev", "gone"]), min_size=1, max_size=3)),
                }
                for env in draw(st.lists(st.sampled_from(["production", "staging"]), unique=True))
            ],
        }
    if draw(st.booleans()):
        document["defaults"] = {"gates": {"max_age_days": 180}, "rollout": {"strategy": "canary", "step_percent": 40}}
    base = None
    if draw(st.booleans()):
        base = {}
        for model in models:
            for v in model["versions"]:
                if draw(st.booleans()):
                    key = (model["name"], v["version"])
                    served = tuple(draw(st.lists(st.sampled_from(["app-0", "shop"]), max_size=2, unique=True)))
                    base[key] = BaseVersion(
                        model["name"],
                        v["version"],
                        draw(st.sampled_from(["candidate", "production", "deprecated"])),
                        v["artifact"]["digest"] if draw(st.booleans()) else f"sha256:{_hex('old')}",
                        served,
                        tuple((app, draw(st.integers(1, 100))) for app in served),  # MC012's base weights
                    )
        base[("gone", "9.9.9")] = BaseVersion("gone", "9.9.9", "production", f"sha256:{_hex('gone')}", ("shop",))
    return Catalog.model_validate(document), base


KEYS = ["password", "db_password", "secret_name", "token", "api_key", "key", "name", "value", "image_pull_secret", "x"]
VALUES = [
    "hunter2",
    "",
    "  ",
    "${var.db_password}",
    "AKIAIOSFODNN7EXAMPLE",
    "-----BEGIN PRIVATE KEY-----",
    "ok",
    'q"uo\\te',
]


def stack_bodies():
    """A JSON body of strings under secret-like and ordinary keys, nested in lists and objects."""
    return st.recursive(
        st.sampled_from(VALUES),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
        max_leaves=12,
    )
