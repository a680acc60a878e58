"""One way to write a metric's value, for every view: tables, plain lines, HTML, JUnit.

Latencies in milliseconds (`812ms`, with one decimal below 10 ms), rates as percentages
(`29.80%`), throughput per second (`1,234.5/s`), counts with thousands separators.

A threshold's values are written in the unit its expression was written in (`p95<1s` →
`1.24s`, `error_rate<1%` → `29.80%`, `error_rate<0.01` → `0.298`), and with as many
decimals as it takes for a value and its limit never to read the same when they differ
(`500.4ms (limit < 500ms)`, not `500ms (limit < 500ms)` next to FAIL).

Stored numbers stay numbers: only views call these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from loadmgr.models.stats.catalog import unit_of
from loadmgr.models.thresholds import Threshold, parse_threshold

NONE = "-"
# Enough to tell 99.99999999 from 100; the loop stops at the first that differs.
MAX_EXTRA_DECIMALS = 10


def format_timestamp(value: datetime) -> str:
    """ISO-8601 in UTC to the millisecond BSON stores, always the same width, with `Z`.

    `2026-12-02T13:45:01.123Z`, never `…13:45:01Z` for a whole second nor microseconds:
    every date loadmgr prints (JSON, CSV, messages, log lines) is written by this, so they
    compare as strings and read the same everywhere. A naive date is taken as UTC (how
    pymongo returns BSON dates by default).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


class Lines(tuple[str, ...]):
    """A field a key-value view shows one item per line (`schedules show`'s next slots).

    A plain string's newline is data and shown escaped like any control character; the
    line breaks a view means are said by the type, each line still sanitized."""


def span_ends(first: datetime | None, last: datetime | None) -> tuple[str, str]:
    """The labels of an axis over runs from `first` to `last`, ISO-8601 in UTC: their days
    (`2026-11-20`), or their minutes (`2026-12-06T08:12Z`) when both fall on one day, so
    the two ends never read the same for runs of one day."""
    def moment(value: datetime | None, with_time: bool) -> str:
        if value is None:
            return "-"
        utc = value.astimezone(timezone.utc) if value.tzinfo else value
        return utc.strftime("%Y-%m-%dT%H:%MZ" if with_time else "%Y-%m-%d")

    same_day = first is not None and last is not None and moment(first, False) == moment(
        last, False
    )
    return moment(first, same_day), moment(last, same_day)


def runs_count(count: int, what: str = "finished") -> str:
    """`1 finished run`, `3 finished runs`."""
    return f"{count} {what} run{'' if count == 1 else 's'}"


