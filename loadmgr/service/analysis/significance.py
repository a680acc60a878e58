"""Whether a change between two runs is more than their own noise (docs/trends.md,
"Significance of a comparison").

A run's steady intervals are samples of each metric (one value per interval). Two runs
are compared with the Mann-Whitney U rank test (two-sided, normal approximation with the
tie and continuity corrections: scipy's `mannwhitneyu(method="asymptotic")`, which the
unit tests check it equals). A rank test, because per-interval latencies are skewed and
one slow interval (a GC pause, a cold cache) must not decide; a bootstrap would need
thousands of resamples per metric and request where the ranks need one sort. It is
written here rather than imported because `import scipy.stats` alone takes about a
second, longer than the whole `metrics compare`.

With the test comes the smallest change the two runs could have detected (the minimum
detectable effect at ALPHA and POWER, from the samples' spread), as a fraction of the
reference's value: a "not significant" next to a detectable 40 % says the runs are too
noisy (or too short) to judge a 20 % change, not that there was none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

TEST = "mann-whitney-u"
ALPHA = 0.05  # two-sided
POWER = 0.80
# Fewer steady intervals a side than this: no test (the normal approximation of U and
# the spread behind the detectable change need a few samples).
MIN_SAMPLES = 5

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Significance:
    """The test of one change. `significant` None: not tested (`note` says why)."""

    significant: bool | None
    p_value: float | None
    detectable: float | None  # fraction of the reference's value; None when unknown
    samples: tuple[int, int]  # steady intervals of the reference and of the run
    note: str | None = None
    test: str = TEST


def mann_whitney_u(before: Sequence[float], after: Sequence[float]) -> tuple[float, float]:
    """U of `after` (how often a value of `after` beats one of `before`, ties half) and the
    two-sided p-value; (n1*n2/2, 1.0) when every value is the same."""
    n1, n2 = len(before), len(after)
    pooled = sorted([(value, 1) for value in after] + [(value, 0) for value in before])
    rank_sum = 0.0  # of `after`
    ties = 0.0  # sum of t^3 - t over groups of equal values
    index = 0
    while index < len(pooled):
        end = index
        while end + 1 < len(pooled) and pooled[end + 1][0] == pooled[index][0]:
            end += 1
        size = end - index + 1
        rank = (index + end) / 2 + 1  # the group's mean rank
        rank_sum += rank * sum(side for _, side in pooled[index : end + 1])
        ties += size**3 - size
        index = end + 1
    u = rank_sum - n2 * (n2 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return u, 1.0
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    return u, min(1.0, 2 * _NORMAL.cdf(-z)) if z > 0 else 1.0


def detectable_change(
    before: Sequence[float],
    after: Sequence[float],
    reference: float | None,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float | None:
    """The smallest shift of the mean the samples would find at `alpha` (two-sided) with
    `power`, as a fraction of `reference`: (z(1-alpha/2) + z(power)) * sqrt(s1²/n1 + s2²/n2)
    / |reference|. None with fewer than two values a side or a reference of 0."""
    if len(before) < 2 or len(after) < 2 or not reference:
        return None
    spread = math.sqrt(_variance(before) / len(before) + _variance(after) / len(after))
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
    return z * spread / abs(reference)


def _variance(values: Sequence[float]) -> float:
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def significance(
    before: Sequence[float],
    after: Sequence[float],
    *,
    change: float | None,
    reference: float | None,
    alpha: float = ALPHA,
) -> Significance:
    """Whether the run's steady intervals (`after`) differ from the reference's (`before`)
    in the direction of `change` (the change of the compared numbers: a shift the other
    way is not this change), at `alpha`."""
    counts = (len(before), len(after))
    detectable = detectable_change(before, after, reference, alpha=alpha)
    if min(counts) < MIN_SAMPLES:
        note = (
            f"too few steady intervals to test ({counts[0]} and {counts[1]}; "
            f"at least {MIN_SAMPLES} a side)"
        )
        return Significance(None, None, detectable, counts, note)
    u, p_value = mann_whitney_u(before, after)
    shift = u - counts[0] * counts[1] / 2  # > 0: the run's values tend to be higher
    same_way = change is not None and shift * change > 0
    return Significance(p_value < alpha and same_way, p_value, detectable, counts)
