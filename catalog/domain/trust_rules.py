"""The trust policy's cross-references (``trust:``) and the signature bundles that name it. Pure: no IO
(``catalog.validate`` reads the PEM files the keys name).

- each trust key names exactly one of ``public_key`` (a PEM in the repository) and ``vault`` (a
  Transit key); names are unique (``check_raw``);
- each ``trust.environments[]`` entry names an environment that exists (declared, or named by an
  application when ``environments:`` is absent), at most once (``check_raw``), and trust keys only;
- a version's ``artifact.bundle`` names a trust key, with a key version that key can have (a PEM
  key has only version 1), and lies in a store as artifacts do (``check_stores``).

Which keys an environment trusts, and whether it requires signatures, is read in ``catalog.domain.trust``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from catalog.domain.artifact_uris import check_artifact_uri
from catalog.domain.models import Catalog, Trust, TrustedKey
from catalog.domain.problems import Loc, Problem
from catalog.wording import did_you_mean

__all__ = ["check_trust"]

_SIGN_HINT = "name a key of trust.keys (the one 'modelcat sign' used), or add that key to trust.keys"


def _existing_environments(catalog: Catalog) -> list[str]:
    if catalog.environments is not None:
        return [e.name for e in catalog.environments if e is not None]
    return list(dict.fromkeys(a.environment for a in catalog.applications if a is not None))


def check_trust(
    catalog: Catalog,
    *,
    unchecked_environments: frozenset[str] = frozenset(),
    unchecked_keys: frozenset[str] = frozenset(),
) -> Iterator[Problem]:
    """Every problem of the trust policy and of the bundles that name its keys. ``unchecked_keys``:
    names of trust keys that failed the schema (references to them are not reported)."""
    trust = catalog.trust or Trust()
    keys: dict[str, TrustedKey] = {}
    for i, key in enumerate(trust.keys):
        if key is None:
            continue
        keys.setdefault(key.name, key)
        yield from _key_source(("trust", "keys", i), key)
    names = [*keys, *unchecked_keys]
    existing = _existing_environments(catalog)
    for e, entry in enumerate(trust.environments):
        if entry is None:
            continue
        loc: Loc = ("trust", "environments", e)
        if entry.environment not in existing and entry.environment not in unchecked_environments:
            where = "declared under 'environments:'" if catalog.environments is not None else "used by an application"
            yield Problem(
                "trust.unknown-environment",
                f"environment {entry.environment!r} is not {where}",
                loc=(*loc, "environment"),
                hint=did_you_mean(entry.environment, existing)
                + f"environments: {', '.join(existing) or 'none'}; remove the entry or correct the name",
            )
        for k, name in enumerate(entry.keys):
            if name not in names:
                yield Problem(
                    "trust.unknown-key",
                    f"environment {entry.environment!r} trusts key {name!r}, which trust.keys does not declare",
                    loc=(*loc, "keys", k),
                    hint=did_you_mean(name, names) + "declare the key under trust.keys (public_key: or vault:)",
                )
    yield from _check_bundles(catalog, keys, names)


def _key_source(loc: Loc, key: TrustedKey) -> Iterator[Problem]:
    if key.public_key is not None and key.vault is not None:
        yield Problem(
            "trust.key-source",
            f"trust key {key.name!r} names both a public_key and a vault key: a key is one or the other",
            loc=(*loc, "vault"),
            hint="keep public_key (a PEM committed with the catalog) or vault (vault://MOUNT/keys/NAME), not both",
        )
    elif key.public_key is None and key.vault is None:
        yield Problem(
            "trust.key-source",
            f"trust key {key.name!r} names neither a public_key nor a vault key",
            loc=(*loc, "name"),
            hint="add public_key: keys/NAME.pub.pem (EC P-256 or P-384) or vault: vault://transit/keys/NAME",
        )


def _check_bundles(catalog: Catalog, keys: Mapping[str, TrustedKey], names: list[str]) -> Iterator[Problem]:
    for i, model in enumerate(catalog.models):
        for j, version in enumerate(model.versions if model is not None else []):
            bundle = version.artifact.bundle
            if bundle is None:
                continue
            loc: Loc = ("models", i, "versions", j, "artifact", "bundle")
            yield from check_artifact_uri((*loc, "uri"), bundle.uri, bundle.digest, "signature bundle")
            key = keys.get(bundle.key)
            if key is None and bundle.key not in names:
                yield Problem(
                    "bundle.unknown-key",
                    f"{model.name} {version.version} is signed by key {bundle.key!r}, which trust.keys does not declare",
                    loc=(*loc, "key"),
                    hint=did_you_mean(bundle.key, names) + _SIGN_HINT,
                )
            elif key is not None and key.public_key is not None and bundle.key_version != 1:
                yield Problem(
                    "bundle.key-version",
                    f"{model.name} {version.version}: key {bundle.key!r} is a PEM key, whose only version is 1, "
                    f"not {bundle.key_version}",
                    loc=(*loc, "key_version"),
                    hint="sign again ('modelcat sign') to record the bundle as it is",
                )
