"""Pass/fail thresholds: `p95<500ms`, `error_rate<1%`, `rps>=100`, `GET /x:p95<300ms`.

`parse_threshold` reads any threshold loadmgr ever stored, so old documents are still
judged. What a person gives goes through `accept_threshold`, which also refuses a
direction the metric catalog says makes no sense (`p95>500ms`: lower is better), and is
stored as its `canonical` form (`p95 < 500` → `p95<500ms`): one spelling per meaning,
with the unit a bare number was read in said out loud (docs/verdicts.md).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from loadmgr.models.stats.catalog import BY_NAME, JUDGED, check_metric
from loadmgr.models.stats.catalog import metric as catalog_metric

# What a threshold may name (the catalog's `judged` metrics), and those of them in ms.
METRICS = JUDGED

# What a person may give (`accept_threshold`, and `check_thresholds` for the count): each
# threshold is stored about four times over a run's end (`thresholds`, its result's
# expression and scope, a verdict reason), so these keep a run's end inside 16 MiB
# (tests/unit/test_document_sizes.py). A test, a schedule and one `runs start` each hold
# at most THRESHOLDS_MAX, and so does the run they make together.
THRESHOLDS_MAX = 100
THRESHOLD_MAX_CHARS = 200
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
    r"^(?:(?P<scope>.+):)?\s*(?P<metric>[A-Za-z0-9_.]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>\S.*?)\s*$"
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

    @property
    def canonical(self) -> str:
        """The expression as it is stored: no blanks around the operator, the metric in
        lower case, the number without padding zeros, and the unit it was read in
        (`ms` for a latency written bare; none for a throughput)."""
        body = f"{self.metric}{self.op}{_plain(self._number)}{self._canonical_unit}"
        return f"{self.scope}:{body}" if self.scope is not None else body

    @property
    def _canonical_unit(self) -> str:
        kind = catalog_metric(self.metric).unit
        if kind == "ms":
            return self.unit or "ms"
        return "%" if kind == "fraction" and self.unit == "%" else ""

    @property
    def _number(self) -> str:
        """The number as written (before the unit), from the stored expression."""
        match = _THRESHOLD.match(self.expression)
        number = _NUMBER.match(match.group("value").strip().lower()) if match else None
        return number.group("num") if number else f"{self.limit}"

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
    metric = check_metric(
        match.group("metric"), METRICS, f"invalid threshold {text!r}", server=True
    )
    raw_value = match.group("value")
    number = _NUMBER.match(raw_value.strip().lower())
    if number is None:
        raise ValueError(f"invalid threshold {text!r}: bad value {raw_value!r}")
    value = float(number.group("num"))
    if not math.isfinite(value):
        raise ValueError(f"invalid threshold {text!r}: value {raw_value!r} is out of range")
    unit = number.group("unit")
    kind = catalog_metric(metric).unit
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


def _plain(number: str) -> str:
    """`0300` → `300`, `1.50` → `1.5`, `0.0` → `0`: the digits that say the value."""
    whole, _, fraction = number.partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def accept_threshold(text: str) -> Threshold:
    """A threshold a person gives: parsed, its direction checked against the metric
    catalog (a limit on what is better lower is an upper bound), and with its expression
    the canonical form to store. ValueError naming the bad part."""
    if len(text.strip()) > THRESHOLD_MAX_CHARS:
        raise ValueError(
            f"invalid threshold {text[:40]!r}...: longer than {THRESHOLD_MAX_CHARS} characters"
        )
    parsed = parse_threshold(text)
    metric = catalog_metric(parsed.metric)
    if parsed.op not in metric.threshold_ops:
        raise ValueError(
            f"invalid threshold {text!r}: {metric.better} is better for {parsed.metric}, so "
            f"its limit takes {' or '.join(metric.threshold_ops)}"
        )
    return replace(parsed, expression=parsed.canonical, unit=parsed._canonical_unit)


def merge_thresholds(base: list[str], overrides: list[str]) -> list[str]:
    """The test's thresholds with a run's added, a run's replacing any of the same key."""
    keys = {parse_threshold(t).key for t in overrides}
    kept = [t for t in base if parse_threshold(t).key not in keys]
    return kept + overrides
