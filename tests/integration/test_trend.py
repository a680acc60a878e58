"""`tests trend` end to end on the real wire server: months of nightly runs, their change
points, the gate for cron and CI, the HTML page in headless Chromium, `--check-trend`."""

from __future__ import annotations

import copy
import csv
import io
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models import LoadTest, LoadTestRun
from tests.conftest import documents_of, error_line, loadmgr_command, ok
from tests.headless_chromium import load_page
from tests.integration.test_runs import create_test
from tests.locust_servers import DEMO_LOCUSTFILE
from tests.metrics_data import make_test, store_all
from tests.trend_data import nightly_runs, noisy, stepped

pytestmark = pytest.mark.integration

STEP_AT = 25  # 0-based: the 26th night is the first slow one
COLLECTIONS = ("load_tests", "load_test_runs", "metrics_timeseries")


def _store(
    mongo_db: Any, name: str, p95: list[float], **kwargs: Any
) -> tuple[LoadTest, list[LoadTestRun]]:
    test = make_test(name)
    runs = nightly_runs(test, p95, **kwargs)
    store_all(mongo_db, test, runs)
    return test, runs


@pytest.fixture
def nightly(mongo_db: Any) -> list[LoadTestRun]:
    """36 nights of `nightly`, p95 30% slower from night 26 on; nights 5-7 ran 50 users."""
    loads = {night: {"targetUsers": 50} for night in (4, 5, 6)}
    return _store(mongo_db, "nightly", stepped(36, STEP_AT, seed=11), loads=loads)[1]


def test_json_finds_the_step_at_its_run(cli: Any, nightly: list[LoadTestRun]) -> None:
    result = ok(cli("tests", "trend", "nightly", "--last", "40", "-o", "json"))
    assert "3 of 36 runs had another load than the newest" in result.stderr
    rows = result.json()
    assert isinstance(rows, list) and len(rows) == 36 * 3
    assert [r["metric"] for r in rows[:3]] == ["p95", "rps", "error_rate"]
    p95 = [r for r in rows if r["metric"] == "p95"]
    assert [r["runId"] for r in p95] == [run.id for run in nightly]
    starts = [r for r in p95 if r["startsRegime"]]
    assert len(starts) == 1 and abs(starts[0]["position"] - (STEP_AT + 1)) <= 1
    start = starts[0]
    assert start["regression"] is True and start["relativeChange"] > 0.2
    assert start["meanAfter"] > start["meanBefore"] * 1.2 and start["pValue"] < 0.01
    assert [r["comparable"] for r in p95].count(False) == 3
    assert p95[4]["targetUsers"] == 50 and p95[4]["regimeMean"] is None
    assert p95[0]["createdAt"].endswith("Z")
    assert not any(r["startsRegime"] for r in rows if r["metric"] != "p95")


def test_csv_jsonl_quiet_and_table(cli: Any, nightly: list[LoadTestRun]) -> None:
    text = ok(cli("tests", "trend", "nightly", "--metric", "p95", "-o", "csv")).stdout
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 30  # --last 30 by default
    assert {"runId", "metric", "value", "startsRegime", "meanBefore", "meanAfter"} <= set(
        table[0]
    )
    assert [row["startsRegime"] for row in table].count("true") == 1  # docs/output.md
    lines = ok(cli("tests", "trend", "nightly", "--metric", "rps", "-o", "jsonl")).stdout
    assert len(lines.splitlines()) == 30
    ids = ok(cli("tests", "trend", "nightly", "-q")).stdout.split()
    assert ids == [run.id for run in nightly[-30:]]
    shown = ok(cli("tests", "trend", "nightly", "-o", "table")).stdout
    assert "p95 latency" in shown and "change points:" in shown and "▲ p95" in shown
    assert "regression" in shown and "newest run: in a regression regime" in shown
    page = ok(cli("tests", "trend", "nightly", "--html", "-")).stdout
    assert page.startswith("<!DOCTYPE html>") and "change points:" not in page


