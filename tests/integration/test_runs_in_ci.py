"""Runs in CI (issue 25) against real servers: a run started in GitHub Actions records its
context and appends its summary to the job's page; runs list and tests trend filter by
branch and commit; a pull request's run is judged against main's current regime."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models import Scope, Verdict
from loadmgr.service.analysis.trend_gate import apply_trend
from loadmgr.service.analysis.trends import TrendOptions
from loadmgr.store import Store
from tests.fake_locust import fake_locust
from tests.metrics_data import final_stats, make_run, make_test, store_all
from tests.trend_data import nightly_runs, noisy

pytestmark = pytest.mark.integration

SHA = "fedcba9876543210fedcba9876543210fedcba98"


def test_a_run_in_github_actions_records_its_context_and_appends_its_summary(
    cli: Any, mongo_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("## an earlier step's summary\n")
    for name, value in {
        "GITHUB_ACTIONS": "true", "GITHUB_SHA": SHA, "GITHUB_REF": "refs/pull/42/merge",
        "GITHUB_REF_NAME": "42/merge", "GITHUB_HEAD_REF": "feature/cart",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "7", "GITHUB_JOB": "load", "GITHUB_STEP_SUMMARY": str(step_summary),
    }.items():
        monkeypatch.setenv(name, value)
    with fake_locust(plugin=True) as fake:
        assert cli("clusters", "add", "fake", "--url", fake.url).exit_code == 0
        created = cli(
            "tests", "create", "--name", "demo", "--target-url", "http://127.0.0.1:9/",
            "--cluster", "fake", "--duration", "3s", "--threshold", "p95<1000ms",
        )
        assert created.exit_code == 0, created.stderr
        summary = tmp_path / "summary.md"
        result = cli("runs", "start", "demo", "--interval", "1", "--summary", str(summary),
                     "-o", "json")
    assert result.exit_code == 0, result.stderr
    run = mongo_db.load_test_runs.find_one({})
    assert run["ci"] == {
        "provider": "github-actions", "commit": SHA, "branch": "feature/cart",
        "pullRequest": "42", "buildUrl": "https://github.com/acme/shop/actions/runs/7",
        "job": "load",
    }
    written = summary.read_text()
    shown = re.sub(r"\\(.)", r"\1", written)  # as rendered: no escape left
    assert "PASSED" in shown and "p95<1000ms" in shown and SHA[:12] in shown
    assert step_summary.read_text() == "## an earlier step's summary\n" + written
    listed = cli("runs", "list", "--branch", "feature/cart", "-o", "json")
    assert [r["id"] for r in listed.json()] == [run["id"]]
    assert cli("runs", "list", "--commit", SHA[:7].upper(), "-o", "json").json()[0]["id"] == (
        run["id"]
    )
    assert cli("runs", "list", "--branch", "main", "-o", "json").json() == []
    short = cli("runs", "list", "--commit", "fedcba")
    assert short.exit_code == 2 and "--commit" in short.stderr
    report = cli("metrics", "report", run["id"], "--format", "markdown")
    assert report.exit_code == 0 and report.stdout == written


def test_summary_with_detach_or_onto_a_device_is_refused_before_any_load(
    cli: Any, mongo_db: Any
) -> None:
    # Exit 2, not 4 for the test that does not exist: refused before anything is read.
    for args in (["--summary", "s.md", "--detach"], ["--summary", "/dev/null"]):
        refused = cli("runs", "start", "demo", *args)
        assert refused.exit_code == 2, refused.stderr
    assert mongo_db.load_test_runs.count_documents({}) == 0


def _main_with_a_step(store: Store) -> Any:
    """Main's history: 12 runs at p95 ~100 ms, then a step to ~150 ms for 12 more; and
    a pull request's own runs at ~300 ms (which must not be the reference)."""
    test = make_test("checkout")
    main = noisy(12, 1, level=100.0, noise=0.05) + noisy(12, 2, level=150.0, noise=0.05)
    runs = nightly_runs(test, main, ci={"provider": "git", "branch": "main"})
    pr_runs = nightly_runs(test, noisy(4, 3, level=300.0, noise=0.05),
                           ci={"provider": "git", "branch": "feature/cart"})
    for offset, run in enumerate(pr_runs):
        run.createdAt = runs[-1].createdAt + timedelta(hours=offset + 1)
    store_all(store.db, test, runs + pr_runs)
    return test, runs[-1].createdAt + timedelta(days=1)


@pytest.mark.parametrize(
    ("p95", "verdict"),
    [(200.0, Verdict.FAILED), (120.0, Verdict.PASSED), (152.0, Verdict.PASSED)],
    ids=["above-main-regime", "below-main-regime", "within-main-regime"],
)
def test_a_pull_request_run_is_judged_against_mains_current_regime(
    mongo_db: Any, mongo_uri: str, p95: float, verdict: Verdict
) -> None:
    store = Store(mongo_db, Scope(), mongo_uri)
    store.ensure_indexes()
    test, when = _main_with_a_step(store)
    run = make_run(test, final=final_stats(p95=p95, p99=p95 * 2, failures=0), createdAt=when,
                   ci={"provider": "git", "branch": "feature/cart"}, verdict="passed")
    store_all(store.db, runs=[run])
    judged = apply_trend(store, run, TrendOptions(branch="main").to_document())
    assert judged.verdict == verdict, judged.verdictReasons
    checks = {c["metric"]: c for c in judged.trendChecks or []}
    assert checks["p95"]["againstBranch"] == "main"
    # The reference is main's regime since its step (~150 ms), not its old one nor the PR's.
    assert 140 < checks["p95"]["baseline"] < 160 and checks["p95"]["runs"] == 12
    assert checks["p95"]["regressed"] == (verdict == Verdict.FAILED)
    if verdict == Verdict.FAILED:  # the message names the branch it was judged against
        message = next(r.message for r in judged.verdictReasons if r.kind == "trend")
        assert "worse than main's current regime" in message, message


def test_tests_trend_on_one_branch_reads_that_branch_only(cli: Any, mongo_db: Any,
                                                          mongo_uri: str) -> None:
    store = Store(mongo_db, Scope(), mongo_uri)
    _main_with_a_step(store)
    rows = cli("tests", "trend", "checkout", "--branch", "main", "--metric", "p95", "-o", "json")
    assert rows.exit_code == 0, rows.stderr
    assert len(rows.json()) == 24 and max(r["value"] for r in rows.json()) < 200
    every = cli("tests", "trend", "checkout", "--metric", "p95", "-o", "json").json()
    assert len(every) == 28
