"""The built-in rules (policies/mc0*.rego) written again in plain Python, over the same inputs.

Used by the tests to cross-check regopy's results on generated catalogs: an independent second
implementation catches the places where rego-cpp and OPA disagree (number formatting, null
comparisons, set and regex semantics). Messages are formatted exactly as the Rego rules do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from catalog.domain.digests import SHA256_DIGEST, SHA256_HEX
from catalog.policy.settings import Settings

__all__ = ["ORACLE", "oracle_messages"]

Doc = Mapping[str, object]
_HEX = re.compile(SHA256_HEX)
_OCI = re.compile(rf"^oci://[^/@]+/[^@]+@{SHA256_DIGEST}$")
_SECRET_WORD = re.compile(
    r"(^|[_.-])(password|passwd|passphrase|secret|token|api_?key|access_?key|secret_?key|private_?key"
    r"|client_?secret|credentials?)($|[_.-])"
)
_NAME_LIKE = re.compile(r"(_name|_ref|_arn|_id|_path|_file|_names|_refs)$")
_AWS_KEY = re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _f4(value: object) -> str:
    return f"{value:.4f}"


def mc001(d: Doc, s: Settings) -> list[str]:
    v = d["version"]
    if not v["present"]:
        return []
    name, uri = d["model"]["name"], v["uri"]
    if uri.startswith("oci://"):
        if not _OCI.match(uri):
            return [f"{name} {v['version']}: artifact URI {uri} is not pinned by a manifest digest (@sha256:...)"]
        return []
    named = _HEX.findall(uri)
    if not named or named[-1] != v["digest"][7:]:
        return [f"{name} {v['version']}: artifact URI {uri} does not name its digest {v['digest']}"]
    return []


def mc002(d: Doc, s: Settings) -> list[str]:
    v = d["version"]
    if not v["present"]:
        return []
    limits, model = d["limits"], d["model"]
    limit = limits["max_artifact_bytes"]
    if _num(model.get("max_artifact_bytes")):
        limit = min(limit, model["max_artifact_bytes"])
    sizes = []
    if _num(v.get("size_bytes")):
        sizes.append(("declared", v["size_bytes"]))
    if _num(d.get("artifact", {}).get("observed_size_bytes")):
        sizes.append(("stored", d["artifact"]["observed_size_bytes"]))
    sizes = list(dict.fromkeys(sizes))
    out = [
        f"{model['name']} {v['version']}: {what} artifact size {size} bytes is over the limit of {limit} bytes"
        for what, size in sizes
        if size > limit
    ]
    minimum = limits.get("min_artifact_bytes")
    if _num(minimum):
        out += [
            f"{model['name']} {v['version']}: {what} artifact size {size} bytes is under the minimum of {minimum} bytes"
            for what, size in sizes
            if size < minimum
        ]
    return out


def mc003(d: Doc, s: Settings) -> list[str]:
    subject = d["model"] if d["kind"] == "model" else d["application"]
    owner = subject["owner"]
    if owner.strip() == "" or owner.strip().lower() in s.owner_placeholders:
        return [f"{d['kind']} {subject['name']} has no owner (owner is '{owner}')"]
    return []


def _routed(d: Doc) -> list[Mapping[str, object]]:
    if not (d["application"]["production"] and d["binding"]["enabled"]):
        return []
    return [r for r in d["routes"] if r["known"] and r["weight"] > 0]


def mc004(d: Doc, s: Settings) -> list[str]:
    app, model, gates = d["application"]["name"], d["binding"]["model"], d["gates"]
    out = []
    for r in _routed(d):
        if _num(gates.get("max_age_days")) and r["age_days"] > gates["max_age_days"]:
            out.append(
                f"{app}: {model} {r['version']} is {r['age_days']} days old, over the gate of {gates['max_age_days']} days"
            )
        for name, minimum in gates["min_metrics"].items():
            value = r["metrics"].get(name)
            if not _num(value):
                out.append(f"{app}: {model} {r['version']} has no {name} metric (gate {name} >= {_f4(minimum)})")
            elif value < minimum:
                out.append(f"{app}: {model} {r['version']} has {name} {_f4(value)}, below the gate of {_f4(minimum)}")
    return out


def mc005(d: Doc, s: Settings) -> list[str]:
    if not d["binding"]["enabled"]:
        return []
    app, model = d["application"]["name"], d["binding"]["model"]
    return [
        f"{app}: {model} {r['version']} is {r['stage']} but gets {r['weight']}% of traffic"
        for r in d["routes"]
        if r["known"] and r["weight"] > 0 and r["stage"] in ("deprecated", "retired")
    ]


def mc006(d: Doc, s: Settings) -> list[str]:
    rollout = d["rollout"]
    if not d["binding"]["enabled"] or rollout["strategy"] not in ("canary", "linear"):
        return []
    if rollout["largest_step"] > s.max_step_percent:
        return [
            (
                f"{d['application']['name']}: {d['binding']['model']} {rollout['strategy']} {_step_name(rollout)} of "
                f"{rollout['largest_step']}% is over the maximum of {s.max_step_percent}%"
            )
        ]
    return []


def _step_name(rollout: Doc) -> str:
    return "largest step" if rollout.get("explicit_steps") is True else "step"


def mc007(d: Doc, s: Settings) -> list[str]:
    v, base = d["version"], d["base"]
    if not (v["present"] and v["stage"] == "production" and base["known"]):
        return []
    who = f"{d['model']['name']} {v['version']}"
    if not base["present"]:
        return [f"{who} is production but is new in this change: register it as a candidate first"]
    if base["stage"] not in ("candidate", "production"):
        return [f"{who} is production but was {base['stage']} on the base revision: make it a candidate first"]
    return []


def mc008(d: Doc, s: Settings) -> list[str]:
    v, base = d["version"], d["base"]
    if not (base["known"] and base.get("served")):
        return []
    who, apps = f"{d['model']['name']} {v['version']}", base["served_by"]
    if not v["present"]:
        return [f"{who} served traffic on the base revision ({apps}) but was deleted"]
    if v["digest"] != base["digest"]:
        return [
            f"{who} served traffic on the base revision ({apps}) but its digest changed from {base['digest']} to {v['digest']}"
        ]
    return []


def mc009(d: Doc, s: Settings) -> list[str]:
    if not (d["application"]["production"] and d["binding"]["enabled"]):
        return []
    app, model, serving, rollout = d["application"]["name"], d["binding"]["model"], d["serving"], d["rollout"]
    out = []
    if serving["replicas"] < s.min_production_replicas:
        out.append(
            f"{app}: {model} runs {serving['replicas']} replica(s); production needs at least {s.min_production_replicas}"
        )
    if serving["max_replicas"] < serving["min_replicas"]:
        out.append(
            f"{app}: {model} max_replicas {serving['max_replicas']} is below min_replicas {serving['min_replicas']}"
        )
    if rollout["strategy"] in ("canary", "linear") and not rollout["guarded"]:
        out.append(f"{app}: {model} {rollout['strategy']} rollout has no guardrails: nothing stops a bad step")
    return out


def mc010(d: Doc, s: Settings) -> list[str]:
    if d["application"]["production"] and d["binding"]["enabled"] and d["rollout"]["strategy"] == "all_at_once":
        return [
            (
                f"{d['application']['name']}: {d['binding']['model']} rolls out all at once in production: "
                "no step at which a guardrail could stop a bad version"
            )
        ]
    return []


def mc012(d: Doc, s: Settings) -> list[str]:
    rollout, base = d["rollout"], d["base"]
    if not (d["binding"]["enabled"] and base["routed"]) or rollout["strategy"] not in ("canary", "linear"):
        return []
    out = []
    for r in d["routes"]:
        # the first planned step above the base share, from the steps themselves (not route.next_step)
        allowed = min((step for step in rollout["steps"] if step > r["base_weight"]), default=100)
        if r.get("newer_than_falling") is True and r["weight"] > allowed:
            out.append(
                f"{d['application']['name']}: {d['binding']['model']} {r['version']} goes from {r['base_weight']}% "
                f"to {r['weight']}% of the traffic in one change, past its {rollout['strategy']} rollout's "
                f"next step of {allowed}%: raise it one step at a time"
            )
    return out


def mc013(d: Doc, s: Settings) -> list[str]:
    gate = d["gates"].get("max_age_days")
    if d["application"]["production"] or not d["binding"]["enabled"] or not _num(gate):
        return []
    return [
        (
            f"{d['application']['name']}: {d['binding']['model']} {r['version']} is {r['age_days']} days old, "
            f"over its max_age_days gate of {gate} days: retrain it or route a newer version"
        )
        for r in d["routes"]
        if r["known"] and r["weight"] > 0 and r["age_days"] > gate
    ]


def mc014(d: Doc, s: Settings) -> list[str]:
    trust = d["trust"]
    if not d["binding"]["enabled"] or not trust["required"]:
        return []
    app, model, env = d["application"]["name"], d["binding"]["model"], d["application"]["environment"]
    min_versions = {k["name"]: k["min_version"] for k in trust["keys"]}
    out = []
    for r in d["routes"]:
        if not r["known"] or not (r["weight"] > 0 or r["mirrored"]):
            continue
        if not r["signed"]:
            out.append(
                f"{app}: {model} {r['version']} is not signed, and environment {env} serves only versions signed "
                f"by a key it trusts ({trust['keys_text']}): sign it with modelcat sign"
            )
        elif r["bundle"]["key"] not in min_versions:
            out.append(
                f"{app}: {model} {r['version']} is signed by key {r['bundle']['key']}, which environment {env} "
                f"does not trust (trusted: {trust['keys_text']})"
            )
        elif r["bundle"]["key_version"] < min_versions[r["bundle"]["key"]]:
            out.append(
                f"{app}: {model} {r['version']} is signed by key {r['bundle']['key']} version "
                f"{r['bundle']['key_version']}, below its min_version {min_versions[r['bundle']['key']]} "
                "(a revoked key version): sign it again with the current version"
            )
    return out


def _secret_key(key: str) -> bool:
    return bool(_SECRET_WORD.search(key.lower())) and not _NAME_LIKE.search(key.lower())


def _literal(value: str) -> bool:
    return value.strip() != "" and "${" not in value


def mc011(d: Doc, s: Settings) -> list[str]:
    where = f"{d['stack']}: {d['address']}"
    out = []
    for leaf in d["strings"]:
        if _secret_key(leaf["key"]) and _literal(leaf["value"]):
            out.append(f"{where}: {leaf['path']} holds a literal secret: reference a Secret or variable instead")
    for leaf in d["strings"]:
        if leaf["key"] == "value" and _secret_key(leaf["name"]) and _literal(leaf["value"]):
            out.append(f"{where}: {leaf['path']} ({leaf['name']}) holds a literal secret: use value_from with a Secret")
    out += [
        f"{where}: {leaf['path']} holds an AWS access key id" for leaf in d["strings"] if _AWS_KEY.search(leaf["value"])
    ]
    out += [f"{where}: {leaf['path']} holds a private key" for leaf in d["strings"] if _PEM.search(leaf["value"])]
    return out


ORACLE: dict[str, Callable[[Doc, Settings], list[str]]] = {
    "MC001": mc001,
    "MC002": mc002,
    "MC003": mc003,
    "MC004": mc004,
    "MC005": mc005,
    "MC006": mc006,
    "MC007": mc007,
    "MC008": mc008,
    "MC009": mc009,
    "MC010": mc010,
    "MC011": mc011,
    "MC012": mc012,
    "MC013": mc013,
    "MC014": mc014,
}


def oracle_messages(rule: str, document: Doc, settings: Settings) -> list[str]:
    return ORACLE[rule](document, settings)