def test_fail_on_regression_only_in_the_regressed_regime(
    cli: Any, mongo_db: Any, nightly: list[LoadTestRun]
) -> None:
    failed = cli("tests", "trend", "nightly", "--fail-on-regression", "-o", "json")
    assert failed.exit_code == 1, failed.stderr
    assert failed.json() and "newest run: in a regression regime (p95" in failed.stderr
    # The same nights before the step: no regression yet.
    _store(mongo_db, "early", stepped(36, STEP_AT, seed=11)[:STEP_AT])
    assert ok(cli("tests", "trend", "early", "--fail-on-regression", "-o", "json")).json()
    _store(mongo_db, "steady", noisy(36, 5))
    assert ok(cli("tests", "trend", "steady", "--fail-on-regression", "-o", "json")).json()
    # Faster from night 20 on: a change point, but an improvement.
    _store(mongo_db, "faster", stepped(36, 20, seed=2, factor=0.7))
    faster = ok(cli("tests", "trend", "faster", "--fail-on-regression", "--metric", "p95",
                    "-o", "json")).json()
    assert [r["regression"] for r in faster if r["startsRegime"]] == [False]
    # Slower, then back: the newest runs are in a recovered regime.
    back = [v * (1.4 if 12 <= i < 24 else 1.0) for i, v in enumerate(noisy(36, 8))]
    _store(mongo_db, "recovered", back)
    recovered = ok(cli("tests", "trend", "recovered", "--fail-on-regression", "--last", "36",
                       "--metric", "p95", "-o", "json")).json()
    assert [r["regression"] for r in recovered if r["startsRegime"]] == [True, False]
    # One night before the step in the window: a regime needs 3 runs, so no change is seen.
    assert cli("tests", "trend", "nightly", "--last", "12", "--metric", "p95",
               "--fail-on-regression", "-o", "json").exit_code == 0


