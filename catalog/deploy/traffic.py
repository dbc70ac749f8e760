"""Requests through an application's router: one prediction, or a keyed sample of many.

``sample_split`` sends keyed requests with a well-formed input built from the model's declared
signature and counts which version answered each (the router's ``x-model-version`` header,
cross-checked against the body and the digest the catalog names), so a deployment can be
compared with the weights in models.yaml. ``share_tolerance`` says which counts a correct router
produces with all but a small probability (an exact two-sided binomial test), so ``modelcat smoke``
can fail a split that is off without failing a correct one by chance.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from catalog.domain.models import TensorSpec, Version
from catalog.errors import ModelcatError

__all__ = [
    "SMOKE_ALPHA",
    "SplitSample",
    "example_request",
    "predict",
    "sample_split",
    "share_tolerance",
    "smoke_keys",
]

SMOKE_ALPHA = 0.001  # chance that one smoke run fails a correct router (family-wise, over every route)


def smoke_keys(count: int) -> list[str]:
    """The sticky keys ``modelcat smoke`` sends: the same on every run, so a rerun gets the same split."""
    return [f"user-{i}" for i in range(count)]


_DATATYPES = {
    "float16": "FP16", "bfloat16": "BF16", "float32": "FP32", "float64": "FP64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "bool": "BOOL", "string": "BYTES",
}  # fmt: skip


def _tensor(spec: TensorSpec, rows: int) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else rows if i == 0 else 1 for i, d in enumerate(spec.shape)]
    count = 1
    for d in shape:
        count *= d
    datatype = _DATATYPES[spec.dtype]
    filler: Any = {"BOOL": False, "BYTES": ""}.get(datatype, 0.5 if datatype.startswith(("FP", "BF")) else 1)
    return {"name": spec.name, "shape": shape, "datatype": datatype, "data": [filler] * count}


def example_request(version: Version, rows: int = 1) -> dict[str, Any]:
    """An OIP v2 inference request that fits ``version``'s declared inputs (symbolic dims → rows/1)."""
    return {"inputs": [_tensor(spec, rows) for spec in version.signature.inputs]}


def _post(
    client: httpx.Client, url: str, model: str, body: Mapping[str, Any], headers: Mapping[str, str]
) -> httpx.Response:
    try:
        return client.post(f"{url}/v2/models/{model}/infer", json=body, headers=dict(headers))
    except httpx.HTTPError as e:
        raise ModelcatError(f"{url}: {type(e).__name__}: {e}") from e


def predict(url: str, model: str, body: Mapping[str, Any], key: tuple[str, str] | None = None) -> httpx.Response:
    """One inference request through the router at ``url``; ``key`` is (sticky header, value)."""
    with httpx.Client(timeout=30, trust_env=False) as client:
        return _post(client, url, model, body, dict([key]) if key else {})


@dataclass
class SplitSample:
    """What ``sample_split`` saw: answers per version, failures, and any answer that lied."""

    model: str
    answered: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # version/digest not what the catalog says

    @property
    def total(self) -> int:
        return sum(self.answered.values()) + len(self.failures)

    def share(self, version: str) -> float:
        return self.answered[version] / self.total if self.total else 0.0


def sample_split(
    url: str,
    model: str,
    body: Mapping[str, Any],
    digests: Mapping[str, str],
    keys: Sequence[str],
    sticky_key: str | None,
    concurrency: int = 4,
) -> SplitSample:
    """Send one request per key (as ``sticky_key`` header; unkeyed when None), ``concurrency`` at
    a time, and tally the versions."""
    sample = SplitSample(model)
    with httpx.Client(timeout=30, trust_env=False) as client, ThreadPoolExecutor(concurrency) as pool:

        def send(key: str) -> httpx.Response:
            return _post(client, url, model, body, {sticky_key: key} if sticky_key else {})

        for response in pool.map(send, keys):
            if response.status_code != 200:
                sample.failures.append(f"{response.status_code}: {response.text[:200]}")
                continue
            version = response.headers.get("x-model-version", "")
            said = response.json().get("model_version")
            digest = response.headers.get("x-model-digest", "")
            if said != version or digests.get(version) != digest:
                sample.mismatches.append(f"header {version} {digest}, body {said}, catalog {digests.get(version)}")
            sample.answered[version] += 1
    return sample


def share_tolerance(requests: int, weight: int, alpha: float) -> tuple[int, int]:
    """The answer counts (low, high) a version of ``weight`` percent may get out of ``requests``:
    those an exact two-sided binomial test at level ``alpha`` accepts (an outcome is rejected when
    all outcomes no likelier than it have, together, probability at most ``alpha``).

    A request without a sticky key draws its bucket at random, so its version is a Bernoulli
    trial of probability ``weight / 100``. A keyed request is deterministic (its bucket is a hash
    of key and model): the same keys give the same counts on every run, and what is random is how
    a set of keys falls on the buckets, which the hash spreads as uniform draws would.
    """
    if requests <= 0 or weight <= 0:
        return 0, 0
    if weight >= 100:
        return requests, requests
    p = weight / 100
    log_pmf = [
        math.lgamma(requests + 1) - math.lgamma(k + 1) - math.lgamma(requests - k + 1)
        + k * math.log(p) + (requests - k) * math.log1p(-p)
        for k in range(requests + 1)
    ]  # fmt: skip
    pmf = [math.exp(x) for x in log_pmf]
    ascending = sorted(pmf)
    below: list[float] = []  # below[i]: the probability of the i+1 least likely outcomes
    total = 0.0
    for q in ascending:
        total += q
        below.append(total)

    def p_value(k: int) -> float:  # outcomes no likelier than k (relative slack for rounding ties)
        return below[bisect.bisect_right(ascending, pmf[k] * (1 + 1e-7)) - 1]

    accepted = [k for k in range(requests + 1) if p_value(k) > alpha]
    return accepted[0], accepted[-1]
