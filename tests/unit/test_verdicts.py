"""One verdict model: decided once, stored with its reasons, read the same everywhere."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.cli.runs.views import run_exit_code
from loadmgr.errors import ClusterError, DatabaseError, ExitCode
from loadmgr.models import (
    LoadTestRun,
    ReasonKind,
    Regression,
    ThresholdResult,
    Verdict,
    parse_threshold,
)
from loadmgr.models.verdicts import explain, verdict_label
from loadmgr.service.collection.spool import SpoolError
from loadmgr.service.judging.verdicts import (
    Breach,
    decide_verdict,
    recompute_verdict,
    verdict_changes,
)

TOTALS = {"requests": 1000, "failures": 10}


def result(expression: str = "p95<500ms", passed: bool = True, actual: float = 400.0) -> Any:
    return ThresholdResult(
        expression=expression, metric="p95", op="<", limit=500.0, actual=actual, passed=passed
    )


def regression(metric: str = "rps", regressed: bool = True) -> Regression:
    return Regression(
        metric, 100.0, 50.0 if regressed else 99.0, 0.5 if regressed else 0.01, 0.1, regressed
    )


def decide(**given: Any) -> tuple[Verdict | None, list[Any]]:
    arguments: dict[str, Any] = {
        "status": "Finished",
        "stop_reason": "duration",
        "final_totals": TOTALS,
        **given,
    }
    return decide_verdict(**arguments)


def broken(expression: str, actual: float, *, requests: int) -> Breach:
    """`expression` broken mid-run by `actual`, over the last 3 intervals."""
    return Breach.of(
        parse_threshold(expression), actual, windowIntervals=3, windowRequests=requests
    )


def kinds(reasons: list[Any]) -> list[str]:
    return [reason.kind.value for reason in reasons]


def test_nothing_checked_nothing_wrong_is_null() -> None:
    assert decide() == (None, [])


def test_every_check_held_is_passed() -> None:
    verdict, reasons = decide(
        threshold_results=[result()], baseline_checks=[regression(regressed=False)]
    )
    assert (verdict, reasons) == (Verdict.PASSED, [])


@pytest.mark.parametrize(
    ("given", "kind"),
    [
        ({"threshold_results": [result(passed=False, actual=812.0)]}, "threshold"),
        ({"baseline_checks": [regression()]}, "baseline"),
        ({"trend_checks": [regression("p95")]}, "trend"),
        ({"final_totals": {"requests": 50, "failures": 50}}, "no_success"),
        ({"final_totals": {"requests": 0, "failures": 0}}, "no_success"),
        ({"stop_reason": "threshold"}, "threshold"),
    ],
)
def test_failed_says_which_check(given: dict[str, Any], kind: str) -> None:
    verdict, reasons = decide(**given)
    assert verdict == Verdict.FAILED
    assert kinds(reasons) == [kind]
    assert reasons[0].message


def test_threshold_reason_in_the_unit_written() -> None:
    _, reasons = decide(threshold_results=[result("p95<500ms", passed=False, actual=812.0)])
    assert reasons[0].message == "p95<500ms: 812ms (limit < 500ms)"
    assert reasons[0].detail("actual") == 812.0 and reasons[0].detail("limit") == 500.0


def test_all_failed_without_thresholds_is_failed() -> None:
    verdict, reasons = decide(final_totals={"requests": 1234, "failures": 1234})
    assert verdict == Verdict.FAILED
    assert reasons[0].message == "every one of the 1,234 requests failed"


@pytest.mark.parametrize(
    "given",
    [
        {"stop_reason": "user"},
        {"interrupted": True},
        {"status": "Stopped", "stop_reason": None},  # the Go control plane's early stop
    ],
)
def test_stopped_early_is_aborted(given: dict[str, Any]) -> None:
    verdict, reasons = decide(**given)
    assert verdict == Verdict.ABORTED and kinds(reasons) == ["aborted"]


def test_a_signal_before_the_swarm_is_aborted_even_if_recorded_failed() -> None:
    verdict, reasons = decide(
        status="Failed", stop_reason="user", interrupted=True, final_totals=None
    )
    assert verdict == Verdict.ABORTED and kinds(reasons) == ["aborted"]
    assert reasons[0].message.startswith("interrupted (Ctrl-C or SIGTERM)")
    doc = run_document(status="Failed", stopReason="user", **verdict_changes(verdict, reasons))
    assert recompute_verdict(doc) == (verdict, reasons)
    assert run_exit_code(LoadTestRun.model_validate(doc)) == ExitCode.ABORTED


def test_aborted_beats_failed_but_keeps_the_failed_checks() -> None:
    verdict, reasons = decide(
        stop_reason="user",
        abort_note="Locust was stopped outside loadmgr",
        threshold_results=[result(passed=False)],
        final_totals={"requests": 0, "failures": 0},  # not a failure: it was cut short
    )
    assert verdict == Verdict.ABORTED
    assert kinds(reasons) == ["aborted", "threshold"]
    assert reasons[0].message == "Locust was stopped outside loadmgr"


def test_all_requests_failed_in_an_aborted_run_is_listed() -> None:
    _, reasons = decide(stop_reason="user", final_totals={"requests": 9, "failures": 9})
    assert kinds(reasons) == ["aborted", "no_success"]


@pytest.mark.parametrize(
    ("given", "source"),
    [
        ({"status": "Failed", "stop_reason": "error", "error": "swarm refused"}, "locust"),
        ({"status": "Failed", "stop_reason": "lost", "final_totals": None}, "locust"),
        ({"error": ClusterError("Locust lost")}, "locust"),
        ({"error": DatabaseError("MongoDB gone")}, "database"),
        ({"error": SpoolError("disk full")}, "database"),
        ({"error": "odd", "error_source": "loadmgr"}, "loadmgr"),
    ],
)
def test_could_not_complete_is_error(given: dict[str, Any], source: str) -> None:
    verdict, reasons = decide(**given)
    assert verdict == Verdict.ERROR
    assert reasons[0].kind == ReasonKind.ERROR and reasons[0].detail("source") == source


def test_error_beats_aborted_and_failed() -> None:
    verdict, reasons = decide(
        status="Failed",
        stop_reason="lost",
        interrupted=True,
        threshold_results=[result(passed=False)],
    )
    assert verdict == Verdict.ERROR and kinds(reasons) == ["error", "threshold"]
    assert reasons[0].message == "Locust was lost"


def test_an_active_run_has_no_verdict_yet() -> None:
    for status in ("Pending", "Running", "Stopping"):
        assert decide(status=status, threshold_results=[result(passed=False)]) == (None, [])


def test_a_breach_fails_the_run_even_if_the_final_numbers_pass() -> None:
    breach = broken("error_rate<1%", 0.098, requests=612)
    passing = ThresholdResult.of(parse_threshold("error_rate<1%"), 0.009)
    verdict, reasons = decide(
        stop_reason="threshold", threshold_results=[passing], abort_breach=breach
    )
    assert verdict == Verdict.FAILED and kinds(reasons) == ["threshold"]
    assert reasons[0].message == (
        "error_rate<1% broke while the run went on: 9.80% over the last 3 intervals, "
        "612 requests; the run was stopped"
    )
    assert reasons[0].detail("midRun") is True


def run_document(**fields: Any) -> dict[str, Any]:
    return {
        "id": "r1",
        "loadTestId": "t1",
        "targetUsers": 5,
        "spawnRate": 1.0,
        "durationSeconds": 60,
        "status": "Finished",
        "stopReason": "duration",
        "finalStats": {"totals": dict(TOTALS)},
        **fields,
    }


def test_recompute_from_what_a_run_recorded() -> None:
    doc = run_document(
        thresholdResults=[result(passed=False).model_dump()],
        baselineChecks=[regression().to_document()],
        verdict="passed",  # what an older loadmgr stored: the regression lived on the side
    )
    verdict, reasons = recompute_verdict(doc)
    assert verdict == Verdict.FAILED and kinds(reasons) == ["threshold", "baseline"]


def test_recompute_an_early_stop_with_the_collectors_note() -> None:
    doc = run_document(stopReason="user", error="Locust was stopped outside loadmgr")
    verdict, reasons = recompute_verdict(doc)
    assert verdict == Verdict.ABORTED and reasons[0].message == "Locust was stopped outside loadmgr"


def test_recompute_keeps_what_happened_and_is_idempotent() -> None:
    breach = broken("p95<300ms", 480.0, requests=300)
    verdict, reasons = decide(stop_reason="threshold", abort_breach=breach)
    doc = run_document(stopReason="threshold", **verdict_changes(verdict, reasons))
    assert recompute_verdict(doc) == (verdict, reasons)
    failed = decide(status="Failed", stop_reason="error", error=DatabaseError("gone"))
    doc = run_document(status="Failed", stopReason="error", **verdict_changes(*failed))
    again = recompute_verdict(doc)
    assert again == failed and again[1][0].detail("source") == "database"
    # An older collector's threshold stop, without the breach recorded: failed all the same.
    first = recompute_verdict(run_document(stopReason="threshold"))
    doc = run_document(stopReason="threshold", **verdict_changes(*first))
    assert first[0] == Verdict.FAILED and recompute_verdict(doc) == first


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.none(), st.integers(), st.text(max_size=4))),
)
FIELDS = st.sampled_from(
    [
        "status",
        "stopReason",
        "error",
        "thresholdResults",
        "baselineChecks",
        "finalStats",
        "verdict",
        "verdictReasons",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, ODD_VALUES))
def test_recompute_survives_any_document(doc: dict[str, Any]) -> None:
    verdict, reasons = recompute_verdict(doc)
    assert verdict is None or isinstance(verdict, Verdict)
    assert all(reason.message for reason in reasons)
    assert recompute_verdict({**doc, **verdict_changes(verdict, reasons)})[0] == verdict


def run(**fields: Any) -> LoadTestRun:
    return LoadTestRun.model_validate(run_document(**fields))


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, ExitCode.OK),
        ({"verdict": "passed"}, ExitCode.OK),
        ({"verdict": "failed"}, ExitCode.THRESHOLD_FAILED),
        ({"verdict": "aborted", "stopReason": "user"}, ExitCode.ABORTED),
        ({"verdict": "error", "status": "Failed"}, ExitCode.CLUSTER),
        (
            {
                "verdict": "error",
                "status": "Failed",
                "verdictReasons": [{"kind": "error", "message": "x", "source": "database"}],
            },
            ExitCode.DATABASE,
        ),
        # Recorded Failed by an older loadmgr, without a verdict: never exit 0.
        ({"status": "Failed", "stopReason": "error"}, ExitCode.CLUSTER),
    ],
)
def test_exit_code_follows_the_stored_verdict(fields: dict[str, Any], code: int) -> None:
    assert run_exit_code(run(**fields)) == code
    assert run_exit_code(run(**fields), interrupted=True) == ExitCode.INTERRUPTED


def test_every_exit_code_is_distinct_and_7_is_aborted() -> None:
    assert ExitCode.ABORTED == 7
    assert len({int(code) for code in ExitCode}) == len(ExitCode)


def test_stored_verdicts_of_other_tools_read_safely() -> None:
    assert run(verdict="PASSED").verdict == Verdict.PASSED
    assert run(verdict="green").verdict is None
    odd = run(verdictReasons=[{"kind": "nope", "message": "x"}, "junk", {"kind": "error"}])
    assert odd.verdictReasons == []


def test_label_and_explanation() -> None:
    verdict, reasons = decide(
        threshold_results=[result(passed=False)], baseline_checks=[regression()]
    )
    assert verdict_label(verdict, reasons) == "failed (p95<500ms, +1)"
    label, lines = explain(run(**verdict_changes(verdict, reasons)).model_dump())
    assert label == "failed (p95<500ms, +1)" and len(lines) == 2
    assert lines[1].startswith("rps is 50.0% worse than the baseline (100.0/s → 50.0/s")
    passed = run(verdict="passed", thresholdResults=[result().model_dump()]).model_dump()
    assert explain(passed) == ("passed", ["every check held (1 threshold)"])
    assert explain(run().model_dump())[1] == [
        "nothing was checked (no threshold, no baseline) and nothing went wrong"
    ]
    assert explain(run(status="Running").model_dump())[1] == [
        "not decided yet: the run is still going"
    ]
    assert verdict_label(None, []) == "-"


def test_a_run_recorded_without_reasons_is_still_explained() -> None:
    """Recorded by an older loadmgr (before db migrate): what it recorded says why."""
    failed = run(
        verdict="failed", thresholdResults=[result(passed=False, actual=812.0).model_dump()]
    )
    assert explain(failed.model_dump())[1] == ["p95<500ms: 812ms (limit < 500ms)"]
    broken = run(status="Failed", stopReason="error", error="swarm refused").model_dump()
    assert explain(broken) == ("-", ["the run could not complete: swarm refused"])
    odd = {
        "status": "Finished",
        "verdict": "failed",
        "thresholdResults": [{"passed": False, "limit": "x"}],
    }
    assert explain(odd)[1] == [": no value (limit < 0)"]


def test_regression_documents_round_trip() -> None:
    infinite = Regression("error_rate", 0.0, 0.2, math.inf, 0.1, True)
    doc = infinite.to_document()
    assert doc["worseBy"] is None  # JSON has no infinity
    back = Regression.from_document(doc)
    assert back is not None and back.worse_by == math.inf and back.regressed
    assert Regression.from_document({"metric": 3}) is None
    assert Regression.from_document({"metric": "p95", "allowed": "x"}) is None


@pytest.mark.parametrize("args", [(), ("runs", "start"), ("runs", "follow"), ("runs", "stop")])
def test_help_says_what_exit_7_is(cli: Any, args: tuple[str, ...]) -> None:
    result = cli(*args, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "7" in text and "abort" in text