def finite_number(value: Any) -> float | None:
    """`value` as a finite float; None for null, a bool, text or NaN (odd stored data)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _trim(text: str) -> str:
    """`1.20` → `1.2`, `500.0` → `500`: a limit reads as it was written."""
    if "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def _ms_decimals(value: float) -> int:
    # Locust's latencies are whole milliseconds above 10 ms; below, a decimal matters.
    return 1 if abs(value) < 10 and value != int(value) else 0


def format_ms(value: Any, decimals: int | None = None) -> str:
    """`812ms`, `2.5ms`; `-` when unknown."""
    number = finite_number(value)
    if number is None:
        return NONE
    places = _ms_decimals(number) if decimals is None else decimals
    return f"{number:,.{places}f}ms"


def format_percent(value: Any, decimals: int = 2) -> str:
    """A fraction as a percentage: `0.298` → `29.80%`; a tiny non-zero rate never reads 0."""
    number = finite_number(value)
    if number is None:
        return NONE
    text = f"{number * 100:,.{decimals}f}%"
    if number > 0 and float(text[:-1].replace(",", "")) == 0:
        return f"<{10**-decimals:.{decimals}f}%"
    return text


def format_rps(value: Any, decimals: int = 1) -> str:
    """Requests per second: `1,234.5/s`."""
    number = finite_number(value)
    return NONE if number is None else f"{number:,.{decimals}f}/s"


def format_count(value: Any) -> str:
    """`12,345`."""
    number = finite_number(value)
    return NONE if number is None else f"{int(number):,}"


def format_metric(metric: str, value: Any) -> str:
    """A metric in its catalog unit; `metric` as thresholds and comparisons name it."""
    unit = unit_of(metric)
    if unit == "count":
        return format_count(value)
    if unit == "fraction":
        return format_percent(value)
    if unit == "/s":
        return format_rps(value)
    if unit == "ms":
        return format_ms(value)
    return format_number(value)


def format_number(value: Any) -> str:
    """A number of no known unit: `12.345`, `1,200`."""
    number = finite_number(value)
    return NONE if number is None else _trim(f"{number:,.3f}")



# -- side by side --------------------------------------------------------------------------

# How many decimals may be added to make numbers side by side add up (then they do, or the
# difference is below a thousandth of the unit).
MAX_SIDE_BY_SIDE_EXTRA = 3


def _metric_scale(metric: str) -> tuple[float, int] | None:
    """(factor to the shown unit, usual decimals) of a metric; None for whole counts."""
    unit = unit_of(metric)
    if unit == "count":
        return None
    if unit == "fraction":
        return 100.0, 2
    if unit == "/s":
        return 1.0, 1
    if unit == "ms":
        return 1.0, 0
    return 1.0, 3


def _metric_text(metric: str, number: float, places: int) -> str:
    unit = unit_of(metric)
    if unit == "fraction":
        return f"{number * 100:,.{places}f}%"
    if unit == "/s":
        return f"{number:,.{places}f}/s"
    if unit == "ms":
        return f"{number:,.{places}f}ms"
    return f"{number:,.{places}f}"


def side_by_side(metric: str, values: Sequence[Any]) -> tuple[list[str], list[str | None]]:
    """Values of one metric next to each other, and each later one's change from the first.

    All are written with one number of decimals: the metric's usual (one below 10 ms),
    more where it takes for the numbers shown to add up, so a change never reads
    `2ms → 1ms (-0ms)`: it reads `1.53ms → 1.17ms (-0.36ms)`. Changes are computed on the
    stored, unrounded values; None where a value is unknown or unchanged.
    """
    numbers = [finite_number(v) for v in values]
    base = numbers[0] if numbers else None
    changes = [
        None if base is None or n is None or n == base else n - base for n in numbers[1:]
    ]
    scale = _metric_scale(metric)
    if scale is None:
        texts = [format_count(n) for n in numbers]
        return texts, [None if c is None else f"{c:+,.0f}" for c in changes]
    factor, places = scale
    known = [n for n in numbers if n is not None]
    if unit_of(metric) == "ms":
        places = max((_ms_decimals(n) for n in known), default=0)

    def adds_up(places: int) -> bool:
        for value, change in zip(numbers[1:], changes, strict=True):
            if base is None or value is None or change is None:
                continue
            shown = round(value * factor, places) - round(base * factor, places)
            if round(change * factor, places) == 0 or not math.isclose(
                shown, round(change * factor, places), abs_tol=10**-places / 2
            ):
                return False
        return True

    for _ in range(MAX_SIDE_BY_SIDE_EXTRA):
        if adds_up(places):
            break
        places += 1
    texts = [NONE if n is None else _metric_text(metric, n, places) for n in numbers]
    change_texts = [
        None if c is None else ("+" if c > 0 else "-") + _metric_text(metric, abs(c), places)
        for c in changes
    ]
    return texts, change_texts

# -- thresholds ----------------------------------------------------------------------------


def _unit(threshold: Threshold) -> str:
    """What a threshold's values are written in: `ms`, `s`, `%`, `fraction`, `/s`, `number`."""
    unit = unit_of(threshold.metric)
    if unit == "ms":
        return "s" if threshold.unit == "s" else "ms"
    if unit == "fraction":
        return "%" if threshold.unit == "%" else "fraction"
    # A metric we do not know (a document written by something else): a bare number.
    return "/s" if unit == "/s" else "number"


def _shown(unit: str, value: float) -> float:
    """The number a stored value (ms, fraction, per second) is written as in `unit`."""
    if unit == "s":
        return value / 1000
    if unit == "%":
        return value * 100
    return value


def _write(unit: str, shown: float, places: int, *, trim: bool) -> str:
    text = f"{shown:,.{places}f}"
    if trim:
        text = _trim(text)
    return text + ("" if unit in ("fraction", "number") else unit)


# The most decimals a small actual is given to keep its two significant digits.
MAX_SMALL_DECIMALS = 10


def _usual_places(unit: str, shown: float) -> int:
    """The precision every view uses for this unit (the canonical ones match format_*),
    more for a small value: two significant digits whatever the unit, so `p95<1s` with
    2 ms reads `0.002s`, never `0s`, and a rate of 0.00049 never `0.000`."""
    if unit == "ms":
        places = _ms_decimals(shown)
    elif unit in ("fraction", "number"):
        places = 3
    else:
        places = 1 if unit == "/s" else 2
    while (
        places < MAX_SMALL_DECIMALS
        and 0 < abs(shown) < 10 ** -(places - 1)
        and round(shown, places) != shown
    ):
        places += 1
    return places


