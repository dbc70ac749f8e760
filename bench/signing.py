"""Benchmark a replica's release check: the signing bundle verified against the artifact's bytes.

Run from the repository root with ``make bench``, or:

    .venv/bin/python bench/signing.py [--sizes 64,512,1024] [--repeat 3] [--json results.json]

Per size (MB) one random file is written (fsynced, then read once so it sits in the page cache)
and signed with a fresh EC P-256 key (``catalog.signing.bundle.sign_artifact``). Timed, interleaved
(each repetition runs both, rotating the order), median (min) of --repeat runs:

- **verify**: what a replica runs before it listens, ``catalog.serving.signature.verify_release``:
  read the bundle, check its digest, verify the signature and every file's hash (OpenSSF model
  signing's hashing over the file);
- **sha256**: the baseline, ``hashlib.file_digest(f, "sha256")`` over the same file.

The verdict: verification of the largest file costs <= 1 s per GB (at small sizes a fixed cost and
the noise of a shared machine weigh more per GB: the sha256 column shows how much). Verification is
hash-bound: the ratio to sha256 says how much more than one hash of the bytes it costs. Temporary
files are deleted as soon as their size is done.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hash import write_random
from validate import time_interleaved

from catalog.serving.signature import verify_release
from catalog.signing.bundle import key_hint, sign_artifact
from catalog.signing.keys import PemKey
from catalog.signing.trust import PublicKey, TrustedKeys

MB, GB = 1 << 20, 1_000_000_000
TARGET_S_PER_GB = 1.0


def signed_file(folder: Path, size_mb: int) -> tuple[Path, Path, TrustedKeys, str]:
    """A ``size_mb`` MiB file, its bundle (digest) and the trust holding the key that signed it."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / "release.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    artifact = folder / "model.onnx"
    write_random(artifact, size_mb * MB)
    with open(artifact, "rb") as f:  # warm the page cache: both timed readers start from it
        hashlib.file_digest(f, "sha256")
    data = sign_artifact(artifact, PemKey(private))
    bundle = folder / "bundle.json"
    bundle.write_bytes(data)
    trust = TrustedKeys(True, (PublicKey("bench", 1, pem, key_hint(pem)),))
    return artifact, bundle, trust, "sha256:" + hashlib.sha256(data).hexdigest()


def bench_size(folder: Path, size_mb: int, repeat: int) -> dict:
    artifact, bundle, trust, digest = signed_file(folder, size_mb)

    def sha256() -> None:
        with open(artifact, "rb") as f:
            hashlib.file_digest(f, "sha256")

    def verify() -> None:
        signed = verify_release(artifact, bundle, digest, trust, "bench 1.0.0")
        assert signed is not None and signed.key == "bench"

    times = time_interleaved({"verify": verify, "sha256": sha256}, repeat)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    gigabytes = size_mb * MB / GB
    return {
        "size_mb": size_mb,
        "times_s": times,
        "median_s": med,
        "ratio": med["verify"] / med["sha256"],
        "verify_s_per_gb": med["verify"] / gigabytes,
        "sha256_s_per_gb": med["sha256"] / gigabytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,512,1024", help="file sizes in MiB (default 64,512,1024)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per size (default 3)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"Python {platform.python_version()} on {platform.platform()} ({platform.machine()}), "
        f"{os.cpu_count()} cores, {datetime.date.today().isoformat()}.\n"
    )
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="modelcat-signing-") as tmp:
            results.append(bench_size(Path(tmp), size, args.repeat))
    print(f"### A replica's release check against sha256 of the same file, median (min) of {args.repeat} runs\n")
    print("| size (MiB) | verify (s) | sha256 (s) | verify / sha256 | verify (s/GB) | sha256 (s/GB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        t, m = r["times_s"], r["median_s"]
        print(
            f"| {r['size_mb']} | {m['verify']:.3f} ({min(t['verify']):.3f}) | {m['sha256']:.3f} ({min(t['sha256']):.3f}) "
            f"| {r['ratio']:.2f}x | {r['verify_s_per_gb']:.2f} | {r['sha256_s_per_gb']:.2f} |"
        )
    largest = max(results, key=lambda r: r["size_mb"])  # the target is per GB: judged where a GB is read
    verdict = "PASS" if largest["verify_s_per_gb"] <= TARGET_S_PER_GB else "FAIL"
    print(
        f"\nTarget: verification <= {TARGET_S_PER_GB:.0f} s per GB ({largest['size_mb']} MiB): {verdict} "
        f"({largest['verify_s_per_gb']:.2f} s/GB, {largest['ratio']:.2f}x sha256 of the same file)"
    )
    if args.json:
        meta = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
        meta |= {"date": datetime.datetime.now().isoformat(timespec="seconds"), "repeat": args.repeat}
        args.json.write_text(json.dumps({**meta, "results": results, "verdict": verdict}, indent=2) + "\n")


if __name__ == "__main__":
    main()
