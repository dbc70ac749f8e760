"""Anytime-valid comparisons: intervals and p-values that stay valid however often they are looked at.

Two arms (a candidate against the baseline): the asymptotic confidence sequence of Waudby-Smith,
Arnold, Wu, Howard & Ramdas (2023), "Time-uniform central limit theory and asymptotic confidence
sequences" (Annals of Statistics; arXiv:2103.06476), its Gaussian-mixture boundary applied to the
difference of the two arms' means. Units arrive one after another and each is assigned to an arm at
random, so over the ``t`` units of both arms the difference in means is the average of i.i.d.
pseudo-outcomes whose variance is ``var_b / share_b + var_a / share_a`` (the randomized-experiment
case of that paper with no covariates); its standard error is therefore the familiar
``sqrt(var_a / n_a + var_b / n_b)``, whatever the split (50/50, 90/10). Each arm's variance is
taken as at least the variance of both arms pooled: with no difference that is the same variance,
better estimated from all the units (a 10 % arm of a rare outcome under-estimates its own, and the
A/A simulations then leave 0 out too often); with a difference it only widens the interval, so the
guarantee stays (conservatively) as the paper states it. The interval at ``t`` is::

    difference ± se * sqrt(2 (k + 1) / k * log(sqrt(k + 1) / alpha)),   k = t * rho²

and ``rho`` (the mixture's spread) is tuned so the interval is tightest at the planned size ``t*``:
``rho² = (-2 log alpha + log(1 - 2 log alpha)) / t*`` (the paper's approximate optimum). The planned
size is the one that finds the minimum detectable effect with power 0.8 at that point; the variances
it needs are the arms' observed ones (the declaration has none), a plug-in that settles as the data
grow, like the interval's own ``se``. The p-value is the smallest alpha whose interval excludes the
null, ``min(1, sqrt(k + 1) exp(-z² k / (2 (k + 1))))`` with ``z = (difference - null) / se``.

One rate against a limit (errors per request against ``max_error_rate``; the share of requests over
the latency limit against 1 %, since p99 <= limit exactly when at most 1 % are over it): counts are
Bernoulli, often rare, so the exact beta-binomial mixture of Robbins (1970) is used (Howard, Ramdas,
McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals
of Statistics): against a rate ``p``, ``M(p) = B(a + s, b + t - s) / B(a, b) / (p^s (1 - p)^(t - s))``
is a martingale under ``p``, so ``{p : M(p) < 1/alpha}`` covers the true rate at every ``t`` at once
with probability ``1 - alpha`` (Ville's inequality) and ``min(1, 1/M(p0))`` is the matching p-value.
The beta prior is centred on the limit with the spread of the Gaussian mixture above, tuned to the
number of requests that shows a rate of half the limit to be within it.

The array functions take numpy arrays (the simulations in tests/analysis run thousands of rollouts
at once); ``compare_means`` and ``rate_against_limit`` are their one-comparison forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special, stats

from catalog.analysis.data import OutcomeStats

__all__ = [
    "DEFAULT_POWER",
    "Comparison",
    "PlannedSize",
    "RateBound",
    "compare_means",
    "critical_value_at_plan",
    "difference_arrays",
    "mixture_kappa",
    "mixture_margin",
    "mixture_p_value",
    "planned_size",
    "rate_against_limit",
    "rate_p_value_arrays",
    "rate_tuning_trials",
    "sample_variance",
]

DEFAULT_POWER = 0.8
Floats = npt.NDArray[np.float64]


def _kappa_at_plan(alpha: float) -> float:
    """``t* rho²``: the mixture's optimum for alpha, the same at every planned size."""
    log_alpha = math.log(alpha)
    return -2.0 * log_alpha + math.log(1.0 - 2.0 * log_alpha)


