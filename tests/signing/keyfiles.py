"""Keys and catalog texts for the signing tests: EC (and RSA) key files made on the spot, a trust
policy put into a catalog, and a bundle recorded on a version."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.helpers import without_signatures


def write_key(folder: Path, name: str, curve: ec.EllipticCurve | None = None, *, rsa_bits: int = 0) -> Path:
    """A private key (EC P-256 unless ``curve`` or ``rsa_bits``) at ``folder/name.pem`` and its
    public key at ``folder/name.pub.pem``; the private key's path."""
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(65537, rsa_bits) if rsa_bits else ec.generate_private_key(curve or ec.SECP256R1())
    private = folder / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (folder / f"{name}.pub.pem").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private


def with_trust(text: str, keys: str, environments: str = "") -> str:
    """``text`` with a ``trust:`` block (``keys`` and ``environments``: YAML list items, indented by 4)
    before ``models:``, in place of its own trust policy and signatures (the demo catalog's)."""
    block = "trust:\n  keys:\n" + keys + ("  environments:\n" + environments if environments else "")
    return without_signatures(text).replace("\nmodels:\n", "\n" + block + "models:\n", 1)


def record_bundle(
    text: str,
    artifact_uri: str,
    uri: str,
    digest: str,
    key: str,
    key_version: int = 1,
    signed_at: str = "2026-12-06T23:00:00Z",
) -> str:
    """``text`` with a ``bundle:`` under the artifact whose URI is ``artifact_uri``."""
    match = re.search(rf"(?m)^( *)uri: {re.escape(artifact_uri)}\n(?:\1.*\n)*?\1size_bytes: .*\n", text)
    assert match, artifact_uri
    pad = match.group(1)
    lines = [
        "bundle:",
        f"  uri: {uri}",
        f"  digest: {digest}",
        f"  key: {key}",
        f"  key_version: {key_version}",
        f"  signed_at: {signed_at}",
    ]
    block = "".join(f"{pad}{line}\n" for line in lines)
    return text[: match.end()] + block + text[match.end() :]
