"""Issue 24: the load generator's health, per interval and per run, and the verdict
`inconclusive` it makes of failed checks; every surface that lists verdicts knows it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.cli.runs import watch
from loadmgr.cli.runs.views import run_exit_code
from loadmgr.errors import ExitCode
from loadmgr.models import LoadTestRun, ReasonKind, RunStatus, Scope, ThresholdResult, Verdict
from loadmgr.models.notifications import DEFAULT_EVENTS, EVENTS
from loadmgr.models.stats.generator import (
    SATURATED_SHARE,
    GeneratorReading,
    check_saturation_cpu,
    generator_stats,
    interval_generator,
    read_generator,
)
from loadmgr.models.verdicts import explain
from loadmgr.service.judging.verdicts import decide_verdict, recompute_verdict
from loadmgr.service.notifications import bodies
from loadmgr.service.notifications.subscriptions import run_events
from loadmgr.service.reports import junit
from loadmgr.service.reports import run_html as reports
from loadmgr.service.runs.lookup import VERDICT_FILTERS
from loadmgr.store import Store
from tests.metrics_data import make_run, make_test, store_all

FAILED_P95 = ThresholdResult(
    expression="p95<100ms", metric="p95", op="<", limit=100.0, actual=400.0, passed=False
)
HELD_P95 = FAILED_P95.model_copy(update={"actual": 50.0, "passed": True})
TOTALS = {"requests": 1000, "failures": 0}


def worker(cpu: Any, state: str = "running", memory: Any = 50_000_000) -> dict[str, Any]:
    return {"id": "w", "state": state, "cpu_usage": cpu, "memory_usage": memory}


# -- reading Locust's measures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "cpus", "missing", "reporting"),
    [
        ([worker(95.5), worker(10)], (95.5, 10.0), 0, 2),
        ([worker(95.5), worker(3, state="missing")], (95.5,), 1, 1),
        # What is no measure is unknown: the worker still reports, its CPU is not read.
        ([worker(float("nan")), worker(-1), worker(True), worker("90")], (), 0, 4),
        (["nonsense", None, 7, worker(20)], (20.0,), 0, 1),
        ([], (), 0, 0),
    ],
)
def test_a_worker_list_is_read_and_nonsense_left_out(
    workers: list[Any], cpus: tuple[float, ...], missing: int, reporting: int
) -> None:
    reading = read_generator(10.0, "running", workers, master_cpu=12.5)
    assert reading is not None and reading.loading
    assert (reading.cpus, reading.missing, reading.reporting) == (cpus, missing, reporting)
    assert reading.master_cpu == 12.5


@pytest.mark.parametrize("workers", [None, {"w": 1}, "[]", 3])
def test_no_worker_list_says_nothing_of_the_generator(workers: Any) -> None:
    assert read_generator(1.0, "running", workers) is None


def test_an_interval_holds_what_its_polls_saw_while_loading() -> None:
    readings = [
        GeneratorReading(1.0, True, (95.0, 40.0), master_cpu=5.0, memory_max=10, reporting=2),
        GeneratorReading(2.0, True, (80.0, 40.0), master_cpu=7.0, memory_max=30, reporting=2),
        GeneratorReading(3.0, True, (92.0,), master_cpu=6.0, missing=1, reporting=1),
        GeneratorReading(4.0, False, (), master_cpu=1.0),  # stopped: workers leave
    ]
    assert interval_generator(readings, 6.0, 90.0) == {
        "workers": 1,
        "cpuMaxPct": 95.0,
        "cpuAvgPct": 69.4,
        "masterCpuPct": 7.0,
        "missingWorkers": 1,
        "memMaxBytes": 30,
        "saturatedSec": 4.0,  # two of three readings had a worker at or above 90 %
    }
    assert interval_generator(readings[-1:], 5.0, 90.0) is None


@pytest.mark.parametrize("value", [9.9, 100.1, float("nan"), float("inf"), True, -5])
def test_a_saturation_level_out_of_range_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="invalid --saturation-cpu"):
        check_saturation_cpu(value)


# -- the run's summary ----------------------------------------------------------------------


def health(workers: int = 2, saturated: float = 0.0, missing: int = 0, cpu: float = 50.0) -> Any:
    return {
        "workers": workers, "cpuMaxPct": cpu, "cpuAvgPct": cpu, "masterCpuPct": 3.0,
        "missingWorkers": missing, "saturatedSec": saturated,
    }


@given(
    seconds=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=40),
)
@settings(max_examples=200, deadline=None, derandomize=True)
def test_saturated_exactly_when_a_worker_was_hot_for_a_tenth_of_the_judged_window(
    seconds: list[float],
) -> None:
    items = [(100.0 + 5 * i, 5.0, health(saturated=s)) for i, s in enumerate(seconds)]
    stats = generator_stats(items, warmup_sec=0, saturation_pct=90.0)
    assert stats is not None
    share = sum(seconds) / (5.0 * len(seconds))
    assert stats["saturated"] is (share >= SATURATED_SHARE)
    assert stats["workersLost"] == 0 and stats["judgedSec"] == 5.0 * len(seconds)


def test_the_warm_up_is_not_judged_and_a_lost_worker_counts_anywhere() -> None:
    items = [
        (0.0, 5.0, health(saturated=5.0)),  # warm-up: hot, not judged
        (5.0, 5.0, health(saturated=5.0, missing=1, workers=1)),  # in the warm-up too
        *[(10.0 + 5 * i, 5.0, health(workers=1)) for i in range(18)],
    ]
    stats = generator_stats(items, warmup_sec=10, saturation_pct=85.0)
    assert stats is not None
    assert (stats["saturatedSec"], stats["judgedSec"], stats["saturated"]) == (0.0, 90.0, False)
    assert (stats["workersLost"], stats["maxWorkers"], stats["saturationCpuPct"]) == (1, 2, 85.0)


def test_a_worker_joining_is_no_loss_and_no_reading_is_no_summary() -> None:
    items = [(0.0, 5.0, health(workers=1)), (5.0, 5.0, health(workers=2))]
    stats = generator_stats(items, warmup_sec=0, saturation_pct=90.0)
    assert stats is not None and stats["workersLost"] == 0 and stats["maxWorkers"] == 2
    assert generator_stats([], warmup_sec=0, saturation_pct=90.0) is None


# -- the verdict: the decision table of docs/verdicts.md ------------------------------------

SATURATED = {"saturated": True, "saturatedSec": 30.0, "judgedSec": 60.0, "workersLost": 0,
             "saturationCpuPct": 90.0, "peakCpuPct": 100.0}
LOST = {"saturated": False, "saturatedSec": 0.0, "judgedSec": 60.0, "workersLost": 1,
        "maxWorkers": 2}
HEALTHY = {"saturated": False, "saturatedSec": 1.0, "judgedSec": 60.0, "workersLost": 0}

SITUATIONS: dict[str, dict[str, Any]] = {
    "passed": {"threshold_results": [HELD_P95]},
    "failed": {"threshold_results": [FAILED_P95]},
    "raised": {"threshold_results": [HELD_P95], "user_errors": 3},
    "no success": {"threshold_results": [HELD_P95],
                   "final_totals": {"requests": 10, "failures": 10}},
    "aborted": {"threshold_results": [FAILED_P95], "stop_reason": "user"},
    "error": {"threshold_results": [FAILED_P95], "error": "Locust was lost"},
    "nothing checked": {},
}
# (situation, generator) → verdict; the generator's reason is first when it decided.
TABLE = {
    ("passed", "healthy"): Verdict.PASSED,
    ("passed", "saturated"): Verdict.PASSED,
    ("passed", "lost"): Verdict.PASSED,
    ("failed", "healthy"): Verdict.FAILED,
    ("failed", "saturated"): Verdict.INCONCLUSIVE,
    ("failed", "lost"): Verdict.INCONCLUSIVE,
    ("raised", "saturated"): Verdict.FAILED,  # user code raising is not the generator's
    ("no success", "saturated"): Verdict.FAILED,  # nor is every request failing
    ("aborted", "saturated"): Verdict.ABORTED,
    ("error", "lost"): Verdict.ERROR,
    ("nothing checked", "saturated"): None,
}
GENERATORS = {"healthy": HEALTHY, "saturated": SATURATED, "lost": LOST}


@pytest.mark.parametrize(("situation", "generator"), sorted(TABLE))
def test_the_decision_table(situation: str, generator: str) -> None:
    arguments = {"status": "Finished", "stop_reason": "duration", "final_totals": TOTALS,
                 **SITUATIONS[situation]}
    stats = GENERATORS[generator]
    verdict, reasons = decide_verdict(**arguments, generator=stats)
    assert verdict == TABLE[situation, generator]
    kinds = [reason.kind for reason in reasons]
    if generator == "healthy":
        assert ReasonKind.GENERATOR not in kinds
        return
    assert kinds.count(ReasonKind.GENERATOR) == 1
    mine = next(r for r in reasons if r.kind == ReasonKind.GENERATOR)
    if verdict == Verdict.INCONCLUSIVE:
        assert kinds[0] == ReasonKind.GENERATOR and mine.detail("warning") is False
        assert "may be the generator's" in mine.message
    else:
        assert mine.detail("warning") is True and kinds[-1] == ReasonKind.GENERATOR
    assert ("lost while loading" in mine.message) is (generator == "lost")
    assert ("at or above 90% CPU for 30s of 60s judged" in mine.message) is (
        generator == "saturated"
    )
    # `db migrate` and a baseline check decide it again from the stored run: the same.
    run = LoadTestRun(
        loadTestId="t", targetUsers=1, spawnRate=1, durationSeconds=60,
        status=RunStatus.FAILED if "error" in arguments else RunStatus.FINISHED,
        stopReason=arguments["stop_reason"], thresholdResults=arguments.get(
            "threshold_results", []), finalStats={"totals": arguments["final_totals"]},
        exceptionCount=arguments.get("user_errors", 0), verdictReasons=reasons,
        generatorStats=stats, verdict=verdict,
    )
    assert recompute_verdict(run.model_dump(mode="python")) == (verdict, reasons)


def test_a_passed_run_with_a_saturated_generator_says_both() -> None:
    verdict, reasons = decide_verdict(
        status="Finished", stop_reason="duration", threshold_results=[HELD_P95],
        final_totals=TOTALS, generator=SATURATED,
    )
    run = {"status": "Finished", "verdict": verdict, "thresholdResults": [HELD_P95],
           "verdictReasons": [r.model_dump() for r in reasons]}
    cell, lines = explain(run)
    assert cell == "passed (generator saturated)"
    assert lines[0] == "every check held (1 threshold)"
    assert lines[1].endswith("a saturated generator only makes numbers worse)")


def test_db_migrate_leaves_an_old_run_without_generator_stats_as_it_was() -> None:
    old = {"status": "Finished", "stopReason": "duration", "verdict": "failed",
           "thresholdResults": [FAILED_P95.model_dump()], "finalStats": {"totals": TOTALS}}
    verdict, reasons = recompute_verdict(old)
    assert verdict == Verdict.FAILED and [r.kind for r in reasons] == [ReasonKind.THRESHOLD]


# -- every surface knows every verdict ------------------------------------------------------


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


REASON_OF = {
    Verdict.PASSED: None,
    Verdict.FAILED: {"kind": "threshold", "message": "p95<100ms: 400ms (limit < 100ms)",
                     "expression": "p95<100ms"},
    Verdict.INCONCLUSIVE: {"kind": "generator", "message": "the load generator was saturated",
                           "saturated": True},
    Verdict.ABORTED: {"kind": "aborted", "message": "stopped with 'loadmgr runs stop'"},
    Verdict.ERROR: {"kind": "error", "message": "Locust was lost", "source": "locust"},
}
EXIT_OF = {
    Verdict.PASSED: ExitCode.OK,
    Verdict.FAILED: ExitCode.THRESHOLD_FAILED,
    Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
    Verdict.ABORTED: ExitCode.ABORTED,
    Verdict.ERROR: ExitCode.CLUSTER,
}


def test_every_verdict_of_the_model_is_in_this_table() -> None:
    assert set(REASON_OF) == set(Verdict) == set(EXIT_OF)
    assert ExitCode.INCONCLUSIVE == 8
    assert len(set(EXIT_OF.values())) == len(Verdict)  # CI tells each apart


@pytest.mark.parametrize("verdict", list(Verdict), ids=lambda v: v.value)
def test_every_surface_knows_every_verdict(store: Store, verdict: Verdict) -> None:
    reason = REASON_OF[verdict]
    test = make_test()
    run = make_run(
        test,
        verdict=verdict.value,
        status="Failed" if verdict == Verdict.ERROR else "Finished",
        verdictReasons=[reason] if reason else [],
        thresholdResults=[FAILED_P95 if verdict != Verdict.PASSED else HELD_P95],
    )
    store_all(store.db, test, [run])
    # The exit code, `runs list --verdict`, and its completion words.
    assert run_exit_code(run) == EXIT_OF[verdict]
    assert verdict.value in VERDICT_FILTERS and verdict.value in watch.VERDICTS
    # Webhooks: every verdict but a pass is an event one can subscribe to, by default too.
    assert (verdict.value in EVENTS) is (verdict != Verdict.PASSED)
    assert (verdict.value in DEFAULT_EVENTS) is (verdict != Verdict.PASSED)
    assert (verdict.value in run_events(run, None)) is (verdict != Verdict.PASSED)
    assert verdict.value in bodies._ICONS
    # The HTML report's badge has a colour of its own.
    data = reports.gather(store, run.id)
    html = reports.render_html(data)
    assert f".{verdict.value}{{background:" in html
    assert f'class="badge {verdict.value}">{verdict.value.upper()}</span>' in html
    # JUnit: anything but a pass is a failure or an error CI sees.
    suite = ET.fromstring(junit.junit_xml(data)).find("testsuite")
    assert suite is not None
    bad = int(suite.get("failures") or 0) + int(suite.get("errors") or 0)
    assert (bad > 0) is (verdict != Verdict.PASSED)
    if verdict == Verdict.INCONCLUSIVE:
        case = next(c for c in suite.iter("testcase") if c.get("name") == f"run {run.name}")
        failure = case.find("failure")
        assert failure is not None and failure.get("type") == "generator"
        assert "run inconclusive: the load generator was saturated" in (
            failure.get("message") or ""
        )


def test_the_views_say_the_generator_in_a_few_words() -> None:
    from loadmgr.models.stats.generator import interval_words, stats_words

    assert interval_words(health(workers=2, missing=1, cpu=97.4)) == (
        "cpu 97% (avg 97%, 2 workers, 1 missing)"
    )
    assert interval_words(None) is None and stats_words("nonsense") is None
    assert stats_words({**SATURATED, "peakMasterCpuPct": 3.0, **LOST, "saturated": True}) == (
        "peak worker CPU 100% (master 3%); 0s of 60s judged at or above 90% (saturated); "
        "1 worker lost of 2"
    )
