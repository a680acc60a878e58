"""The metric catalog: every number loadmgr judges, compares, trends or shows by name.

One entry per metric says where it is stored, which way is better, its unit, its title,
its quantile, and what may use it; thresholds, the abort judge, `metrics compare`,
baseline checks, trends, the terminal views and the HTML reports read it from here, as
Locust's own `stats.py` keeps `PERCENTILES_TO_REPORT` in one place for every report.
Adding a metric is one entry below plus its tests (docs/metrics.md, "Adding a metric").

The order of `METRICS` is the order a run's numbers are shown in (`metrics compare` rows,
a summary's latencies, export columns): counts, rates, then latencies. Where metrics are
*named* in a list (an error message, `--help`), `named` puts the percentiles first.
Imports nothing: the CLI reads it to build `--help`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# How a value is written (models/formatting.py): `ms` as `812ms` (thresholds also take
# `s`), `fraction` as a percentage (`29.80%`; thresholds take `%` or a fraction), `/s` as
# `1,234.5/s`, `count` as `12,345`, `number` (a server-side metric's, in its own unit) as
# `12.345`.
Unit = Literal["ms", "fraction", "/s", "count", "number"]
# How the abort judge reads a metric over the intervals of a running run
# (service/judging/abort_judge.py): `quantile` from the window's merged histograms,
# `mean` weighted by requests over the window, `max`/`min` the run's extreme so far (it
# never recovers), `rate` failures over requests in the window, `throughput` requests
# over seconds once spawning is done.
AbortKind = Literal["quantile", "mean", "max", "min", "rate", "throughput"]


@dataclass(frozen=True)
class Metric:
    """One metric, as everything that names it reads it."""

    name: str  # as thresholds, `--max-regression`, `--metric` and stored results name it
    title: str  # a chart's title on a terminal: `p95 latency`, `requests per second`
    unit: Unit
    # "lower" (latency, errors) or "higher" (throughput) is better; None: neither (a count
    # that depends on the run's length, never judged as better or worse).
    better: Literal["lower", "higher"] | None
    total_key: str  # in stored totals (`finalStats.totals`, `judgedStats.totals`)
    request_key: str  # in a `requestStats[]` item, of final stats and of intervals alike
    # In an interval document (`metrics_timeseries`) when not `total_key`.
    interval_key: str | None = None
    quantile: float | None = None  # 0.95 for p95
    judged: bool = False  # a threshold may name it (`p95<500ms`)
    abort: AbortKind | None = None  # judged as a run goes on (`--abort-on-fail`), and how
    compared: bool = False  # a row of `metrics compare` (a regression when it has `better`)
    outlier: bool = False  # compared, but a regression only when asked (`--include-max`)
    trended: bool = False  # a series of `tests trend` (`--metric`)
    summary: bool = False  # among a run's latencies in `metrics show` and the HTML report
    # A threshold may bound it on the side that is not better, too: `min>1ms` (an answer
    # faster than the target can give is a cache or an error page), judged at once.
    both_bounds: bool = False
    # The smallest change a comparison counts as a regression, whatever its percentage
    # (docs/trends.md, "Significance of a comparison"): `floor` in its unit, or
    # `floor_of_base` of the reference's value; the larger. 4ms → 6ms is +50 %, and noise.
    floor: float = 0.0
    floor_of_base: float = 0.0

    def floor_for(self, base: float | None) -> float:
        """Its floor against a reference value `base` (the absolute part when unknown)."""
        return max(self.floor, self.floor_of_base * abs(base or 0.0))

    @property
    def threshold_ops(self) -> tuple[str, ...]:
        """The operators a threshold on it may take: an upper bound (`<`, `<=`) when lower
        is better, a lower bound when higher is; both when `both_bounds` or neither is."""
        upper, lower = ("<", "<="), (">", ">=")
        if self.both_bounds or self.better is None:
            return upper + lower
        return upper if self.better == "lower" else lower

    @property
    def interval_total_key(self) -> str:
        """Its key in an interval document's own (whole-run) fields."""
        return self.interval_key or self.total_key

    @property
    def direction(self) -> int:
        """+1 when higher is worse, -1 when lower is worse, 0 when it is not judged."""
        return {"lower": 1, "higher": -1, None: 0}[self.better]

    @property
    def heading(self) -> str:
        """Its title as an HTML heading: capitalised, but for a percentile (`p95 latency`)."""
        if self.quantile is not None:
            return self.title
        return self.title[:1].upper() + self.title[1:]


def _percentile(quantile: float) -> Metric:
    """A latency percentile (`p95`), stored as `p95ResponseMs` everywhere: used by all."""
    name = f"p{round(quantile * 100)}"
    key = f"{name}ResponseMs"
    return Metric(
        name,
        f"{name} latency",
        "ms",
        "lower",
        key,
        key,
        quantile=quantile,
        judged=True,
        abort="quantile",
        compared=True,
        trended=True,
        summary=True,
        floor=1.0,
    )