def test_as_a_cron_job_would_run_it(nightly: list[LoadTestRun], mongo_uri: str) -> None:
    done = subprocess.run(
        [*loadmgr_command(), "tests", "trend", "nightly", "--fail-on-regression", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.lstrip().startswith("[") and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--metric", "p42"], 2, "error: unknown --metric 'p42' (one of p50, p90, p95, p99"),
        (["--last", "0"], 2, "error: invalid --last 0 (1 to 100000)"),
        (["--since", "last tuesday"], 2, "error: invalid --since 'last tuesday'"),
        (["--sensitivity", "extreme"], 2, "error: invalid --sensitivity 'extreme'"),
        (["--min-change", "-1%"], 2, "error: invalid --min-change '-1%'"),
        (["--p-value", "1"], 2, "error: invalid --p-value '1'"),
        (["--request", "GET /nope"], 2, "error: no run of test 'nightly' has a request"),
        (["-o", "yaml"], 2, "error: unknown output format 'yaml'"),
        (["--html", "/no-such-dir/t.html"], 2, "error: cannot write /no-such-dir/t.html"),
    ],
)
def test_bad_input(
    cli: Any, mongo_db: Any, nightly: list[LoadTestRun], args: list[str], code: int, message: str
) -> None:
    before = documents_of(mongo_db, COLLECTIONS)
    assert error_line(cli("tests", "trend", "nightly", *args), code).startswith(message)
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_unknown_test_and_another_scope(cli: Any, nightly: list[LoadTestRun]) -> None:
    assert error_line(cli("tests", "trend", "nope"), 4).startswith("error: test 'nope' not found")
    other = cli("--tenant", "someone-else", "tests", "trend", "nightly")
    assert error_line(other, 4).startswith("error: test 'nightly' not found")


def test_without_the_extra(
    cli: Any, mongo_db: Any, nightly: list[LoadTestRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    from loadmgr.service.analysis import change_points

    monkeypatch.setattr(change_points, "ruptures_installed", lambda: False)
    result = cli("tests", "trend", "nightly")
    assert error_line(result, 2) == "error: trends need the optional 'trend' extra"
    assert result.stderr.splitlines()[1] == (
        "hint: pip install 'loadmgr[trend]' (in a clone of loadmgr: pip install -e '.[trend]')"
    )
    before = documents_of(mongo_db, COLLECTIONS)
    started = cli("runs", "start", "nightly", "--check-trend")
    assert error_line(started, 2) == "error: trends need the optional 'trend' extra"
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_html_page_in_headless_chromium(
    cli: Any, nightly: list[LoadTestRun], tmp_path: Path
) -> None:
    page = tmp_path / "trend.html"
    result = ok(cli("tests", "trend", "nightly", "--html", str(page), "-o", "json"))
    assert f"wrote {page}" in result.stderr
    loaded = load_page(page)
    assert loaded.console == []  # no error, no blocked resource, no CSP violation
    assert loaded.dom.count('<svg class="trend-chart') == 3
    assert loaded.dom.count('class="change-point"') == 1
    for run in nightly[-30:]:
        assert f'<tr id="run-{run.id}">' in loaded.dom and f'href="#run-{run.id}"' in loaded.dom


def test_metrics_report_shows_the_recent_trend(
    cli: Any, nightly: list[LoadTestRun], tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    ok(cli("metrics", "report", nightly[-1].id, "--html", str(report)))
    loaded = load_page(report)
    assert loaded.console == []
    assert '<section id="trend"><h2>Recent trend</h2>' in loaded.dom
    assert loaded.dom.count('<svg class="trend-chart') == 3
    assert "This run is in a regression regime: p95" in loaded.dom


def test_check_trend_fails_a_real_run_in_a_regressed_regime(
    cli: Any, mongo_db: Any, target_server: Any, locust_standalone: Any
) -> None:
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    created = create_test(cli, target_server.url, "gated", "--cluster", "solo", "--duration", "3s")
    first = cli("runs", "start", "gated", "--interval", "1", "--check-trend", "-o", "json")
    assert first.exit_code == 0, first.stderr  # no history yet: nothing to regress from
    assert "no regression against its trend" in first.stderr
    run = first.json()
    assert run["requestedChecks"]["trend"]["metrics"] == ["p95", "rps", "error_rate"]
    assert [c["metric"] for c in run["trendChecks"]] == ["p95", "rps", "error_rate"]
    # A month of history before it, ten times faster, then five nights like it.
    stored = mongo_db.load_test_runs.find_one({"id": run["id"]}, {"_id": False})
    template = LoadTestRun.model_validate(stored)
    test = LoadTest.model_validate(mongo_db.load_tests.find_one({"id": created["id"]}))
    history = []
    for night, factor in enumerate([0.1] * 25 + [1.0] * 5):
        final = copy.deepcopy(template.finalStats) or {}
        final["totals"]["p95ResponseMs"] *= factor * (1 + 0.02 * ((night % 5) - 2))
        created_at = template.createdAt - timedelta(days=30 - night)
        history.append(
            template.model_copy(
                update={
                    "id": f"seeded-{night:02d}",
                    "createdAt": created_at,
                    "finalStats": final,
                    "judgedStats": None,
                    "trendChecks": None,
                    "requestedChecks": {},
                }
            )
        )
    store_all(mongo_db, None, history)
    assert test.name == "gated"
    second = cli("runs", "start", "gated", "--interval", "1", "--check-trend", "-o", "json")
    assert second.exit_code == 1, second.stderr
    assert "regression: p95 is " in second.stderr and "than its trend" in second.stderr
    judged = second.json()
    assert judged["verdict"] == "failed"
    assert "trend" in [r["kind"] for r in judged["verdictReasons"]]
    p95 = next(c for c in judged["trendChecks"] if c["metric"] == "p95")
    assert p95["regressed"] is True and p95["changeRunId"]
    assert "failed (p95 vs trend)" in cli("runs", "show", judged["id"]).stdout
    assert judged["endSteps"] == "done"
    # As a collector killed right after its final write leaves the run: its check and
    # verdict stored with the end, the webhooks and the schedule not told yet. `runs show`
    # says so; `runs follow` tells them (docs/reliability.md).
    mongo_db.load_test_runs.update_one({"id": judged["id"]}, {"$set": {"endSteps": "pending"}})
    shown = " ".join(cli("runs", "show", judged["id"]).stdout.split())
    assert "after the end NOT done" in shown
    followed = cli("runs", "follow", judged["id"], "-o", "json")
    assert followed.exit_code == 1, followed.stderr
    assert "doing what follows it now" in followed.stderr
    finished = followed.json()
    assert finished["verdict"] == "failed" and finished["endSteps"] == "done"
    assert cli("runs", "follow", judged["id"]).exit_code == 1  # nothing more to do
    assert mongo_db.load_test_runs.find_one({"id": judged["id"]})["endSteps"] == "done"
