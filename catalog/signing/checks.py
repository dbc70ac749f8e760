"""Which release signatures to verify, and their verification as one result per (version, environment).

``review`` verifies the signatures a change touches, ``verify`` those of the whole catalog (or of
what changed since a revision): both choose them with ``signatures_to_verify`` and check them with
``verify_signatures`` (``catalog.signing.verify.verify_version`` for each)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalog.domain.effective import semver_key
from catalog.domain.models import Catalog
from catalog.domain.trust import environment_keys
from catalog.errors import ArtifactError, SigningError, StoreUnreachable

__all__ = ["SignatureCheck", "signatures_to_verify", "verify_signatures"]


@dataclass(frozen=True)
class SignatureCheck:
    """One version's signature verified for one environment (None: against every key of the policy)."""

    model: str
    version: str
    environment: str | None
    ok: bool
    message: str  # who signed, or why it does not hold

    @property
    def subject(self) -> str:
        return f"{self.model} {self.version}" + (f" for {self.environment}" if self.environment else "")


def _requiring_servers(catalog: Catalog | None) -> dict[tuple[str, str], set[tuple[str, tuple[str, ...]]]]:
    """Per version (model, semver key): the environments requiring signatures that send it requests
    (a route with traffic or a mirror, on an enabled binding), each with the keys it trusts."""
    if catalog is None:
        return {}
    found: dict[tuple[str, str], set[tuple[str, tuple[str, ...]]]] = {}
    for app in catalog.applications:
        trust = environment_keys(catalog, app.environment)
        if not trust.required:
            continue
        trusted = tuple(k.model_dump_json() for k in trust.keys)
        for binding in app.bindings:
            if not binding.enabled:
                continue
            receiving = {semver_key(r.version) for r in binding.routes if r.weight > 0}
            if binding.mirror is not None:
                receiving.add(semver_key(binding.mirror.version))
            for key in receiving:
                found.setdefault((binding.model, key), set()).add((app.environment, trusted))
    return found


def signatures_to_verify(
    base: Catalog | None, head: Catalog, touched: frozenset[tuple[str, str]], *, unsigned: bool = False
) -> list[tuple[str, str, str | None]]:
    """(model, version, environment) of the head's signed versions whose signature the change touches:
    a touched version (its bundle added or changed, among others) for each environment requiring
    signatures that serves it, or against every key of the policy (None) when none does; and a version
    an environment requiring signatures starts serving, or serves trusting other keys than on the base.
    With ``unsigned``, unsigned versions are chosen too, for the environments requiring signatures that
    serve them (their check fails: SignatureMissing); otherwise they are left to MC014."""
    before = _requiring_servers(base)
    after = _requiring_servers(head)
    checks: list[tuple[str, str, str | None]] = []
    for model in head.models:
        for version in model.versions:
            signed = version.artifact.bundle is not None
            if not signed and not unsigned:
                continue
            key = (model.name, semver_key(version.version))
            serving = after.get(key, set())
            if (model.name, version.version) in touched:
                envs: set[str | None] = {env for env, _ in serving} or ({None} if signed else set())
            else:
                envs = {env for env, _ in serving - before.get(key, set())}
            checks += [(model.name, version.version, env) for env in sorted(envs, key=lambda e: e or "")]
    return checks


def verify_signatures(catalog: Catalog, root: Path, checks: list[tuple[str, str, str | None]]) -> list[SignatureCheck]:
    """Each (model, version, environment) of ``checks`` verified in ``catalog`` (``root``: its folder):
    who signed, or why the signature does not hold. A store or Vault that cannot be reached stops
    the verification (StoreUnreachable, VaultError): that is the environment's failure, not the version's."""
    if not checks:
        return []
    from catalog.signing.verify import verify_version  # model-signing loads only when a signature is checked

    results = []
    for model, version, environment in checks:
        try:
            signed = verify_version(catalog, root, model, version, environment)
        except StoreUnreachable:
            raise
        except (SigningError, ArtifactError) as e:
            results.append(SignatureCheck(model, version, environment, False, e.detail or str(e)))
            continue
        who = f"signed by {signed.key} v{signed.key_version}, verified" if signed is not None else "unsigned"
        results.append(SignatureCheck(model, version, environment, True, who))
    return results
