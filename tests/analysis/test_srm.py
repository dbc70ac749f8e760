"""Sample ratio mismatch per weight epoch: a real mismatch is flagged, a correct ramp is not."""

from __future__ import annotations

import numpy as np

from catalog.analysis.data import Epoch
from catalog.analysis.srm import SRM_P_VALUE, check_epoch, check_epochs, pooled_check


def _epoch(declared: dict[str, int], observed: dict[str, int], table: str = "t1") -> Epoch:
    return Epoch(table, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", declared, observed)


def test_a_48_52_split_declared_50_50_over_20000_units_is_flagged():
    check = check_epoch(_epoch({"2.1.0": 50, "2.2.0": 50}, {"2.1.0": 9_600, "2.2.0": 10_400}))
    print(f"\n48/52 of 20,000 at 50/50: chi-square {check.chi_square:.1f}, p = {check.p_value:.2g}")
    assert check.srm
    assert check.p_value is not None and check.p_value < SRM_P_VALUE


def test_a_split_as_declared_is_not_flagged():
    check = check_epoch(_epoch({"2.1.0": 50, "2.2.0": 50}, {"2.1.0": 10_050, "2.2.0": 9_950}))
    assert not check.srm
    assert check.p_value is not None and check.p_value > 0.3


def _ramp(rng: np.random.Generator) -> list[Epoch]:
    """A canary ramped 10 -> 20 -> 50 %, each epoch's units drawn at exactly its declared weights."""
    epochs = []
    for step, (weight, units) in enumerate([(10, 6_000), (20, 6_000), (50, 8_000)]):
        canary = int(rng.binomial(units, weight / 100))
        epochs.append(
            _epoch({"1.0.0": 100 - weight, "1.1.0": weight}, {"1.0.0": units - canary, "1.1.0": canary}, f"t{step}")
        )
    return epochs


def test_a_correct_ramp_is_not_flagged_per_epoch_but_the_pooled_test_flags_it():
    epochs = _ramp(np.random.default_rng(10))
    checks = check_epochs(epochs)
    pooled = pooled_check(epochs)
    print("\nramp 10 -> 20 -> 50 %: " + ", ".join(f"epoch p = {c.p_value:.3g}" for c in checks))
    print(f"pooled against the last weights: p = {pooled.p_value:.2g}")
    assert not any(check.srm for check in checks)
    assert pooled.srm


def test_correct_ramps_are_rarely_flagged_in_any_epoch():
    """200 seeded ramps: an epoch is flagged at p < 0.001 in about 0.3 % of ramps (3 epochs each)."""
    flagged = sum(any(c.srm for c in check_epochs(_ramp(np.random.default_rng(seed)))) for seed in range(200))
    assert flagged <= 3


def test_a_unit_on_a_version_at_weight_0_is_a_mismatch():
    check = check_epoch(_epoch({"1.0.0": 100, "1.1.0": 0}, {"1.0.0": 5_000, "1.1.0": 1}))
    assert check.srm and check.p_value == 0.0
    assert check_epoch(_epoch({"1.0.0": 50, "1.1.0": 50}, {"1.0.0": 10, "1.1.0": 12, "0.9.0": 1})).srm


def test_versions_at_weight_0_are_left_out_of_the_test():
    check = check_epoch(_epoch({"a": 45, "b": 45, "c": 10, "d": 0}, {"a": 4_520, "b": 4_480, "c": 1_000}))
    assert not check.srm
    assert check.chi_square is not None and check.chi_square < 1


def test_a_short_epoch_is_tested_exactly():
    """5 of 10 units on a 10 % canary: the chi-square says p = 2.5e-5 (flagged), the exact binomial
    p = 0.0016: a short epoch at a table change is not a mismatch."""
    check = check_epoch(_epoch({"1.0.0": 90, "1.1.0": 10}, {"1.0.0": 5, "1.1.0": 5}))
    assert check.p_value is not None and 0.001 < check.p_value < 0.002
    assert not check.srm
    assert check_epoch(_epoch({"1.0.0": 90, "1.1.0": 10}, {"1.0.0": 0, "1.1.0": 12})).srm


def test_nothing_to_test_is_not_a_mismatch():
    assert check_epoch(_epoch({"1.0.0": 100}, {"1.0.0": 700})).p_value is None
    assert not check_epoch(_epoch({"1.0.0": 50, "1.1.0": 50}, {})).srm
