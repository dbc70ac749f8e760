"""Release keys: a PEM EC P-256/P-384 key signs with the hash its curve takes; others are refused, by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.errors import SigningError
from catalog.signing.keys import PemKey, open_key
from tests.signing.keyfiles import write_key


@pytest.mark.parametrize(("curve", "algorithm"), [(ec.SECP256R1(), hashes.SHA256()), (ec.SECP384R1(), hashes.SHA384())])
def test_a_pem_key_signs_with_the_hash_of_its_curve(tmp_path: Path, curve, algorithm) -> None:
    key = PemKey(write_key(tmp_path, "release", curve))
    signature = key.sign(b"message")
    public = serialization.load_pem_public_key(key.public_key_pem())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"message", ec.ECDSA(algorithm))  # raises if not
    assert key.version == 1
    assert key.public_key_pem() == (tmp_path / "release.pub.pem").read_bytes()


def test_an_rsa_key_is_refused_naming_the_file_and_its_kind(tmp_path: Path) -> None:
    path = write_key(tmp_path, "rsa", rsa_bits=2048)
    with pytest.raises(SigningError) as info:
        PemKey(path)
    assert str(path) in str(info.value) and "private key of type RSA" in str(info.value)
    assert "EC P-256 or P-384" in str(info.value)


def test_a_p521_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="secp521r1"):
        PemKey(write_key(tmp_path, "big", ec.SECP521R1()))


def test_an_encrypted_key_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "locked.pem"
    encryption = serialization.BestAvailableEncryption(b"secret")
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    with pytest.raises(SigningError, match="encrypted"):
        PemKey(path)


def test_a_file_that_is_no_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(SigningError, match="not a PEM private key"):
        PemKey(path)
    with pytest.raises(SigningError, match="cannot read"):
        PemKey(tmp_path / "absent.pem")


def test_open_key_takes_a_relative_path_from_the_root(tmp_path: Path) -> None:
    write_key(tmp_path / "keys", "release")
    key = open_key("keys/release.pem", tmp_path)
    assert isinstance(key, PemKey) and key.path == tmp_path / "keys" / "release.pem"


def test_open_key_refuses_another_scheme(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="vault://MOUNT/keys/NAME"):
        open_key("https://example.com/key.pem", tmp_path)
