"""What a run prints as it goes and when it ends: plain lines and the live view."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from loadmgr.cli.runs.live import LiveObserver, PlainObserver, interval_line, verdict_lines
from loadmgr.models import LoadTestRun, MetricSnapshot
from loadmgr.service.judging.abort_judge import AbortJudge
from loadmgr.service.judging.verdicts import decide_verdict, verdict_changes


def make_run(**fields: Any) -> LoadTestRun:
    return LoadTestRun.model_validate(
        {
            "id": "0123456789abcdef",
            "loadTestId": "t",
            "name": "nightly",
            "targetUsers": 10,
            "spawnRate": 5.0,
            "durationSeconds": 60,
            "status": "Finished",
            "stopReason": "duration",
            **fields,
        }
    )


def snapshot() -> MetricSnapshot:
    return MetricSnapshot(
        loadTestRunId="0123456789abcdef",
        timestamp=datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc),
        totalRPS=40.0,
        failuresPerSec=4.0,
        intervalRequests=200,
        intervalFailures=20,
        errorRate=0.1,
        p50ResponseMs=12.0,
        p95ResponseMs=51.6,
        totalRequests=200,
        totalFailures=20,
        currentUsers=10,
        state="running",
    )


def judged_states() -> Any:
    judge = AbortJudge(["error_rate<1%", "p95<500ms", "rps>=100"])
    judge.observe(snapshot().model_dump())
    return judge.states()


def test_interval_line_shows_each_thresholds_state() -> None:
    line = interval_line(make_run(), snapshot(), 5.0, judged_states())
    assert "rps=40.0/s" in line and "p95=52ms" in line and "errors=10.00%" in line
    assert line.endswith(
        "thresholds: error_rate<1% BREACHED (10.00%); p95<500ms ok (52ms); "
        "rps>=100 not judged (40.0/s)"
    )
    assert "thresholds" not in interval_line(make_run(), snapshot(), 5.0)


@pytest.mark.parametrize(
    ("given", "head", "why"),
    [
        (
            {"stop_reason": "user", "abort_note": "stopped by alice with runs stop"},
            "Finished (user): verdict aborted (stopped early)",
            ["  why: stopped by alice with runs stop"],
        ),
        (
            {"status": "Failed", "stop_reason": "lost", "error": "no answer for 30s"},
            "Failed (lost): verdict error (Locust lost)",
            ["  why: no answer for 30s"],
        ),
        (
            {"final_totals": {"requests": 12, "failures": 12}},
            "Finished (duration): verdict failed (no successful request)",
            ["  why: every one of the 12 requests failed"],
        ),
        ({}, "Finished (duration): verdict -", ["  why: nothing was checked"]),
    ],
)
def test_the_end_of_a_run_says_its_verdict_and_why(
    given: dict[str, Any], head: str, why: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments: dict[str, Any] = {"status": "Finished", "stop_reason": "duration", **given}
    verdict, reasons = decide_verdict(**arguments)
    run = make_run(
        status=arguments["status"],
        stopReason=arguments["stop_reason"],
        **verdict_changes(verdict, reasons),
    )
    lines = verdict_lines(run)
    assert lines[0] == f"run {run.id} {head}"
    assert [line[: len(w)] for line, w in zip(lines[1:], why, strict=True)] == why
    PlainObserver().finished(run)
    assert capsys.readouterr().err.splitlines()[-len(lines) :] == lines


def test_plain_observer_remembers_the_states_for_the_next_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    observer = PlainObserver()
    observer.thresholds(judged_states())
    observer.interval(make_run(status="Running"), snapshot())
    assert "error_rate<1% BREACHED (10.00%)" in capsys.readouterr().err


def test_live_view_shows_the_states() -> None:
    observer = LiveObserver()
    observer._run = make_run(status="Running")  # as started() sets it, without a terminal
    observer._snapshot = snapshot()
    observer.thresholds(judged_states())
    console = Console(record=True, width=200)
    console.print(observer._render())
    text = console.export_text()
    assert "error_rate<1% BREACHED (10.00%)" in text and "p95<500ms ok (52ms)" in text


@pytest.mark.parametrize("width", [60, 78, 200])
def test_live_view_keeps_each_figure_on_one_line(width: int) -> None:
    observer = LiveObserver()
    observer._run = make_run(status="Running")
    observer._snapshot = snapshot().model_copy(update={"workerCount": 2})
    console = Console(record=True, width=width)
    console.print(observer._render())
    text = console.export_text()
    for figure in ("users 10/10", "workers 2", "rps 40.0/s", "p95 52ms", "requests 200"):
        assert figure in text, (figure, text)


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({"verdict": "aborted", "error": "stopped with 'loadmgr runs stop'"}, "note"),
        ({"status": "Failed", "verdict": "error", "error": "Locust lost"}, "error"),
        ({"verdict": "passed"}, "error"),
    ],
)
def test_runs_show_calls_a_stop_note_a_note(fields: dict[str, Any], label: str) -> None:
    from loadmgr.cli.runs.views import run_view

    console = Console(record=True, width=120)
    console.print(run_view(make_run(**fields).model_dump(mode="json")))
    lines = console.export_text().splitlines()
    assert any(line.strip("│ ").startswith(f"{label} ") for line in lines), lines


# -- issue 20, item 5: the live view's closing line is the stored run ------------------------


def _rendered(observer: LiveObserver) -> str:
    console = Console(record=True, width=200)
    console.print(observer._render())
    return console.export_text()


def test_live_views_closing_figures_are_the_stored_runs() -> None:
    """It ended at "failures 26.92 %" (the last interval's) where the run says 27.20 %."""
    observer = LiveObserver()
    observer._run = make_run(status="Running")
    observer._snapshot = snapshot().model_copy(
        update={"errorRate": 0.2692, "totalRequests": 990, "totalFailures": 267}
    )
    totals = {"requests": 1000, "failures": 272, "errorRate": 0.272, "rps": 33.3,
              "p95ResponseMs": 120.0}
    observer.finished(make_run(finalStats={"totals": totals, "requestStats": []}))
    text = _rendered(observer)
    for figure in ("failures 27.20%", "requests 1,000", "rps 33.3/s", "p95 120ms"):
        assert figure in text, (figure, text)
    assert "26.92" not in text and "990" not in text


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.floats(0, 5000),
    st.one_of(st.none(), st.floats(0, 60_000)),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.floats(0, 1),
)
def test_the_live_view_never_mixes_an_intervals_rate_with_the_runs_totals(
    requests: int,
    failures: int,
    rps: float,
    p95: float | None,
    so_far: int,
    failed_so_far: int,
    interval_rate: float,
) -> None:
    """While it runs, the failure share is of the requests shown beside it (the run's so
    far); once it ended, every figure is the stored run's, as `runs show` prints it."""
    from loadmgr.models.formatting import format_ms, format_percent, format_rps

    failures, failed_so_far = min(failures, requests), min(failed_so_far, so_far)
    observer = LiveObserver()
    observer._run = make_run(status="Running")
    observer._snapshot = snapshot().model_copy(
        update={"errorRate": interval_rate, "totalRequests": so_far,
                "totalFailures": failed_so_far}
    )
    running = _rendered(observer)
    share = failed_so_far / so_far if so_far else 0.0
    assert f"failures {format_percent(share)}" in running and f"requests {so_far:,}" in running
    totals = {"requests": requests, "failures": failures, "rps": rps, "p95ResponseMs": p95,
              "errorRate": failures / requests if requests else 0.0}
    observer.finished(make_run(finalStats={"totals": totals, "requestStats": []}))
    ended = _rendered(observer)
    for figure in (
        f"failures {format_percent(totals['errorRate'])}",
        f"requests {requests:,}",
        f"rps {format_rps(rps)}",
        f"p95 {format_ms(p95)}",
    ):
        assert figure in ended, (figure, ended)
