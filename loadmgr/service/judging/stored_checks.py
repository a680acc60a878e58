"""What a stored run recorded of its checks, read back for its verdict to be decided again
(`recompute_verdict`): what is missing or malformed counts as not recorded."""

from __future__ import annotations

from typing import Any

from loadmgr.models import ReasonKind, Regression, ThresholdResult, VerdictReason


def stored_results(items: Any) -> list[ThresholdResult]:
    results = []
    for item in list_of(items):
        try:
            results.append(ThresholdResult.model_validate(item))
        except ValueError:
            continue
    return results


def stored_checks(items: Any, reference: str) -> list[Regression]:
    checks = (Regression.from_document(item, reference) for item in list_of(items))
    return [check for check in checks if check is not None]


def stored_trend_checks(items: Any, earlier: list[VerdictReason]) -> list[Regression]:
    """The stored `trendChecks`; for a run judged before they were stored, its trend
    reasons (the regressed checks only, which is all that decides the verdict)."""
    if isinstance(items, list):
        return stored_checks(items, "its trend")
    return [
        check
        for item in earlier
        if item.kind == ReasonKind.TREND
        and (check := Regression.from_document(item.model_extra, "its trend")) is not None
    ]


def count_of(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