def _exact_places(shown: float) -> int:
    """The fewest decimals that write `shown` exactly (a limit reads as it was written)."""
    for places in range(7):
        if math.isclose(round(shown, places), shown, rel_tol=0, abs_tol=1e-9):
            return places
    return 6


def _limit_text(threshold: Threshold) -> str:
    unit = _unit(threshold)
    shown = _shown(unit, threshold.limit)
    return _write(unit, shown, _exact_places(shown), trim=False)


def threshold_limit(threshold: Threshold) -> str:
    """`< 500ms`, `<= 1.5s`, `< 1%`, `< 0.01`, `>= 100/s`."""
    return f"{threshold.op} {_limit_text(threshold)}"


def threshold_value(threshold: Threshold, value: Any) -> str:
    """A value of the threshold's metric in its unit; never reads like the limit unless equal."""
    number = finite_number(value)
    if number is None:
        return "no value"
    unit = _unit(threshold)
    shown = _shown(unit, number)
    trim = unit in ("s", "fraction", "number")
    places = _usual_places(unit, shown)
    limit = _shown(unit, threshold.limit)
    for extra in range(MAX_EXTRA_DECIMALS + 1):
        if number == threshold.limit or round(shown, places + extra) != round(
            limit, places + extra
        ):
            break
    else:
        extra = MAX_EXTRA_DECIMALS
    return _write(unit, shown, places + extra, trim=trim)


def threshold_of(
    expression: str, metric: str, op: str, limit: float, scope: str | None
) -> Threshold:
    """The threshold a stored result was judged on; its unit from the expression if it parses."""
    try:
        return parse_threshold(expression)
    except ValueError:  # a document written by something else: canonical units
        return Threshold(expression, metric, op, limit, scope)


def threshold_line(
    expression: str,
    metric: str,
    op: str,
    limit: float,
    scope: str | None,
    actual: Any,
) -> str:
    """`p95<500ms: 812ms (limit < 500ms)`: one threshold's outcome in one line."""
    threshold = threshold_of(expression, metric, op, limit, scope)
    # The expression names the request when scoped: no need to say it twice.
    return (
        f"{expression}: {threshold_value(threshold, actual)} (limit {threshold_limit(threshold)})"
    )


def _stored_threshold(result: Mapping[str, Any]) -> Threshold | None:
    """The threshold of a stored result (a `thresholdResults[]` item as read); None
    without a usable limit."""
    limit = finite_number(result.get("limit"))
    if limit is None:
        return None
    return threshold_of(
        str(result.get("expression", "")),
        str(result.get("metric", "")),
        str(result.get("op", "<")),
        limit,
        result.get("scope") if isinstance(result.get("scope"), str) else None,
    )


def stored_threshold_limit(result: Mapping[str, Any]) -> str:
    """A stored threshold result's limit with its unit: `< 500ms`, `>= 100/s`."""
    threshold = _stored_threshold(result)
    return NONE if threshold is None else threshold_limit(threshold)


def stored_threshold_value(result: Mapping[str, Any]) -> str:
    """A stored threshold result's actual value, in the unit of its limit."""
    threshold = _stored_threshold(result)
    if threshold is None:
        return format_number(result.get("actual"))
    return threshold_value(threshold, result.get("actual"))


def describe_exception(item: dict[str, Any]) -> str:
    """`ValueError at locustfile.py:12 in on_start: boom (×38)` for people."""
    what = item.get("type") or "exception"
    where = f" at {item['where']}" if item.get("where") else ""
    message = str(item.get("message") or "").splitlines()
    text = f": {message[0]}" if message and message[0] else ""
    return f"{what}{where}{text} (×{format_count(item.get('count'))})"


def ci_parts(ci: Any, shown: Callable[[str], str] = str) -> list[str]:
    """A run's CI context in words: `commit 1a2b3c4d5e6f`, `branch main`, `pull request
    42`, each when known; `shown` makes a value safe where it is written (Markdown)."""
    if not isinstance(ci, dict):
        return []
    parts = []
    for key, label, length in (
        ("commit", "commit", 12),
        ("branch", "branch", None),
        ("pullRequest", "pull request", None),
    ):
        value = ci.get(key)
        if isinstance(value, str) and value:
            parts.append(f"{label} {shown(value[:length])}")
    return parts


def ci_words(ci: Any) -> str | None:
    """`commit 1a2b3c4d5e6f, branch main, pull request 42 (github, build URL)` for a run's
    views; None when the run knows no commit or branch."""
    parts = ci_parts(ci)
    if not parts:
        return None
    extra = [ci[key] for key in ("provider", "job", "buildUrl") if isinstance(ci.get(key), str)]
    return ", ".join(parts) + (f" ({', '.join(extra)})" if extra else "")
