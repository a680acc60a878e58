"""Every document loadmgr writes about a run fits MongoDB's 16 MiB at loadmgr's own limits
(issue 21, item 3): the worst case, BSON-encoded.

Locust's answers at the limits: as many entries and errors as `check_stats` lets through,
each name and method as long as allowed and made of 4-byte UTF-8 characters, error texts
of 100,000 characters; the run carries a 1 MB locustfile and THRESHOLDS_MAX thresholds of
THRESHOLD_MAX_CHARS characters, each failed (a result and a verdict reason for each),
MAX_EVENTS events of MAX_DETAIL characters, and the outcomes of MAX_TOLD notifications.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import bson

from loadmgr.locust.stats import final_stats
from loadmgr.locust.validation import MAX_ENTRIES, check_stats
from loadmgr.models import LoadTestRun, MetricSnapshot, RequestStats, RunStatus
from loadmgr.models.documents.base import LOCUSTFILE_MAX_BYTES
from loadmgr.models.thresholds import THRESHOLD_MAX_CHARS, THRESHOLDS_MAX, accept_threshold
from loadmgr.service.collection.ending import ended_last_metrics, metrics_with_peaks
from loadmgr.service.collection.events import MAX_DETAIL, MAX_EVENTS, RunEvents
from loadmgr.service.collection.fitting import (
    MAX_LIVE_REQUESTS,
    MAX_METHOD,
    MAX_NAME,
    MAX_STORED_ERRORS,
    MAX_STORED_REQUESTS,
    bounded_stats,
    without_per_request,
)
from loadmgr.service.judging.verdicts import decide_verdict, evaluate

MONGODB_MAX = 16 * 1024 * 1024
MARGIN = 2 * 1024 * 1024  # room for what a later field adds, and the update's envelope
WIDE = "\U0001f600"  # 4 bytes in UTF-8: the most a character can cost


def _text(length: int, tag: int) -> str:
    prefix = f"{tag}:"
    return prefix + WIDE * (length - len(prefix))


def _entry(i: int) -> dict[str, Any]:
    return {
        "name": _text(MAX_NAME, i),
        "method": _text(MAX_METHOD, i),
        "num_requests": 2**53 - i,
        "num_failures": 2**40,
        "avg_response_time": 10**9 - 0.5,
        "min_response_time": 10**9 - 0.25,
        "max_response_time": 10**9 - 0.125,
        "median_response_time": 10**9,
        "response_time_percentile_0.95": 10**9,
        "response_time_percentile_0.99": 10**9,
        "avg_content_length": 10**9 - 0.5,
        "current_rps": 10**9 - 0.5,
        "current_fail_per_sec": 10**9 - 0.5,
        "total_rps": 10**9 - 0.5,
        "total_fail_per_sec": 10**9 - 0.5,
    }


def _worst_payload() -> dict[str, Any]:
    entries = [_entry(i) for i in range(MAX_ENTRIES - 1)]
    aggregated = {**_entry(0), "name": "Aggregated", "method": None}
    errors = [
        {
            "name": _text(MAX_NAME, i),
            "method": _text(MAX_METHOD, i),
            "error": _text(100_000, i),
            "occurrences": 2**53 - i,
        }
        for i in range(MAX_ENTRIES)
    ]
    payload = {
        "state": "stopped",
        "stats": [*entries, aggregated],
        "errors": errors,
        "user_count": 2**53,
        "current_response_time_percentiles": {},
    }
    return check_stats(payload)  # loadmgr takes it: it is at, not past, the limits


def _worst_interval(run_id: str) -> MetricSnapshot:
    items = [
        RequestStats.model_validate(
            {
                "method": _text(MAX_METHOD, i),
                "name": _text(MAX_NAME, i),
                "numRequests": 2**53 - i,
                "hist": "1:1",  # left out of lastMetrics whatever its size
            }
        )
        for i in range(MAX_ENTRIES)
    ]
    return MetricSnapshot(
        loadTestRunId=run_id, timestamp=datetime.now(timezone.utc), seq=1, requestStats=items
    )


def _worst_thresholds() -> list[str]:
    """THRESHOLDS_MAX distinct thresholds as long as accepted, their scopes of 4-byte
    characters (a request's name)."""
    expressions = []
    for i in range(THRESHOLDS_MAX):
        body = f"p95<{10**9 - i}ms"
        scope = _text(THRESHOLD_MAX_CHARS - len(body) - 1, i)
        expressions.append(accept_threshold(f"{scope}:{body}").expression)
    assert all(len(e) == THRESHOLD_MAX_CHARS for e in expressions)
    return expressions


def _worst_events() -> dict[str, Any]:
    """The most events a writer stores, each detail as long as kept (a flapping cluster)."""
    events = RunEvents()
    for i in range(MAX_EVENTS * 10):
        events.add("worker-lost", _text(MAX_DETAIL * 2, i))
    assert len(events.items) == MAX_EVENTS
    return events.fields()


def _size(document: dict[str, Any]) -> int:
    return len(bson.encode(document))


def _worst_notifications() -> list[dict[str, Any]]:
    """The most outcomes a run end records (MAX_TOLD and the one counting the rest), each
    with the longest name, every event and the longest error."""
    from loadmgr.models.documents.base import NAME_MAX
    from loadmgr.service.notifications.subscriptions import MAX_OUTCOME_ERROR, MAX_TOLD

    outcome = {
        "name": _text(NAME_MAX, 0),
        "notificationId": "0" * 36,
        "events": ["failed", "error", "aborted", "regression", "change"],
        "at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "ok": False,
        "attempts": 3,
        "status": 500,
        "error": _text(MAX_OUTCOME_ERROR, 1),
        "seconds": 10.0,
    }
    return [dict(outcome) for _ in range(MAX_TOLD + 1)]


def test_the_end_of_a_run_fits_mongodb_at_every_limit() -> None:
    run = LoadTestRun(
        loadTestId="t",
        targetUsers=1,
        spawnRate=1,
        durationSeconds=60,
        status=RunStatus.RUNNING,
        locustfileContent="x" * LOCUSTFILE_MAX_BYTES,
        thresholds=_worst_thresholds(),
    )
    final = final_stats(_worst_payload())
    # No request is named as the scopes are: every threshold fails, with a reason each.
    results = evaluate(run.thresholds, final)
    verdict, reasons = decide_verdict(
        status="Finished", stop_reason="duration", threshold_results=results
    )
    assert len(reasons) >= THRESHOLDS_MAX
    assert len(final["requestStats"]) == MAX_ENTRIES - 1  # nothing was lost before storing
    live = metrics_with_peaks({}, _worst_interval(run.id))
    assert len(live["requestStats"]) == MAX_LIVE_REQUESTS
    end = {
        **run.model_dump(mode="python"),
        "finalStats": bounded_stats(final),
        "judgedStats": bounded_stats(final),  # a warm-up's: the same shape, as many entries
        "lastMetrics": ended_last_metrics(live, final),
        "thresholdResults": [r.model_dump(mode="python") for r in results],
        "verdict": verdict,
        "verdictReasons": [r.model_dump(mode="python") for r in reasons],
        **_worst_events(),
        "notifications": _worst_notifications(),
    }
    stored = end["finalStats"]
    assert len(stored["requestStats"]) == MAX_STORED_REQUESTS
    assert len(stored["errors"]) == MAX_STORED_ERRORS
    assert stored["requestsOmitted"] == MAX_ENTRIES - 1 - MAX_STORED_REQUESTS
    # The busiest requests are the ones kept; the totals are Locust's whatever is left out.
    assert min(i["numRequests"] for i in stored["requestStats"]) > max(
        i["numRequests"] for i in final["requestStats"] if i not in stored["requestStats"]
    )
    assert stored["totals"] == final["totals"]
    size = _size(end)
    assert size < MONGODB_MAX - MARGIN, f"{size:,} bytes"


def test_the_heartbeat_and_the_slimmed_end_fit_too() -> None:
    live = metrics_with_peaks({}, _worst_interval("r"))
    assert _size({"lastMetrics": live}) < MONGODB_MAX // 4
    final = final_stats(_worst_payload())
    changes = {"finalStats": final, "lastMetrics": live, "error": None}
    slim = without_per_request(changes, "MongoDB refused them")
    assert "requestStats" not in slim["finalStats"] and slim["finalStats"]["totals"]
    assert slim["error"].startswith("per-request statistics not stored")
    assert _size(slim) < 64 * 1024
