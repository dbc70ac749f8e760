"""The sequential statistics, proven by simulation: thousands of seeded rollouts at once (numpy), each
analysed at every look, as the issue asks (false positives, peeking, power)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from catalog.analysis.data import OutcomeStats
from catalog.analysis.sequential import (
    compare_means,
    difference_arrays,
    mixture_margin,
    mixture_p_value,
    planned_size,
    rate_against_limit,
    rate_p_value_arrays,
    rate_tuning_trials,
    sample_variance,
)

ALPHA = 0.05
ROLLOUTS = 1_000
LOOKS = 40
MAX_FALSE_POSITIVES = 0.055


def _rollouts(
    rng: np.random.Generator, *, per_look: int, share: float, rate_a: float, rate_b: float, looks: int = LOOKS
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """ROLLOUTS rollouts of a 0/1 outcome: each look adds ``per_look`` units, each to the candidate
    with probability ``share``; the arms' cumulative (n, total, total_sq) at every look."""
    n_b = rng.binomial(per_look, share, size=(ROLLOUTS, looks))
    n_a = per_look - n_b
    hits_a, hits_b = rng.binomial(n_a, rate_a), rng.binomial(n_b, rate_b)
    n_a, n_b, hits_a, hits_b = (np.cumsum(x, axis=1) for x in (n_a, n_b, hits_a, hits_b))
    return (n_a, hits_a, hits_a), (n_b, hits_b, hits_b)  # 0/1 values: the sum of squares is the sum


def _clopper_pearson(hits: int, trials: int) -> str:
    ci = stats.binomtest(hits, trials).proportion_ci(confidence_level=0.95, method="exact")
    return f"{hits / trials:.2%} (95 % Clopper-Pearson interval {ci.low:.2%} to {ci.high:.2%}, {hits}/{trials})"


