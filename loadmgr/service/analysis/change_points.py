"""Change points in a series of run results: where its mean shifted for good, despite noise.

The search is ruptures' penalised exact search (PELT) with the mean-shift cost ("l2"),
run through `KernelCPD(kernel="linear")`, which is the same cost computed in C: 1,000
points take milliseconds instead of seconds. The penalty comes from the series itself (a
robust noise estimate: the MAD of first differences, which a shift in the mean barely
moves) times log(n), divided by the sensitivity, so no threshold is set by hand.

Every candidate is then kept only if the regimes on either side of it differ both
significantly (Welch's t-test, `p_value`) and by at least `min_change` relative to the
regime before; the weakest failing candidate is dropped and the rest tested again, until
all hold. The same input always gives the same output: nothing here is random.

ruptures (with numpy and scipy) is the optional `trend` extra: imported only when a series
is searched, so that `loadmgr --help` and every other command stay fast without it.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loadmgr.errors import ValidationFailed

# A regime has at least this many runs: one or two odd runs are outliers, not a shift.
MIN_REGIME = 3
SENSITIVITIES = {"low": 0.5, "medium": 1.0, "high": 2.0}
DEFAULT_P_VALUE = 0.01
DEFAULT_MIN_CHANGE = 0.05
# The penalty per change point, in noise variances × log(n), at sensitivity 1. BIC's 2 lets
# PELT split pure noise in about one series of ten at 30-60 runs; 8 kept none in 600
# noise-only series while still finding a 20% step under ±10% noise in 98% of them
# (tests/unit/test_trends.py, docs/trends.md).
PENALTY_FACTOR = 8.0
# 1.4826 turns a MAD into a standard deviation for normal noise; √2 undoes the
# differencing, which doubles the variance.
_MAD_TO_SIGMA = 1.4826 / math.sqrt(2.0)


def ruptures_installed() -> bool:
    """Whether the optional `trend` extra (ruptures, with scipy) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("ruptures", "scipy"))


def require_ruptures() -> None:
    """Fail with a usage error (exit 2) naming the extra when ruptures is not installed."""
    if not ruptures_installed():
        raise ValidationFailed(
            "trends need the optional 'trend' extra",
            hint="pip install 'loadmgr[trend]' (in a clone of loadmgr: pip install -e '.[trend]')",
        )


@dataclass(frozen=True)
class Detection:
    """How sensitive the search is: see the module's docstring."""

    sensitivity: float = 1.0
    p_value: float = DEFAULT_P_VALUE
    min_change: float = DEFAULT_MIN_CHANGE

    def to_document(self) -> dict[str, Any]:
        return {
            "sensitivity": self.sensitivity,
            "pValue": self.p_value,
            "minChange": self.min_change,
        }


@dataclass(frozen=True)
class Regime:
    """Positions `start`..`end` (end excluded) of the searched series, and their mean."""

    start: int
    end: int
    mean: float


@dataclass(frozen=True)
class Shift:
    """A kept change point: the regime starting at `index`, against the one before it."""

    index: int
    before: float
    after: float
    p_value: float

    @property
    def relative_change(self) -> float:
        """(after - before) / |before|; ±inf from a regime of 0."""
        return _relative(self.before, self.after)


def _relative(before: float, after: float) -> float:
    if before == 0:
        return 0.0 if after == 0 else math.copysign(math.inf, after)
    return (after - before) / abs(before)


def noise_sigma(values: Sequence[float]) -> float:
    """The series' noise as a standard deviation, from the MAD of its first differences.

    Falls back to the plain deviation of the differences when most of them are 0 (an error
    rate that is 0 in most runs), so a few non-zero runs do not make every point a change.
    """
    import numpy as np

    if len(values) < 2:
        return 0.0
    diffs = np.diff(np.asarray(values, dtype=float))
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    sigma = mad * _MAD_TO_SIGMA
    if sigma == 0.0:
        sigma = float(np.std(diffs)) / math.sqrt(2.0)
    return sigma


