"""One formatting of values: the same number reads the same in every view."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmgr.models import parse_threshold
from loadmgr.models.formatting import (
    format_count,
    format_metric,
    format_ms,
    format_percent,
    format_rps,
    stored_threshold_value,
    threshold_limit,
    threshold_line,
    threshold_value,
)


def test_canonical_units() -> None:
    assert format_ms(51.6) == "52ms"
    assert format_ms(2.5) == "2.5ms"
    assert format_ms(2.0) == "2ms"
    assert format_ms(12_345.0) == "12,345ms"
    assert format_percent(0.298) == "29.80%"
    assert format_percent(0.0) == "0.00%"
    assert format_percent(0.000001) == "<0.01%"  # a rate that is not 0 never reads 0
    assert format_rps(1234.56) == "1,234.6/s"
    assert format_count(12345.0) == "12,345"
    for formatter in (format_ms, format_percent, format_rps, format_count):
        assert formatter(None) == "-"
        assert formatter("odd") == "-"
        assert formatter(float("nan")) == "-"


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [
        ("p95", 120.0, "120ms"),
        ("avg", 3.25, "3.2ms"),
        ("error_rate", 0.0125, "1.25%"),
        ("rps", 99.94, "99.9/s"),
        ("requests", 10_000, "10,000"),
        ("failures", 3, "3"),
        ("something", 1.5, "1.5"),
    ],
)
def test_metric_in_its_unit(metric: str, value: float, text: str) -> None:
    assert format_metric(metric, value) == text


@pytest.mark.parametrize(
    ("expression", "actual", "value", "limit"),
    [
        ("p95<500ms", 812.0, "812ms", "< 500ms"),
        ("p95<500", 812.0, "812ms", "< 500ms"),
        ("p95<1s", 1240.0, "1.24s", "< 1s"),
        ("p99<=1.5s", 900.0, "0.9s", "<= 1.5s"),
        ("error_rate<1%", 0.298, "29.80%", "< 1%"),
        ("error_rate<0.5%", 0.0, "0.00%", "< 0.5%"),
        ("error_rate<0.01", 0.298, "0.298", "< 0.01"),
        ("error_rate<0.01", 0.00049, "0.00049", "< 0.01"),
        ("rps>=100", 87.25, "87.2/s", ">= 100/s"),
        ("max<0.001ms", 3.2, "3.2ms", "< 0.001ms"),
        ("GET /x:p95<300ms", None, "no value", "< 300ms"),
    ],
)
def test_threshold_values_in_the_unit_written(
    expression: str, actual: float | None, value: str, limit: str
) -> None:
    threshold = parse_threshold(expression)
    assert threshold_value(threshold, actual) == value
    assert threshold_limit(threshold) == limit


@pytest.mark.parametrize(
    ("expression", "actual", "value"),
    [
        ("p95<500ms", 500.4, "500.4ms"),  # not `500ms` next to FAIL
        ("p95<500ms", 500.0, "500ms"),  # equal: nothing to tell apart
        ("error_rate<1%", 0.01001, "1.001%"),
        ("rps>=100", 99.97, "99.97/s"),
        ("p95<1s", 1000.4, "1.0004s"),
        ("rps>=100", 99.99999999, "99.99999999/s"),
    ],
)
def test_a_value_never_reads_like_its_limit_unless_equal(
    expression: str, actual: float, value: str
) -> None:
    assert threshold_value(parse_threshold(expression), actual) == value


def _number(text: str) -> float:
    return float(text.replace(",", "").rstrip("ms/%"))


@given(
    expression=st.sampled_from(
        ["p95<500ms", "p50<=1s", "avg<20", "error_rate<1%", "error_rate<0.05", "rps>=100"]
    ),
    actual=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_value_and_limit_differ_when_the_outcome_does(expression: str, actual: float) -> None:
    """Whatever the value, one that differs from the limit is never written as the limit."""
    threshold = parse_threshold(expression)
    shown = _number(threshold_value(threshold, actual))
    limit = _number(threshold_limit(threshold).split(" ", 1)[1])
    if not math.isclose(actual, threshold.limit, rel_tol=1e-9, abs_tol=1e-12):
        assert shown != limit
    assert threshold.passes(actual) or shown != limit or actual == threshold.limit


def test_threshold_line_and_stored_results() -> None:
    assert threshold_line("p95<500ms", "p95", "<", 500.0, None, 812.0) == (
        "p95<500ms: 812ms (limit < 500ms)"
    )
    stored = {"expression": "error_rate<1%", "metric": "error_rate", "op": "<", "limit": 0.01}
    assert stored_threshold_value({**stored, "actual": 0.298}) == "29.80%"
    # Written by something else: an expression we cannot parse reads in canonical units.
    odd = {"expression": "?!", "metric": "p95", "op": "<", "limit": 5.0, "actual": 7.0}
    assert stored_threshold_value(odd) == "7ms"
    assert stored_threshold_value({"actual": 3}) == "3"


@pytest.mark.parametrize(
    ("expression", "actual", "value"),
    [
        ("p95<1s", 2.0, "0.002s"),  # was `0s` (issue 20, item 11)
        ("p95<1s", 2.345, "0.0023s"),
        ("error_rate<1%", 0.00001, "0.001%"),
        ("error_rate<1%", 0.0000123, "0.0012%"),
        ("rps>=100", 0.04, "0.04/s"),
        ("avg<500ms", 0.00437, "0.0044ms"),
    ],
)
def test_a_small_actual_keeps_its_digits(expression: str, actual: float, value: str) -> None:
    assert threshold_value(parse_threshold(expression), actual) == value


_SCALE = {"ms": 1.0, "s": 1000.0, "%": 0.01, "/s": 1.0, "": 1.0}


@given(
    expression=st.sampled_from(
        ["p95<500ms", "p50<=1s", "avg<20", "error_rate<1%", "error_rate<0.05", "rps>=100"]
    ),
    actual=st.floats(min_value=1e-4, max_value=1e6, allow_nan=False),
)
def test_a_non_zero_actual_reads_within_a_tenth_of_itself(expression: str, actual: float) -> None:
    """Issue 20, item 11: whatever the unit of the limit, an actual keeps at least two
    significant digits; it never reads as 0."""
    threshold = parse_threshold(expression)
    if threshold.metric == "error_rate":
        actual = min(actual, 1.0) / 1000  # a fraction, down to 1e-7
    text = threshold_value(threshold, actual)
    unit = next(u for u in ("ms", "/s", "s", "%", "") if text.endswith(u))
    shown = _number(text) * _SCALE[unit]
    assert shown != 0 and math.isclose(shown, actual, rel_tol=0.1), text
