"""Requests through an application's router: one prediction, or a keyed sample of many.

``sample_split`` sends keyed requests with a well-formed input built from the model's declared
signature and counts which version answered each (the router's ``x-model-version`` header,
cross-checked against the body and the digest the catalog names), so a deployment can be
compared with the weights in models.yaml. ``share_tolerance`` says which counts a correct router
produces with all but a small probability (an exact two-sided binomial test), so ``modelcat smoke``
can fail a split that is off without failing a correct one by chance.

``ask`` and ``smoke_test`` are what ``modelcat predict`` and ``modelcat smoke`` do, from the
catalog file to the answers: routers found from the run records (``catalog.deploy.status``).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from catalog.deploy.grpc_traffic import GrpcCaller, RoutedAnswer, infer_message
from catalog.deploy.status import router_record
from catalog.domain.models import TensorSpec, Version
from catalog.errors import ModelcatError, UsageError
from catalog.synth import selected_environments
from catalog.validate import validate_file
from catalog.wording import did_you_mean

__all__ = [
    "SMOKE_ALPHA",
    "SmokeRow",
    "SmokeTest",
    "SplitSample",
    "ask",
    "example_request",
    "predict",
    "sample_split",
    "share_tolerance",
    "smoke_keys",
    "smoke_test",
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


def _http_answer(response: httpx.Response) -> RoutedAnswer:
    if response.status_code != 200:
        return RoutedAnswer(failure=f"{response.status_code}: {response.text[:200]}")
    said = response.json().get("model_version")
    version, digest = response.headers.get("x-model-version", ""), response.headers.get("x-model-digest", "")
    return RoutedAnswer(version=version, said=said, digest=digest)


def sample_split(
    url: str,
    model: str,
    body: Mapping[str, Any],
    digests: Mapping[str, str],
    keys: Sequence[str],
    sticky_key: str | None,
    concurrency: int = 4,
    grpc_address: str | None = None,
) -> SplitSample:
    """Send one request per key (as ``sticky_key`` header, or gRPC metadata; unkeyed when None),
    ``concurrency`` at a time, to the router at ``url`` or, when given, its ``grpc_address``, and
    tally the versions."""
    sample = SplitSample(model)
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(concurrency))
        send: Callable[[str], RoutedAnswer]
        if grpc_address is None:
            client = stack.enter_context(httpx.Client(timeout=30, trust_env=False))

            def send(key: str) -> RoutedAnswer:
                return _http_answer(_post(client, url, model, body, {sticky_key: key} if sticky_key else {}))
        else:
            caller = stack.enter_context(GrpcCaller(grpc_address))
            message = infer_message(model, body)

            def send(key: str) -> RoutedAnswer:
                return caller.infer(message, {sticky_key.lower(): key} if sticky_key else {})

        for answer in pool.map(send, keys):
            if answer.failure is not None:
                sample.failures.append(answer.failure)
                continue
            if answer.said != answer.version or digests.get(answer.version) != answer.digest:
                sample.mismatches.append(
                    f"header {answer.version} {answer.digest}, body {answer.said}, catalog {digests.get(answer.version)}"
                )
            sample.answered[answer.version] += 1
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


def ask(
    catalog_path: Path,
    application: str,
    model: str | None,
    target: str = "local",
    key: str | None = None,
    read_body: Callable[[], Any] | None = None,
) -> tuple[str, httpx.Response]:
    """One request through ``application``'s router to ``model`` (None: the one model it routes),
    with ``read_body()`` (default: an input fitting the first routed version's signature) and
    ``key`` in the binding's sticky header; the model asked and the answer. UsageError when the
    application, the model or a router is not there, or ``key`` has no sticky header to go in."""
    catalog = validate_file(catalog_path).raise_for_errors()
    route, app = router_record(catalog_path, catalog, application, target)
    routed = [b.model for b in app.bindings if b.enabled]
    if model is None:
        if len(routed) != 1:
            raise UsageError(
                f"{application} routes {len(routed)} models ({', '.join(routed)}): choose one with --model"
            )
        model = routed[0]
    binding = next((b for b in app.bindings if b.enabled and b.model == model), None)
    if binding is None:
        hint = did_you_mean(model, routed)
        raise UsageError(
            f"{application} does not route model {model!r} (it routes {', '.join(routed)})"
            + (f"; {hint.rstrip()}" if hint else "")
        )
    if read_body is None:
        declared = next(m for m in catalog.models if m.name == model)
        body = example_request(next(v for v in declared.versions if v.version == binding.routes[0].version))
    else:
        body = read_body()
    sticky = (binding.sticky_key, key) if key and binding.sticky_key else None
    if key and not binding.sticky_key:
        raise UsageError(f"{application}'s binding of {model} has no sticky_key; --key has nothing to pin")
    return model, predict(route.url, model, body, sticky)


@dataclass(frozen=True, slots=True)
class SmokeRow:
    """One routed version: its weight in the catalog, the share observed and the range accepted (%)."""

    application: str
    model: str
    version: str
    catalog_weight: int
    observed: float
    accepted: list[float]  # [low, high]
    within_tolerance: bool
    requests: int
    failures: int
    mismatches: int


@dataclass(frozen=True)
class SmokeTest:
    rows: list[SmokeRow]
    bad: int  # failed requests, and answers from bytes the catalog does not name
    off: int  # observed shares outside their accepted range

    @property
    def ok(self) -> bool:
        return self.bad == 0 and self.off == 0


def smoke_test(
    catalog_path: Path,
    target: str = "local",
    only: Iterable[str] | None = None,
    count: int = 1000,
    protocol: str = "http",
) -> SmokeTest:
    """``count`` keyed requests (``smoke_keys``) per binding through every application's router
    (of the environments ``only``, or all), over ``protocol`` (``http`` or ``grpc``), each
    version's share judged by ``share_tolerance`` at ``SMOKE_ALPHA`` shared among the routes
    tested (Bonferroni). UsageError when a router has no gRPC address on record and gRPC is asked."""
    catalog = validate_file(catalog_path).raise_for_errors()
    versions = {(m.name, v.version): v for m in catalog.models for v in m.versions}
    samples = []
    for env in selected_environments(catalog, only):
        for app in env.applications:
            route, _ = router_record(catalog_path, catalog, app.name, target)
            if protocol == "grpc" and not route.grpc:
                raise UsageError(
                    f"{app.name}'s router serves no gRPC (started before routers did): run 'modelcat apply'"
                )
            grpc_address = route.grpc if protocol == "grpc" else None
            for binding in app.bindings:
                first = versions[(binding.model, binding.routes[0].version)]
                digests = {r.version: r.endpoint.digest for r in binding.routes}
                keys = smoke_keys(count)
                body = example_request(first)
                sample = sample_split(
                    route.url, binding.model, body, digests, keys, binding.sticky_key, grpc_address=grpc_address
                )
                samples.append((app, binding, sample))
    tested = sum(0 < r.weight < 100 for _, binding, _ in samples for r in binding.routes)
    alpha = SMOKE_ALPHA / max(1, tested)
    rows, bad, off = [], 0, 0
    for app, binding, sample in samples:
        bad += len(sample.failures) + len(sample.mismatches)
        answered = sum(sample.answered.values())
        for r in binding.routes:
            low, high = share_tolerance(answered, r.weight, alpha)
            within = low <= sample.answered[r.version] <= high
            off += not within
            rows.append(
                SmokeRow(
                    application=app.name,
                    model=binding.model,
                    version=r.version,
                    catalog_weight=r.weight,
                    observed=round(100 * sample.share(r.version), 1),
                    accepted=[round(100 * n / max(1, answered), 1) for n in (low, high)],
                    within_tolerance=within,
                    requests=sample.total,
                    failures=len(sample.failures),
                    mismatches=len(sample.mismatches),
                )
            )
    return SmokeTest(rows, bad, off)
