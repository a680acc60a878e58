"""Whether each threshold holds *now*, judged as a run goes on (`--abort-on-fail`, live view).

Thresholds are judged on a run's final numbers; this judges them on the intervals stored so
far, so a run that cannot pass stops early and the live view shows each one's state. Pure:
the collector feeds it every interval document it stores (`observe`) and acts on a breach.

How each kind is judged (defaults in `JudgeSettings`):

- `error_rate` and the percentiles (`p50 p90 p95 p99`) and `avg`: over a sliding window of
  the last `window_intervals` intervals, once that window holds at least `min_requests`
  requests. Percentiles come from the intervals' histograms (`hist`, exact) merged over the
  window when every interval has one; else from the intervals' own percentile values,
  weighted by their requests (Locust's rolling or cumulative figures: approximate, and
  `p90` has none). A breach must also be significant: with `confidence` 0.95, an error
  rate breaks `error_rate<1%` only when its one-sided 95 % Wilson lower bound is at or
  above 1 %, and a histogram's `p95<300ms` only when the share of requests at or above
  300 ms is, at that confidence, above 5 %. So 2 failures in the first 100 requests do not
  stop a run whose real error rate is 0.5 %, and 10 % errors stop it at once.
- `rps`: only once spawning has completed (the caller sets `spawn_complete` when Locust
  reports `running`), over a full window of intervals observed after it; the first one
  observed after the flag is set is left out, since it may hold the end of the ramp-up.
- `max<`/`max<=` (and `min>`/`min>=`): at once, on any interval, since a run's maximum only
  grows (its minimum only shrinks). The other directions can only become true, never
  break for good, so they are never breached mid-run.
- A scoped threshold (`GET /x:p95<300ms`) reads that request's items (`requestStats[]`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, NamedTuple

from loadmgr.models import Threshold, parse_threshold
from loadmgr.models.formatting import finite_number, threshold_value
from loadmgr.models.stats.catalog import METRICS, metric
from loadmgr.models.stats.stored import find_request
from loadmgr.service.judging.verdicts import Breach
from loadmgr.service.judging.window_stats import (
    hist_percentile,
    merge_hists,
    parse_hist,
    wilson_bounds,
)

OK = "ok"
BREACHED = "breached"
NOT_JUDGED = "not judged"

_UPPER = ("<", "<=")
# The latencies an interval carries as values of its own (the catalog's, judged as a
# quantile, a mean or an extreme), by metric: their keys in the interval's own fields and
# in its `requestStats[]` items; and where its RPS is.
_VALUES = ("quantile", "mean", "max", "min")
_TOTAL_KEYS = {m.name: m.interval_total_key for m in METRICS if m.abort in _VALUES}
_REQUEST_KEYS = {m.name: m.request_key for m in METRICS if m.abort in _VALUES}
_RPS = next(m for m in METRICS if m.abort == "throughput")
# The run's extremes so far: the metrics whose highest (lowest) value is theirs.
_HIGHS = tuple(m.name for m in METRICS if m.abort == "max")
_LOWS = tuple(m.name for m in METRICS if m.abort == "min")


@dataclass(frozen=True)
class JudgeSettings:
    """How a run is judged as it goes; stored with the collector's settings on the run."""

    # 3 intervals: 15 s at the default 5 s interval, so a breach is seen within two.
    window_intervals: int = 3
    # Fewer requests than this say too little about a rate or a percentile.
    min_requests: int = 100
    # None: a plain comparison, no significance test.
    confidence: float | None = 0.95

    def __post_init__(self) -> None:
        if self.window_intervals < 1:
            raise ValueError("window_intervals must be 1 or more")
        if self.min_requests < 0:
            raise ValueError("min_requests must be 0 or more")
        if self.confidence is not None and not 0.5 <= self.confidence < 1:
            raise ValueError("confidence must be at least 0.5 and below 1")

    def to_document(self) -> dict[str, Any]:
        return {
            "abortWindowIntervals": self.window_intervals,
            "abortMinRequests": self.min_requests,
            "abortConfidence": self.confidence,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> JudgeSettings:
        """From a run's `collector` settings; defaults for what is missing or odd."""
        data = doc or {}
        default = cls()
        try:
            return cls(
                window_intervals=int(data.get("abortWindowIntervals") or default.window_intervals),
                min_requests=int(data.get("abortMinRequests", default.min_requests)),
                confidence=data.get("abortConfidence", default.confidence),
            )
        except (TypeError, ValueError):
            return default


class ThresholdState(NamedTuple):
    """One threshold as the run goes: `ok`, `breached` or `not judged`, and its value now."""

    expression: str
    state: str
    value: float | None

    def text(self) -> str:
        """`p95<500ms ok (412ms)`, `error_rate<1% BREACHED (9.80%)`, `rps>=100 not judged`."""
        try:
            threshold = parse_threshold(self.expression)
        except ValueError:
            return f"{self.expression} {self.state}"
        shown = "" if self.value is None else f" ({threshold_value(threshold, self.value)})"
        label = "BREACHED" if self.state == BREACHED else self.state
        return f"{self.expression} {label}{shown}"


# -- one interval, digested once -----------------------------------------------------------


def _int(value: Any) -> int:
    number = finite_number(value)
    return max(0, int(number)) if number is not None else 0


@dataclass(frozen=True)
class _Sample:
    """One interval's numbers for the whole run or for one request."""

    requests: int = 0
    failures: int = 0
    seconds: float | None = None
    rps: float | None = None
    hist: dict[int, int] | None = None
    values: dict[str, float | None] = field(default_factory=dict)  # p50, avg, max…


def _sample(
    doc: Mapping[str, Any], keys: Mapping[str, str], *, total: bool, seconds: Any
) -> _Sample:
    return _Sample(
        requests=_int(doc.get("intervalRequests")),
        failures=_int(doc.get("intervalFailures")),
        seconds=finite_number(seconds),
        rps=finite_number(doc.get(_RPS.interval_total_key if total else _RPS.request_key)),
        hist=parse_hist(doc.get("hist")),
        values={metric: finite_number(doc.get(key)) for metric, key in keys.items()},
    )


def _weighted(samples: list[_Sample], metric: str) -> tuple[float | None, int]:
    """The requests-weighted mean of the intervals' values, and the requests behind it."""
    weight = 0
    total = 0.0
    for sample in samples:
        value = sample.values.get(metric)
        if value is not None and sample.requests > 0:
            total += value * sample.requests
            weight += sample.requests
    return (total / weight if weight else None), weight


def _violates(threshold: Threshold, value: float) -> bool:
    return not threshold.passes(value)


# -- the judge -----------------------------------------------------------------------------


@dataclass
class _Judgment:
    state: str
    value: float | None
    intervals: int | None = None
    requests: int | None = None


class AbortJudge:
    """Judges a run's thresholds on its intervals as they come (see the module's doc).

    ```
    judge = AbortJudge.from_settings(run.thresholds, JudgeSettings.from_document(run.collector))
    for each interval document stored:
        if Locust's state is "running": judge.spawn_complete = True
        breach = judge.observe(interval)                 # a Breach, or None
        observer.thresholds(judge.states())
        if breach and abort_on_fail: stop the swarm; stop_reason threshold;
            decide_verdict(..., abort_breach=breach)
    ```
    """

    def __init__(
        self,
        thresholds: list[str],
        *,
        window_intervals: int = JudgeSettings.window_intervals,
        min_requests: int = JudgeSettings.min_requests,
        confidence: float | None = JudgeSettings.confidence,
        spawn_complete: bool = False,
    ) -> None:
        self.settings = JudgeSettings(window_intervals, min_requests, confidence)
        self.thresholds = [parse_threshold(expression) for expression in thresholds]
        self._z = 0.0 if confidence is None else NormalDist().inv_cdf(confidence)
        scopes = {t.scope for t in self.thresholds}
        self._recent: dict[str | None, deque[_Sample]] = {
            scope: deque(maxlen=window_intervals) for scope in scopes
        }
        self._after_spawn: dict[str | None, deque[_Sample]] = {
            scope: deque(maxlen=window_intervals) for scope in scopes
        }
        # Whole-run extremes for max< and min>: they never recover once broken.
        self._max: dict[str | None, float | None] = dict.fromkeys(scopes)
        self._min: dict[str | None, float | None] = dict.fromkeys(scopes)
        # Complete from the start (a take-over of a running run): every interval counts.
        self._spawn_complete = spawn_complete
        self._skip_next_for_rps = False
        self._verdicts: list[_Judgment] = [_Judgment(NOT_JUDGED, None) for _ in self.thresholds]

    @classmethod
    def from_settings(
        cls, thresholds: list[str], settings: JudgeSettings, *, spawn_complete: bool = False
    ) -> AbortJudge:
        return cls(
            thresholds,
            window_intervals=settings.window_intervals,
            min_requests=settings.min_requests,
            confidence=settings.confidence,
            spawn_complete=spawn_complete,
        )

    @property
    def spawn_complete(self) -> bool:
        """Whether every user has been started; rps is judged only after that."""
        return self._spawn_complete

    @spawn_complete.setter
    def spawn_complete(self, value: bool) -> None:
        if value and not self._spawn_complete:
            # The next interval observed may still hold the end of the ramp-up (when the
            # flag is set before observing the interval that saw spawning end): left out.
            self._skip_next_for_rps = True
        self._spawn_complete = value

    def observe(self, interval: Mapping[str, Any]) -> Breach | None:
        """Take one stored interval document; the first threshold broken now, if any."""
        seconds = interval.get("intervalSec")
        for scope in self._recent:
            if scope is None:
                sample = _sample(interval, _TOTAL_KEYS, total=True, seconds=seconds)
            else:
                item = find_request(interval, scope)
                sample = (
                    _Sample(seconds=finite_number(seconds), rps=0.0, hist={})
                    if item is None
                    else _sample(item, _REQUEST_KEYS, total=False, seconds=seconds)
                )
            self._recent[scope].append(sample)
            if self._spawn_complete and not self._skip_next_for_rps:
                self._after_spawn[scope].append(sample)
            self._extremes(scope, sample)
        self._skip_next_for_rps = False
        breach: Breach | None = None
        for index, threshold in enumerate(self.thresholds):
            verdict = self._judge(threshold)
            self._verdicts[index] = verdict
            if breach is None and verdict.state == BREACHED:
                breach = Breach.of(
                    threshold,
                    verdict.value,
                    windowIntervals=verdict.intervals,
                    windowRequests=verdict.requests,
                )
        return breach

    def states(self) -> list[ThresholdState]:
        """Each threshold's state after the last interval observed, in the given order."""
        return [
            ThresholdState(threshold.expression, verdict.state, verdict.value)
            for threshold, verdict in zip(self.thresholds, self._verdicts, strict=True)
        ]

    # -- per kind ------------------------------------------------------------------------

    def _extremes(self, scope: str | None, sample: _Sample) -> None:
        highs = [v for v in (sample.values.get(name) for name in _HIGHS) if v is not None]
        lows = [v for v in (sample.values.get(name) for name in _LOWS) if v is not None]
        if sample.hist:
            counted = [value for value, count in sample.hist.items() if count > 0]
            if counted:
                highs.append(max(counted))
                lows.append(min(counted))
        if highs:
            current = self._max[scope]
            self._max[scope] = max(highs) if current is None else max(current, *highs)
        if lows and sample.requests > 0:
            current = self._min[scope]
            self._min[scope] = min(lows) if current is None else min(current, *lows)

    def _judge(self, threshold: Threshold) -> _Judgment:
        judged = metric(threshold.metric)
        if judged.abort in ("max", "min"):
            return self._judge_extreme(threshold, highest=judged.abort == "max")
        if judged.abort == "throughput":
            return self._judge_rps(threshold)
        samples = list(self._recent[threshold.scope])
        if judged.abort == "rate":
            return self._judge_error_rate(threshold, samples)
        if judged.abort == "quantile" and judged.quantile is not None:
            return self._judge_percentile(threshold, samples, judged.quantile)
        if judged.abort == "mean":
            return self._judge_mean(threshold, samples)
        return _Judgment(NOT_JUDGED, None)  # a metric not judged as a run goes on

    def _judged(
        self,
        threshold: Threshold,
        value: float | None,
        broken: bool,
        samples: list[_Sample],
        n: int,
    ) -> _Judgment:
        if value is None or n < self.settings.min_requests:
            return _Judgment(NOT_JUDGED, value, len(samples), n)
        if broken:
            return _Judgment(BREACHED, value, len(samples), n)
        # Over the limit by the numbers, but not significantly: "ok" would read wrong next
        # to the value, "breached" would stop a run on chance. Not judged yet.
        state = NOT_JUDGED if _violates(threshold, value) else OK
        return _Judgment(state, value, len(samples), n)

    def _judge_error_rate(self, threshold: Threshold, samples: list[_Sample]) -> _Judgment:
        n = sum(s.requests for s in samples)
        failures = min(n, sum(s.failures for s in samples))
        if n == 0:
            return _Judgment(NOT_JUDGED, None, len(samples), 0)
        rate = failures / n
        low, high = wilson_bounds(failures, n, self._z)
        # Broken when the rate is wrong even at the favourable end of its interval.
        broken = _violates(threshold, rate) and _violates(
            threshold, low if threshold.op in _UPPER else high
        )
        return self._judged(threshold, rate, broken, samples, n)

    def _judge_percentile(
        self, threshold: Threshold, samples: list[_Sample], q: float
    ) -> _Judgment:
        hists = [s.hist for s in samples]
        if samples and all(h is not None for h in hists):
            merged = merge_hists(h for h in hists if h is not None)
            n = sum(merged.values())
            value = hist_percentile(merged, q)
            if value is None:
                return _Judgment(NOT_JUDGED, None, len(samples), 0)
            limit = threshold.limit
            # Requests on the wrong side of the limit, and the share the percentile allows.
            if threshold.op == "<":
                wrong, allowed = sum(c for v, c in merged.items() if v >= limit), 1 - q
            elif threshold.op == "<=":
                wrong, allowed = sum(c for v, c in merged.items() if v > limit), 1 - q
            elif threshold.op == ">":
                wrong, allowed = sum(c for v, c in merged.items() if v <= limit), q
            else:
                wrong, allowed = sum(c for v, c in merged.items() if v < limit), q
            low, _ = wilson_bounds(wrong, n, self._z)
            broken = _violates(threshold, value) and low > allowed
            return self._judged(threshold, value, broken, samples, n)
        value, n = _weighted(samples, threshold.metric)
        return self._judged(
            threshold, value, value is not None and _violates(threshold, value), samples, n
        )

    def _judge_mean(self, threshold: Threshold, samples: list[_Sample]) -> _Judgment:
        value, n = _weighted(samples, threshold.metric)
        if value is None and samples and all(s.hist for s in samples):
            merged = merge_hists(s.hist for s in samples if s.hist)
            n = sum(merged.values())
            value = sum(v * c for v, c in merged.items()) / n if n else None
        return self._judged(
            threshold, value, value is not None and _violates(threshold, value), samples, n
        )

    def _judge_extreme(self, threshold: Threshold, *, highest: bool) -> _Judgment:
        seen = self._max[threshold.scope] if highest else self._min[threshold.scope]
        if seen is None:
            return _Judgment(NOT_JUDGED, None)
        # Only a max below a limit (a min above one) can break for good.
        for_good = highest == (threshold.op in _UPPER)
        if _violates(threshold, seen):
            return _Judgment(BREACHED if for_good else NOT_JUDGED, seen)
        return _Judgment(OK, seen)

    def _judge_rps(self, threshold: Threshold) -> _Judgment:
        samples = list(self._after_spawn[threshold.scope])
        if not self._spawn_complete or len(samples) < self.settings.window_intervals:
            current = self._rps(list(self._recent[threshold.scope]))
            return _Judgment(NOT_JUDGED, current, len(samples))
        value = self._rps(samples)
        if value is None:
            return _Judgment(NOT_JUDGED, None, len(samples))
        requests = sum(s.requests for s in samples)
        state = BREACHED if _violates(threshold, value) else OK
        return _Judgment(state, value, len(samples), requests)

    @staticmethod
    def _rps(samples: list[_Sample]) -> float | None:
        if not samples:
            return None
        seconds = [s.seconds for s in samples]
        if all(s is not None and s > 0 for s in seconds):
            return sum(s.requests for s in samples) / sum(s for s in seconds if s is not None)
        reported = [s.rps for s in samples if s.rps is not None]
        return sum(reported) / len(reported) if reported else None