def mixture_kappa(units: npt.ArrayLike, planned_units: npt.ArrayLike, alpha: float) -> Floats:
    """``t rho²`` at ``units`` for a mixture tuned to ``planned_units`` (both totals over the arms)."""
    planned = np.maximum(np.asarray(planned_units, dtype=np.float64), 1.0)
    return np.asarray(units, dtype=np.float64) * _kappa_at_plan(alpha) / planned


def mixture_margin(std_error: npt.ArrayLike, kappa: npt.ArrayLike, alpha: float) -> Floats:
    """Half the width of the confidence sequence: ``se`` times the Gaussian-mixture boundary."""
    k = np.asarray(kappa, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        boundary = np.sqrt(2.0 * (k + 1.0) / k * np.log(np.sqrt(k + 1.0) / alpha))
    return np.asarray(std_error, dtype=np.float64) * boundary


def mixture_p_value(z: npt.ArrayLike, kappa: npt.ArrayLike) -> Floats:
    """The anytime-valid p-value of a standardized distance ``z`` from the null: the smallest alpha
    whose interval (``mixture_margin``) leaves the null out."""
    k = np.asarray(kappa, dtype=np.float64)
    z2 = np.square(np.asarray(z, dtype=np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.sqrt(k + 1.0) * np.exp(-z2 * k / (2.0 * (k + 1.0)))
    return np.asarray(np.minimum(np.nan_to_num(p, nan=1.0), 1.0), dtype=np.float64)


def critical_value_at_plan(alpha: float) -> float:
    """The boundary in standard errors at the planned size (3.04 at alpha 0.05, where a fixed-horizon
    test uses 1.96): what anytime validity costs there."""
    k = _kappa_at_plan(alpha)
    return math.sqrt(2.0 * (k + 1.0) / k * math.log(math.sqrt(k + 1.0) / alpha))


def sample_variance(n: npt.ArrayLike, total: npt.ArrayLike, total_sq: npt.ArrayLike) -> Floats:
    """The unbiased variance from count, sum and sum of squares (0 below two values)."""
    count = np.asarray(n, dtype=np.float64)
    s = np.asarray(total, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (np.asarray(total_sq, dtype=np.float64) - s * s / count) / (count - 1.0)
    return np.asarray(np.where(count >= 2, np.maximum(np.nan_to_num(var), 0.0), 0.0), dtype=np.float64)


def _planned_total(
    effect: npt.ArrayLike,
    alpha: float,
    power: float,
    var_a: npt.ArrayLike,
    var_b: npt.ArrayLike,
    share_b: npt.ArrayLike,
) -> Floats:
    share = np.clip(np.asarray(share_b, dtype=np.float64), 1e-9, 1.0 - 1e-9)
    spread = np.asarray(var_b, dtype=np.float64) / share + np.asarray(var_a, dtype=np.float64) / (1.0 - share)
    multiplier = (critical_value_at_plan(alpha) + float(stats.norm.ppf(power))) ** 2
    with np.errstate(divide="ignore"):
        return np.asarray(multiplier * spread / np.square(np.asarray(effect, dtype=np.float64)), dtype=np.float64)


@dataclass(frozen=True)
class PlannedSize:
    """The units each arm needs for the confidence sequence to find ``effect`` with ``power``."""

    baseline: int
    candidate: int

    @property
    def total(self) -> int:
        return self.baseline + self.candidate


def planned_size(
    effect: float,
    alpha: float,
    variance_baseline: float,
    variance_candidate: float,
    *,
    candidate_share: float = 0.5,
    power: float = DEFAULT_POWER,
) -> PlannedSize:
    """Units per arm at which an ``effect`` (absolute, > 0) is outside the interval with ``power``:
    ``t* = (c + z_power)² (var_b / share_b + var_a / share_a) / effect²`` over both arms, ``c`` the
    boundary at the plan (``critical_value_at_plan``), split by the candidate's share."""
    if effect <= 0 or not 0 < candidate_share < 1:
        raise ValueError(f"planned_size needs effect > 0 and a share in (0, 1), not {effect}, {candidate_share}")
    total = float(_planned_total(effect, alpha, power, variance_baseline, variance_candidate, candidate_share))
    return PlannedSize(
        baseline=math.ceil(total * (1.0 - candidate_share)), candidate=math.ceil(total * candidate_share)
    )


def difference_arrays(
    baseline: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
    candidate: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
    *,
    effect: float,
    alpha: float,
    power: float = DEFAULT_POWER,
) -> tuple[Floats, Floats, Floats]:
    """(difference, se, kappa) of candidate - baseline from each arm's (n, total, total_sq), element
    by element; the mixture is tuned to the planned size for ``effect`` at the observed variances and
    split. ``mixture_margin`` and ``mixture_p_value`` turn them into intervals and p-values."""
    n_a, var_a, mean_a = _arm(*baseline)
    n_b, var_b, mean_b = _arm(*candidate)
    units = n_a + n_b
    pooled = sample_variance(
        units, np.add(baseline[1], candidate[1], dtype=np.float64), np.add(baseline[2], candidate[2], dtype=np.float64)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.maximum(var_a, pooled) / n_a + np.maximum(var_b, pooled) / n_b)
        share_b = n_b / units
    # below two units in an arm, or while nothing varies (no conversion yet), the plug-in variance
    # says nothing: an unbounded interval
    se = np.where((n_a < 2) | (n_b < 2) | (pooled <= 0), np.inf, se)
    planned = _planned_total(effect, alpha, power, var_a, var_b, np.nan_to_num(share_b, nan=0.5))
    return mean_b - mean_a, se, mixture_kappa(units, np.nan_to_num(planned, posinf=1.0), alpha)


def _arm(n: npt.ArrayLike, total: npt.ArrayLike, total_sq: npt.ArrayLike) -> tuple[Floats, Floats, Floats]:
    count = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.nan_to_num(np.asarray(total, dtype=np.float64) / count)
    return count, sample_variance(n, total, total_sq), np.asarray(mean, dtype=np.float64)


@dataclass(frozen=True)
class Comparison:
    """candidate - baseline on one outcome: the estimate, its anytime-valid interval at ``alpha``, and
    what the p-values need (``se``; ``kappa``, the mixture at the current size)."""

    difference: float
    std_error: float
    kappa: float
    alpha: float
    planned: PlannedSize

    @property
    def interval(self) -> tuple[float, float]:
        margin = float(mixture_margin(self.std_error, self.kappa, self.alpha))
        return (self.difference - margin, self.difference + margin)

    def p_value(self, null: float = 0.0) -> float:
        """The smallest alpha whose interval leaves ``null`` out (1 when nothing varies yet)."""
        return float(mixture_p_value((self.difference - null) / self.std_error, self.kappa))


def compare_means(
    baseline: OutcomeStats,
    candidate: OutcomeStats,
    *,
    effect: float | None,
    alpha: float,
    power: float = DEFAULT_POWER,
) -> Comparison:
    """The confidence sequence of candidate - baseline, tuned to find ``effect`` (the plan's MDE, or a
    guardrail's allowed drop; None: a tenth of the arms' standard deviation, a small effect). Below
    two units in an arm, or while every unit of both has the same value (no conversion yet),
    ``std_error`` is infinite (the interval unbounded, the p-value 1) and ``planned`` unknown (0, 0)."""
    var_a = float(sample_variance(baseline.n, baseline.total, baseline.total_sq))
    var_b = float(sample_variance(candidate.n, candidate.total, candidate.total_sq))
    if effect is None or effect <= 0:
        effect = 0.1 * math.sqrt((var_a + var_b) / 2.0) or 1.0
    difference, se, kappa = difference_arrays(
        (baseline.n, baseline.total, baseline.total_sq),
        (candidate.n, candidate.total, candidate.total_sq),
        effect=effect,
        alpha=alpha,
        power=power,
    )
    share = candidate.n / (baseline.n + candidate.n)
    planned = (
        planned_size(effect, alpha, var_a, var_b, candidate_share=share, power=power)
        if math.isfinite(float(se))
        else PlannedSize(0, 0)
    )
    return Comparison(float(difference), float(se), float(kappa), alpha, planned)


# --- one rate against a limit (exact beta-binomial mixture) ---


def rate_tuning_trials(limit: float, alpha: float, power: float = DEFAULT_POWER) -> float:
    """The trials at which a rate of half ``limit`` is shown within it with ``power``: where the
    mixture is tuned (the Gaussian plan with variance ``limit (1 - limit)`` and effect ``limit / 2``)."""
    return (critical_value_at_plan(alpha) + float(stats.norm.ppf(power))) ** 2 * 4.0 * (1.0 - limit) / limit


def _prior(limit: float, alpha: float) -> tuple[float, float]:
    """Beta(a, b) centred on ``limit``, as spread as the Gaussian mixture: a + b + 1 = 1 / rho²."""
    size = max(rate_tuning_trials(limit, alpha) / _kappa_at_plan(alpha) - 1.0, 2.0)
    return size * limit, size * (1.0 - limit)


def _log_mixture(
    events: npt.ArrayLike, trials: npt.ArrayLike, rate: npt.ArrayLike, prior: tuple[float, float]
) -> Floats:
    s = np.asarray(events, dtype=np.float64)
    t = np.asarray(trials, dtype=np.float64)
    p = np.asarray(rate, dtype=np.float64)
    a, b = prior
    with np.errstate(divide="ignore", invalid="ignore"):
        log_likelihood = special.xlogy(s, p) + special.xlog1py(t - s, -p)
    return np.asarray(special.betaln(a + s, b + t - s) - special.betaln(a, b) - log_likelihood, dtype=np.float64)


def rate_p_value_arrays(
    events: npt.ArrayLike, trials: npt.ArrayLike, null: float, *, limit: float, alpha: float
) -> Floats:
    """The anytime-valid p-value of the rate ``null`` after ``events`` of ``trials``: ``min(1, 1/M)``
    with the mixture tuned for ``limit`` (element by element)."""
    log_m = _log_mixture(events, trials, null, _prior(limit, alpha))
    return np.asarray(np.exp(-np.maximum(log_m, 0.0)), dtype=np.float64)


@dataclass(frozen=True)
class RateBound:
    """A rate (events per trial) with its anytime-valid interval at ``alpha`` and its p-value at the
    limit (the smallest alpha whose interval leaves the limit out)."""

    events: int
    trials: int
    limit: float
    alpha: float
    interval: tuple[float, float]
    p_value: float

    @property
    def rate(self) -> float:
        return self.events / self.trials


def rate_against_limit(events: int, trials: int, *, limit: float, alpha: float) -> RateBound:
    """The confidence sequence of a rate, from ``events`` out of ``trials`` (> 0), against ``limit``."""
    if trials <= 0 or not 0 <= events <= trials or not 0 < limit < 1:
        raise ValueError(
            f"rate_against_limit needs 0 <= events <= trials, trials > 0, limit in (0, 1): {events}/{trials}, {limit}"
        )
    prior = _prior(limit, alpha)
    threshold = math.log(1.0 / alpha)
    rate = events / trials

    def excess(p: float) -> float:
        return float(_log_mixture(events, trials, p, prior)) - threshold

    tiny = 1e-12
    lower = 0.0 if events == 0 or excess(tiny) < 0 else float(optimize.brentq(excess, tiny, rate, xtol=1e-12))
    upper = (
        1.0 if events == trials or excess(1 - tiny) < 0 else float(optimize.brentq(excess, rate, 1 - tiny, xtol=1e-12))
    )
    p_value = float(rate_p_value_arrays(events, trials, limit, limit=limit, alpha=alpha))
    return RateBound(events, trials, limit, alpha, (lower, upper), p_value)
