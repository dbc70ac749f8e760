"""Sample ratio mismatch: did each routing table send units where its weights said?

Checked per weight epoch (one routing table in force): a chi-square test of the units each version
received against that table's declared weights, versions at weight 0 left out of the test. A unit on
a version the table gives no weight is a mismatch by itself (its probability under the table is 0,
so is the p-value). p < 0.001 flags the epoch; any flagged epoch withholds every verdict, since the
arms are then not the random split the comparison assumes.

Pooling the epochs of a ramp (10 -> 20 -> 50 %) and testing the totals against the final weights
flags a ramp that did exactly what it declared: ``pooled_check`` exists to show that, and nothing
decides on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy import stats

from catalog.analysis.data import Epoch, EpochCheck

__all__ = ["SRM_P_VALUE", "check_epoch", "check_epochs", "pooled_check"]

SRM_P_VALUE = 0.001
_SMALL_EXPECTED = 5.0  # below this expected count in a cell the chi-square is no guide: exact binomial


def check_epoch(epoch: Epoch) -> EpochCheck:
    """The chi-square of ``epoch.observed`` against ``epoch.declared`` (with fewer than 5 units
    expected on a version of two, the exact binomial test instead); nothing to test (no unit, or
    fewer than two weighted versions) is not a mismatch."""
    weighted = sorted(v for v, w in epoch.declared.items() if w > 0)
    stray = sum(n for v, n in epoch.observed.items() if v not in weighted)
    if stray:
        return EpochCheck(epoch, chi_square=None, p_value=0.0, srm=True)
    observed = [epoch.observed.get(v, 0) for v in weighted]
    units = sum(observed)
    if len(weighted) < 2 or units == 0:
        return EpochCheck(epoch, chi_square=None, p_value=None, srm=False)
    weight_sum = sum(epoch.declared[v] for v in weighted)
    expected = [units * epoch.declared[v] / weight_sum for v in weighted]
    chi_square = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    if len(weighted) == 2 and min(expected) < _SMALL_EXPECTED:
        p_value = float(stats.binomtest(observed[0], units, expected[0] / units).pvalue)
    else:
        p_value = float(stats.chi2.sf(chi_square, len(weighted) - 1))
    return EpochCheck(epoch, chi_square=chi_square, p_value=p_value, srm=p_value < SRM_P_VALUE)


def check_epochs(epochs: Sequence[Epoch]) -> tuple[EpochCheck, ...]:
    return tuple(check_epoch(epoch) for epoch in epochs)


def pooled_check(epochs: Sequence[Epoch]) -> EpochCheck:
    """The naive test (not used to decide): every epoch's units added up, against the weights of the
    last epoch, as one epoch from the first start to the last end."""
    if not epochs:
        raise ValueError("pooled_check needs at least one epoch")
    observed: dict[str, int] = {}
    for epoch in epochs:
        for version, units in epoch.observed.items():
            observed[version] = observed.get(version, 0) + units
    last = epochs[-1]
    return check_epoch(Epoch("pooled", epochs[0].start, last.end, dict(last.declared), observed))