def _excluded_at_some_look(
    baseline: tuple[np.ndarray, ...], candidate: tuple[np.ndarray, ...], effect: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per rollout: whether the confidence sequence, and the naive z-test, left 0 out at any look."""
    difference, se, kappa = difference_arrays(baseline, candidate, effect=effect, alpha=ALPHA)
    sequential = np.abs(difference) > mixture_margin(se, kappa, ALPHA)
    with np.errstate(divide="ignore", invalid="ignore"):  # the textbook z-test, as a dashboard computes it
        naive_se = np.sqrt(sum(sample_variance(*arm) / arm[0] for arm in (baseline, candidate)))
        naive = np.abs(difference) > stats.norm.ppf(1 - ALPHA / 2) * naive_se
    return sequential.any(axis=1), naive.any(axis=1)


@pytest.mark.parametrize(
    ("share", "rate"), [(0.5, 0.10), (0.1, 0.03), (0.1, 0.01)], ids=["50-50", "90-10", "90-10-rare"]
)
def test_aa_rollouts_looked_at_every_look_stay_within_the_false_positive_rate(share, rate):
    """1,000 A/A rollouts (no difference), 40 looks each: the anytime-valid interval leaves 0 out at
    some look in at most 5.5 %; the fixed-horizon z-test peeked at the same looks does far worse."""
    rng = np.random.default_rng(14)
    baseline, candidate = _rollouts(rng, per_look=500, share=share, rate_a=rate, rate_b=rate)
    sequential, naive = _excluded_at_some_look(baseline, candidate, effect=0.01)
    print(f"\nA/A {share:.0%} candidate, rate {rate:.0%}, {LOOKS} looks of 500 units")
    print(f"  anytime-valid false positives: {_clopper_pearson(int(sequential.sum()), ROLLOUTS)}")
    print(f"  naive z-test peeked:          {_clopper_pearson(int(naive.sum()), ROLLOUTS)}")
    assert sequential.mean() <= MAX_FALSE_POSITIVES
    assert naive.mean() > MAX_FALSE_POSITIVES
    assert naive.mean() > 3 * sequential.mean()


def test_aa_rollouts_of_a_skewed_mean_outcome_stay_within_the_false_positive_rate():
    """A basket value: 80 % of units spend nothing, the others a log-normal amount (a long tail)."""
    rng = np.random.default_rng(15)
    looks, per_look = 30, 300
    n = np.zeros((2, ROLLOUTS, looks))
    total, total_sq = np.zeros_like(n), np.zeros_like(n)
    for look in range(looks):
        arm = rng.random((ROLLOUTS, per_look)) < 0.5
        value = np.where(rng.random((ROLLOUTS, per_look)) < 0.2, rng.lognormal(3.0, 1.0, (ROLLOUTS, per_look)), 0.0)
        for index, members in enumerate((~arm, arm)):
            n[index, :, look] = members.sum(axis=1)
            total[index, :, look] = (value * members).sum(axis=1)
            total_sq[index, :, look] = (value * value * members).sum(axis=1)
    baseline, candidate = (tuple(np.cumsum(x[i], axis=1) for x in (n, total, total_sq)) for i in (0, 1))
    sequential, naive = _excluded_at_some_look(baseline, candidate, effect=2.0)
    print(f"\nA/A skewed mean: anytime-valid {_clopper_pearson(int(sequential.sum()), ROLLOUTS)}")
    print(f"  naive z-test peeked: {_clopper_pearson(int(naive.sum()), ROLLOUTS)}")
    assert sequential.mean() <= MAX_FALSE_POSITIVES
    assert naive.mean() > MAX_FALSE_POSITIVES


@pytest.mark.parametrize("share", [0.5, 0.1], ids=["50-50", "90-10"])
def test_twice_the_mde_is_found_in_80_percent_of_rollouts_at_the_planned_size(share):
    """Sized for the MDE at power 0.8: an effect of 2 MDE is found (0 left out on the good side at
    some look up to the planned size) in >= 80 %; the MDE itself near 80 % (the plan is not too small)."""
    rate, mde = 0.10, 0.02
    planned = planned_size(mde, ALPHA, rate * (1 - rate), rate * (1 - rate), candidate_share=share)
    per_look = -(-planned.total // 30)
    found = {}
    for multiple in (1, 2):
        rng = np.random.default_rng(20 + multiple)
        baseline, candidate = _rollouts(
            rng, per_look=per_look, share=share, rate_a=rate, rate_b=rate + multiple * mde, looks=30
        )
        difference, se, kappa = difference_arrays(baseline, candidate, effect=mde, alpha=ALPHA)
        found[multiple] = int(((difference - mixture_margin(se, kappa, ALPHA)) > 0).any(axis=1).sum())
        print(
            f"\n{share:.0%} candidate, {planned} planned: {multiple} MDE found in {_clopper_pearson(found[multiple], ROLLOUTS)}"
        )
    assert found[2] >= 0.8 * ROLLOUTS
    assert found[1] >= 0.72 * ROLLOUTS


def test_the_planned_size_grows_with_the_square_of_the_precision_asked():
    small = planned_size(0.02, ALPHA, 0.09, 0.09)
    assert small.baseline == small.candidate
    assert planned_size(0.01, ALPHA, 0.09, 0.09).total == pytest.approx(4 * small.total, rel=0.001)
    unequal = planned_size(0.02, ALPHA, 0.09, 0.09, candidate_share=0.1)
    assert unequal.candidate < small.candidate < unequal.baseline
    assert unequal.baseline == pytest.approx(9 * unequal.candidate, rel=0.01)


def test_the_p_value_is_the_smallest_alpha_whose_interval_leaves_the_null_out():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n_a, n_b = rng.integers(50, 5_000, size=2)
        a = OutcomeStats(int(n_a), float(h := rng.binomial(n_a, 0.1)), float(h))
        b = OutcomeStats(int(n_b), float(h := rng.binomial(n_b, 0.12)), float(h))
        comparison = compare_means(a, b, effect=0.01, alpha=ALPHA)
        null = float(rng.normal(0, 0.02))
        lo, hi = comparison.interval
        assert (comparison.p_value(null) <= ALPHA) == (not lo <= null <= hi)
        for end in (lo, hi):
            assert comparison.p_value(end) == pytest.approx(ALPHA, rel=1e-6)


def test_the_interval_is_unbounded_while_nothing_varies():
    comparison = compare_means(OutcomeStats(800, 0, 0), OutcomeStats(800, 0, 0), effect=0.01, alpha=ALPHA)
    assert comparison.interval == (-np.inf, np.inf)
    assert comparison.p_value() == 1.0
    assert comparison.planned.total == 0


def test_an_arm_without_conversions_is_compared_through_the_pooled_variance():
    """0 of 800 against 40 of 800: the empty arm's own variance is 0, the pooled one is not."""
    comparison = compare_means(OutcomeStats(800, 0, 0), OutcomeStats(800, 40, 40), effect=0.01, alpha=ALPHA)
    lo, hi = comparison.interval
    assert 0 < lo < 0.05 < hi < 0.1
    assert comparison.p_value() <= ALPHA


def test_a_rate_at_its_limit_is_rarely_declared_over_or_under_it_at_any_look():
    """1,000 runs of 40 looks at an error rate exactly at max_error_rate: the exact mixture declares
    it over (harm) at some look in at most 5.5 %, and under (safe) in at most 5.5 %."""
    limit = 0.02
    rng = np.random.default_rng(7)
    errors = np.cumsum(rng.binomial(250, limit, size=(ROLLOUTS, LOOKS)), axis=1)
    requests = np.cumsum(np.full((ROLLOUTS, LOOKS), 250), axis=1)
    p = rate_p_value_arrays(errors, requests, limit, limit=limit, alpha=ALPHA)
    over = ((p <= ALPHA) & (errors / requests > limit)).any(axis=1)
    under = ((p <= ALPHA) & (errors / requests < limit)).any(axis=1)
    print(f"\nrate at its limit: over {_clopper_pearson(int(over.sum()), ROLLOUTS)}")
    print(f"  under {_clopper_pearson(int(under.sum()), ROLLOUTS)}")
    assert over.mean() <= MAX_FALSE_POSITIVES
    assert under.mean() <= MAX_FALSE_POSITIVES


def test_a_rate_of_half_its_limit_is_shown_within_it_by_the_tuning_size():
    limit = 0.01
    trials = int(rate_tuning_trials(limit, ALPHA))
    rng = np.random.default_rng(8)
    errors = np.cumsum(rng.binomial(trials // 20, limit / 2, size=(ROLLOUTS, 20)), axis=1)
    requests = np.cumsum(np.full((ROLLOUTS, 20), trials // 20), axis=1)
    p = rate_p_value_arrays(errors, requests, limit, limit=limit, alpha=ALPHA)
    shown = ((p <= ALPHA) & (errors / requests < limit)).any(axis=1)
    print(f"\nhalf the limit shown within it by {trials} trials: {_clopper_pearson(int(shown.sum()), ROLLOUTS)}")
    assert shown.mean() >= 0.8


def test_the_rate_interval_matches_its_p_value_and_holds_zero_and_all():
    for events, trials in [(0, 500), (5, 500), (30, 500), (500, 500), (1, 20_000)]:
        bound = rate_against_limit(events, trials, limit=0.02, alpha=ALPHA)
        lo, hi = bound.interval
        assert lo <= bound.rate <= hi
        assert (bound.p_value <= ALPHA) == (not lo <= 0.02 <= hi)
        for end in (lo, hi):
            if 0 < end < 1:
                p_end = rate_p_value_arrays(events, trials, end, limit=0.02, alpha=ALPHA)
                assert float(p_end) == pytest.approx(ALPHA, rel=1e-4)
    assert rate_against_limit(0, 500, limit=0.02, alpha=ALPHA).interval[0] == 0.0
    assert rate_against_limit(500, 500, limit=0.02, alpha=ALPHA).interval[1] == 1.0


def test_the_mixture_p_value_and_margin_agree():
    se, kappa = np.array([0.01, 0.02, 0.5]), np.array([0.3, 7.9, 40.0])
    margin = mixture_margin(se, kappa, ALPHA)
    assert np.allclose(mixture_p_value(margin / se, kappa), ALPHA)
