"""Pass/fail thresholds: `p95<500ms`, `error_rate<1%`, `rps>=100`, `GET /x:p95<300ms`."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from loadmgr.models.stats.catalog import BY_NAME, JUDGED, check_metric

# What a threshold may name (the catalog's `judged` metrics), and those of them in ms.
METRICS = JUDGED
LATENCY_METRICS = tuple(name for name in METRICS if BY_NAME[name].unit == "ms")

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# The scope is everything before the last ':' that leaves a valid `metric op value`, so a
# request name may itself contain ':' (`GET http://h:8080/x:p95<1s`).
_THRESHOLD = re.compile(
    r"^(?:(?P<scope>.+):)?\s*(?P<metric>[A-Za-z0-9_]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>\S.*?)\s*$"
)
_NUMBER = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[a-z%/]*)$")


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold; `limit` is in ms for latencies, a fraction for error_rate.

    `unit` is the unit the expression was written in (`ms`, `s`, `%`, `` for a bare number
    or a fraction): values are shown back in it, so `p95<1s` reads `1.24s`, never `1240`.
    """

    expression: str
    metric: str
    op: str
    limit: float
    scope: str | None = None
    # How it was written, not what it means: `p95<1s` and `p95<1000ms` are the same limit.
    unit: str = field(default="", compare=False)

    def passes(self, actual: float | None) -> bool:
        """Whether `actual` satisfies the threshold; an unknown value never passes."""
        if actual is None or math.isnan(actual):
            return False
        return _OPERATORS[self.op](actual, self.limit)

    @property
    def key(self) -> str:
        """Identity for overriding: a run's `p95<…` replaces the test's `p95<…`."""
        return f"{self.scope or ''}:{self.metric}"

    def can_no_longer_pass(self, actual: float | None) -> bool:
        """True when a running value already breaks a limit that can only get worse.

        Only cumulative maxima (`max` upper limits) never improve; everything else may
        still recover before the run ends.
        """
        entry = BY_NAME.get(self.metric)
        grows = entry is not None and entry.abort == "max"
        return grows and self.op in ("<", "<=") and not self.passes(actual)


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold expression; raises ValueError naming the bad part."""
    expression = text.strip()
    match = _THRESHOLD.match(expression)
    if not expression or match is None:
        raise ValueError(
            f"invalid threshold {text!r}: expected METRIC OP VALUE, e.g. p95<500ms, "
            "error_rate<1%, rps>=100, or 'GET /path:p95<300ms'"
        )
    metric = check_metric(match.group("metric"), METRICS, f"invalid threshold {text!r}")
    raw_value = match.group("value")
    number = _NUMBER.match(raw_value.strip().lower())
    if number is None:
        raise ValueError(f"invalid threshold {text!r}: bad value {raw_value!r}")
    value = float(number.group("num"))
    if not math.isfinite(value):
        raise ValueError(f"invalid threshold {text!r}: value {raw_value!r} is out of range")
    unit = number.group("unit")
    kind = BY_NAME[metric].unit
    if kind == "ms":
        factors = {"": 1.0, "ms": 1.0, "s": 1000.0}
        if unit not in factors:
            raise ValueError(
                f"invalid threshold {text!r}: unit {unit!r} is not a time unit (ms or s)"
            )
        value *= factors[unit]
    elif kind == "fraction":
        if unit == "%":
            value /= 100.0
        elif unit != "":
            raise ValueError(f"invalid threshold {text!r}: {metric} takes % or a fraction")
        if value > 1.0:
            raise ValueError(f"invalid threshold {text!r}: {metric} above 100%")
    elif unit not in (("", "/s", "rps") if kind == "/s" else ("",)):
        raise ValueError(f"invalid threshold {text!r}: {metric} takes a plain number")
    scope = match.group("scope")
    scope = scope.strip() if scope else None
    if scope == "":
        raise ValueError(f"invalid threshold {text!r}: empty request name before ':'")
    return Threshold(expression, metric, match.group("op"), value, scope, unit)


def merge_thresholds(base: list[str], overrides: list[str]) -> list[str]:
    """The test's thresholds with a run's added, a run's replacing any of the same key."""
    keys = {parse_threshold(t).key for t in overrides}
    kept = [t for t in base if parse_threshold(t).key not in keys]
    return kept + overrides