def _welch_p(left: Sequence[float], right: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test; 0 or 1 for two constant regimes."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
    if float(np.var(a)) == 0.0 and float(np.var(b)) == 0.0:
        return 1.0 if float(a.mean()) == float(b.mean()) else 0.0
    with warnings.catch_warnings():
        # "Precision loss … nearly identical": a near-flat series, whose p-value is still
        # the answer (the shift is then too small to keep anyway); not the user's business.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    p = float(result.pvalue)
    return 1.0 if math.isnan(p) else p


def _candidates(values: Sequence[float], sensitivity: float) -> list[int]:
    """Where PELT would start a new regime (positions), before any test."""
    count = len(values)
    if count < 2 * MIN_REGIME or all(value == values[0] for value in values):
        return []  # no shift and no noise either: answered before numpy is imported
    sigma = noise_sigma(values)
    if sigma == 0.0:
        return []
    # Only a series that can hold a shift pays for ruptures (with scipy, ~0.8 s of imports:
    # more than the rest of a run's HTML report).
    import numpy as np
    import ruptures

    penalty = PENALTY_FACTOR * sigma * sigma * math.log(count) / sensitivity
    signal = np.asarray(values, dtype=float).reshape(-1, 1)
    ends = ruptures.KernelCPD(kernel="linear", min_size=MIN_REGIME).fit(signal).predict(pen=penalty)
    return [int(end) for end in ends[:-1]]


def _regimes(values: Sequence[float], starts: list[int]) -> list[Regime]:
    bounds = [0, *starts, len(values)]
    return [
        Regime(lo, hi, math.fsum(values[lo:hi]) / (hi - lo))
        for lo, hi in zip(bounds, bounds[1:], strict=False)
        if hi > lo
    ]


def detect_shifts(values: Sequence[float], detection: Detection) -> list[Shift]:
    """The kept change points of `values` (oldest first), each with its regimes' means."""
    starts = _candidates(values, detection.sensitivity)
    while starts:
        regimes = _regimes(values, starts)
        shifts = []
        failing: list[tuple[float, float, int]] = []
        for position, start in enumerate(starts):
            before, after = regimes[position], regimes[position + 1]
            p = _welch_p(values[before.start : before.end], values[after.start : after.end])
            shift = Shift(start, before.mean, after.mean, p)
            shifts.append(shift)
            magnitude = abs(shift.relative_change)
            if p >= detection.p_value or magnitude < detection.min_change:
                # The least convincing goes first: the highest p, then the smallest change.
                failing.append((p, -magnitude, position))
        if not failing:
            return shifts
        del starts[max(failing)[2]]
    return []


def regimes_of(values: Sequence[float], shifts: Sequence[Shift]) -> list[Regime]:
    """The regimes the kept change points cut `values` into."""
    return _regimes(values, [shift.index for shift in shifts])


def sensitivity_word(value: float) -> str:
    """`medium`: a sensitivity as `--sensitivity` takes it (the number when it is none of
    the words)."""
    words = [word for word, number in SENSITIVITIES.items() if number == value]
    return words[0] if words else f"{value:g}"


def parse_sensitivity(text: str) -> float:
    """`low`, `medium`, `high`, or a positive number (medium is 1; higher finds more)."""
    cleaned = text.strip().lower()
    if cleaned in SENSITIVITIES:
        return SENSITIVITIES[cleaned]
    try:
        value = float(cleaned)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value > 100:
        raise ValidationFailed(
            f"invalid --sensitivity {text!r} (low, medium, high, or a number above 0 "
            "up to 100; medium is 1)"
        )
    return value


def parse_fraction(option: str, text: str, *, upper: float) -> float:
    """`5%` or `0.05` → 0.05, between 0 (excluded) and `upper`."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100.0 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value > upper:
        shown = f"{upper:g}" if upper < 1 else f"{upper:.0%}"
        raise ValidationFailed(
            f"invalid {option} {text!r} (a fraction or percentage above 0, up to {shown})"
        )
    return value
