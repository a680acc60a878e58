"""`tests trend --explain` on the real wire server: a change point caused by one slow
request out of five is explained with that request first; two tests on one cluster that
changed the same day are marked environment-wide."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loadmgr.models import LoadTest, LoadTestRun
from tests.conftest import error_line, ok
from tests.metrics_data import START, final_stats, make_run, make_test, store_all
from tests.trend_data import noisy

pytestmark = pytest.mark.integration

STEP_AT = 20
NAMES = ("/a", "/b", "/c", "/slow", "/e")


def _nights(test: LoadTest, count: int, seed: int, slow_from: int | None) -> list[LoadTestRun]:
    """Five requests a night; `/slow` three times slower from night `slow_from` on."""
    runs = []
    for night, noise in enumerate(noisy(count, seed)):
        slow = slow_from is not None and night >= slow_from
        p95s = [noise * (3.0 if name == "/slow" and slow else 1.0) for name in NAMES]
        per_request = [
            {
                "method": "GET",
                "name": name,
                "numRequests": 1000,
                "numFailures": 0,
                "p95ResponseMs": p95,
                "requestsPerSec": 20.0 * noise / 100,
            }
            for name, p95 in zip(NAMES, p95s, strict=True)
        ]
        final = final_stats(p95=max(p95s), rps=100.0, failures=0, per_request=per_request)
        created = START + timedelta(days=night)
        runs.append(
            make_run(
                test,
                final=final,
                createdAt=created,
                startedAt=created,
                finishedAt=created + timedelta(seconds=600),
            )
        )
    return runs


@pytest.fixture
def shared(mongo_db: Any, cli: Any) -> None:
    ok(cli("clusters", "add", "perf", "--url", "http://127.0.0.1:1", "-q"))
    for name, host, seed, slow in (
        ("checkout", "checkout.test", 4, STEP_AT),  # its /slow request got slower
        ("search", "search.test", 5, STEP_AT),  # the same day, on the same cluster
        ("quiet", "quiet.test", 6, None),
    ):
        test = make_test(name, locustClusterId="perf", targetUrl=f"http://{host}:8080")
        runs = [
            r.model_copy(update={"locustClusterId": "perf"}) for r in _nights(test, 30, seed, slow)
        ]
        store_all(mongo_db, test, runs)


def test_one_slow_request_is_explained_first_and_environment_wide(cli: Any, shared: None) -> None:
    explained = ok(
        cli("tests", "trend", "checkout", "--metric", "p95", "--explain", "-o", "json")
    ).json()
    assert len(explained) == 1
    change = explained[0]
    assert change["metric"] == "p95" and change["regression"] is True
    assert abs(change["position"] - (STEP_AT + 1)) <= 1
    first = change["requests"][0]
    assert first["rank"] == 1 and first["request"] == "GET /slow"
    assert first["p95Change"] > 1.5
    assert all(abs(r["p95Change"]) < 0.2 for r in change["requests"][1:])
    assert [b["band"] for b in change["bands"]] == ["<=p50", "p50-p90", "p90-p99", ">p99"]
    assert change["shape"] == "unknown"  # these runs have no interval histograms
    assert change["environmentWide"] is True
    assert [(o["test"], o["shares"]) for o in change["elsewhere"]] == [("search", "cluster")]
    shown = ok(cli("tests", "trend", "checkout", "--metric", "p95", "--explain")).stdout
    assert "1. GET /slow: p95 +" in shown and "environment-wide" in shown and "search" in shown


def test_explain_without_a_neighbour_and_bad_formats(cli: Any, shared: None) -> None:
    assert ok(cli("tests", "trend", "quiet", "--explain", "-o", "json")).json() == []
    result = cli("tests", "trend", "checkout", "--explain", "-o", "csv")
    assert error_line(result, 2).startswith("error: --explain prints a table, json or jsonl")