METRICS: tuple[Metric, ...] = (
    Metric("requests", "requests", "count", None, "requests", "numRequests", compared=True),
    Metric("failures", "failures", "count", None, "failures", "numFailures", compared=True),
    Metric(
        "error_rate",
        "error rate",
        "fraction",
        "lower",
        "errorRate",
        "errorRate",
        judged=True,
        abort="rate",
        compared=True,
        trended=True,
        floor=0.001,  # a tenth of a percentage point
    ),
    Metric(
        "rps",
        "requests per second",
        "/s",
        "higher",
        "rps",
        "requestsPerSec",
        interval_key="totalRPS",
        judged=True,
        abort="throughput",
        compared=True,
        trended=True,
        floor_of_base=0.01,
    ),
    Metric(
        "avg",
        "mean latency",
        "ms",
        "lower",
        "avgResponseMs",
        "avgResponseTimeMs",
        judged=True,
        abort="mean",
        compared=True,
        trended=True,
        summary=True,
        floor=1.0,
    ),
    Metric(
        "min",
        "minimum latency",
        "ms",
        "lower",
        "minResponseMs",
        "minResponseTimeMs",
        judged=True,
        abort="min",
        both_bounds=True,
        floor=1.0,
    ),
    _percentile(0.50),
    _percentile(0.90),
    _percentile(0.95),
    _percentile(0.99),
    Metric(
        "max",
        "maximum latency",
        "ms",
        "lower",
        "maxResponseMs",
        "maxResponseTimeMs",
        judged=True,
        abort="max",
        compared=True,
        outlier=True,
        summary=True,
        floor=1.0,
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


# A server-side metric a run reads from Prometheus (docs/server-metrics.md) is named
# `server.NAME`; its entry is made from its name, so every use of the catalog takes it.
SERVER_PREFIX = "server."
_SERVER_NAME = re.compile(r"server\.[a-z][a-z0-9_]{0,39}")


def is_server_metric(name: str) -> bool:
    return bool(_SERVER_NAME.fullmatch(name))


def named_or_server(name: str, allowed: Iterable[str]) -> bool:
    """`name` is one of `allowed`, or a server metric (which every use may name)."""
    return name in allowed or is_server_metric(name)


def server_metric(name: str) -> Metric:
    """The entry of server metric `server.NAME`: stored under its own name in a run's
    `serverStats` summary (the mean of its intervals is what a threshold, a comparison and
    a trend read), in each interval's `server`. Lower is better (CPU, saturation, errors);
    a threshold may bound it on either side."""
    short = name.removeprefix(SERVER_PREFIX)
    key = SERVER_PREFIX + short
    return Metric(
        key,
        f"server {short}",
        "number",
        "lower",
        key,
        key,
        judged=True,
        compared=True,
        trended=True,
        both_bounds=True,
        floor_of_base=0.01,
    )


def metric(name: str) -> Metric:
    """The catalog's entry for `name` (a server metric's made from it); KeyError for a
    metric it does not have."""
    found = BY_NAME.get(name)
    if found is not None:
        return found
    if is_server_metric(name):
        return server_metric(name)
    raise KeyError(name)


def named(metrics: Iterable[Metric]) -> tuple[str, ...]:
    """The names of `metrics` as a list names them: percentiles first (ascending), then
    the other latencies, then the rest, each in catalog order."""

    def rank(m: Metric) -> int:
        return 0 if m.quantile is not None else 1 if m.unit == "ms" else 2

    return tuple(m.name for m in sorted(metrics, key=rank))


def unit_of(name: str) -> Unit | None:
    """A metric's unit; None for a name the catalog does not have."""
    found = BY_NAME.get(name)
    return found.unit if found else None


# What each use may name, as it names them in messages and `--help`.
JUDGED = named(m for m in METRICS if m.judged)  # thresholds
ABORTED = named(m for m in METRICS if m.abort)  # judged while running
REGRESSION = named(m for m in METRICS if m.compared and m.better)  # `--max-regression`
# `tests trend --metric`; its --help and messages have always named error_rate last.
TRENDED = tuple(
    sorted(named(m for m in METRICS if m.trended), key=lambda name: name == "error_rate")
)
LATENCIES = named(m for m in METRICS if m.unit == "ms")
# In catalog order: the rows of `metrics compare`, a summary's latencies.
COMPARED = tuple(m for m in METRICS if m.compared)
SUMMARY_LATENCIES = tuple(m for m in METRICS if m.summary)
QUANTILES = tuple(m for m in METRICS if m.quantile is not None)


def check_metric(text: str, allowed: tuple[str, ...], invalid: str, *, server: bool = False) -> str:
    """`text` lowercased when it names one of `allowed` (or, with `server`, a server
    metric `server.NAME`); else ValueError
    `{invalid}: unknown metric 'p42' (one of p50, p90, …)`."""
    name = text.lower()
    if not (named_or_server(name, allowed) if server else name in allowed):
        more = ", server.NAME" if server else ""
        raise ValueError(f"{invalid}: unknown metric {text!r} (one of {', '.join(allowed)}{more})")
    return name
