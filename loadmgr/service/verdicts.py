"""Thresholds evaluated on a run's final stats, and the verdict they give."""

from __future__ import annotations

from typing import Any

from loadmgr.locust.stats import metric_value
from loadmgr.models import Threshold, ThresholdResult, Verdict, parse_threshold


def _result(threshold: Threshold, actual: float | None) -> ThresholdResult:
    return ThresholdResult(
        expression=threshold.expression,
        metric=threshold.metric,
        scope=threshold.scope,
        op=threshold.op,
        limit=threshold.limit,
        actual=actual,
        passed=threshold.passes(actual),
    )


def evaluate(expressions: list[str], final: dict[str, Any]) -> list[ThresholdResult]:
    """Each threshold's result on the final stats."""
    results = []
    for expression in expressions:
        threshold = parse_threshold(expression)
        results.append(_result(threshold, metric_value(final, threshold.metric, threshold.scope)))
    return results


def verdict_of(results: list[ThresholdResult]) -> Verdict | None:
    if not results:
        return None
    return Verdict.PASSED if all(r.passed for r in results) else Verdict.FAILED


def doomed(expressions: list[str], snapshot_totals: dict[str, Any]) -> ThresholdResult | None:
    """A threshold already broken for good mid-run (for --abort-on-fail), if any."""
    for expression in expressions:
        threshold = parse_threshold(expression)
        if threshold.scope is not None:
            continue
        actual = metric_value({"totals": snapshot_totals}, threshold.metric)
        if threshold.can_no_longer_pass(actual):
            return _result(threshold, actual)  # passes() is False: that is what doomed means
    return None
