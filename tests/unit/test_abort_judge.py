"""--abort-on-fail for every threshold kind: the judge fed interval documents."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmgr.service.judging.abort_judge import (
    BREACHED,
    NOT_JUDGED,
    OK,
    AbortJudge,
    JudgeSettings,
    ThresholdState,
)
from loadmgr.service.judging.verdicts import Breach
from loadmgr.service.judging.window_stats import (
    hist_percentile,
    merge_hists,
    parse_hist,
    wilson_bounds,
)


def hist_text(hist: dict[int, int]) -> str:
    return ",".join(f"{ms:g}:{count}" for ms, count in sorted(hist.items()))


def interval(
    requests: int = 200,
    failures: int = 0,
    *,
    seconds: float = 5.0,
    hist: dict[int, int] | None = None,
    items: list[dict[str, Any]] | None = None,
    **values: Any,
) -> dict[str, Any]:
    """An interval document as the collector stores it (the fields the judge reads)."""
    doc: dict[str, Any] = {
        "intervalRequests": requests,
        "intervalFailures": failures,
        "intervalSec": seconds,
        "totalRPS": requests / seconds,
        "p50ResponseMs": 40.0,
        "p95ResponseMs": 90.0,
        "p99ResponseMs": 150.0,
        "avgResponseMs": 45.0,
        "maxResponseMs": 300.0,
        "minResponseMs": 2.0,
        "requestStats": items or [],
        **values,
    }
    if hist is not None:
        doc["hist"] = hist_text(hist)
    return doc


def request_item(method: str, name: str, requests: int, failures: int = 0, **values: Any) -> Any:
    return {
        "method": method,
        "name": name,
        "intervalRequests": requests,
        "intervalFailures": failures,
        "requestsPerSec": requests / 5.0,
        "p95ResponseMs": 90.0,
        "avgResponseTimeMs": 45.0,
        "maxResponseTimeMs": 300.0,
        "minResponseTimeMs": 2.0,
        **values,
    }


def state_of(judge: AbortJudge, expression: str) -> ThresholdState:
    return next(s for s in judge.states() if s.expression == expression)


# -- error rate ----------------------------------------------------------------------------


def test_ten_percent_errors_break_error_rate_below_1_percent_at_once() -> None:
    judge = AbortJudge(["error_rate<1%"])
    breach = judge.observe(interval(200, 20))
    assert isinstance(breach, Breach)
    assert (breach.expression, breach.actual, breach.passed) == ("error_rate<1%", 0.1, False)
    assert (breach.windowIntervals, breach.windowRequests) == (1, 200)
    assert judge.states() == [ThresholdState("error_rate<1%", BREACHED, 0.1)]
    assert judge.states()[0].text() == "error_rate<1% BREACHED (10.00%)"


def test_too_few_requests_are_not_judged() -> None:
    judge = AbortJudge(["error_rate<1%"], min_requests=100)
    assert judge.observe(interval(40, 40)) is None
    assert judge.states()[0].state == NOT_JUDGED
    assert judge.states()[0].text() == "error_rate<1% not judged (100.00%)"
    # The window gathers enough: 120 requests, 40 of them failed.
    assert judge.observe(interval(80, 0)) is not None


def test_chance_failures_at_a_small_count_do_not_stop_a_healthy_run() -> None:
    """2 failures in 100 is 2 % by the numbers, but says little of a 0.5 % error rate."""
    healthy = AbortJudge(["error_rate<1%"], min_requests=100)
    assert healthy.observe(interval(1000, 2)) is None
    assert healthy.states()[0] == ThresholdState("error_rate<1%", OK, 0.002)
    judge = AbortJudge(["error_rate<1%"], min_requests=100)
    assert judge.observe(interval(100, 2)) is None
    # Over the limit by the numbers, not significantly: not judged yet (never "ok").
    assert judge.states()[0] == ThresholdState("error_rate<1%", NOT_JUDGED, 0.02)
    # Without the significance test, the same numbers break it.
    plain = AbortJudge(["error_rate<1%"], min_requests=100, confidence=None)
    assert plain.observe(interval(100, 2)) is not None


def test_the_window_slides_so_a_recovered_rate_is_ok_again() -> None:
    judge = AbortJudge(["error_rate<5%"], window_intervals=2, min_requests=10)
    assert judge.observe(interval(200, 100)) is not None
    judge.observe(interval(200, 0))
    assert judge.states()[0].state == BREACHED  # 100 of 400: still broken
    assert judge.observe(interval(200, 0)) is None
    assert judge.states()[0] == ThresholdState("error_rate<5%", OK, 0.0)


def test_a_lower_bound_on_errors_is_judged_the_other_way() -> None:
    judge = AbortJudge(["error_rate>=50%"], min_requests=10)
    assert judge.observe(interval(200, 20)) is not None
    assert AbortJudge(["error_rate>=50%"], min_requests=10).observe(interval(200, 120)) is None


# -- percentiles and means -----------------------------------------------------------------


def test_percentiles_from_merged_histograms() -> None:
    judge = AbortJudge(["p95<300ms", "p50<=50ms"], min_requests=100)
    # 90 % at 20 ms, 10 % at 480 ms: p95 is 480, and 10 % over the limit is significant.
    assert judge.observe(interval(200, hist={20: 180, 480: 20})) is not None
    assert state_of(judge, "p95<300ms") == ThresholdState("p95<300ms", BREACHED, 480.0)
    assert state_of(judge, "p50<=50ms") == ThresholdState("p50<=50ms", OK, 20.0)
    # Histograms are exact: the stored interval p95 (90) is not what is judged.
    assert judge.states()[0].text() == "p95<300ms BREACHED (480ms)"


def test_a_percentile_barely_over_is_not_significant() -> None:
    # 6 of 100 over the limit: p95 reads over it, yet 5 % may well be the truth.
    judge = AbortJudge(["p95<300ms"], min_requests=100)
    assert judge.observe(interval(100, hist={20: 94, 400: 6})) is None
    assert judge.states()[0] == ThresholdState("p95<300ms", NOT_JUDGED, 400.0)


def test_percentiles_without_histograms_are_weighted_by_requests() -> None:
    judge = AbortJudge(["p95<100ms"], window_intervals=2, min_requests=100)
    assert judge.observe(interval(100, p95ResponseMs=80.0)) is None
    # (80·100 + 200·300) / 400 = 170
    breach = judge.observe(interval(300, p95ResponseMs=200.0))
    assert breach is not None and breach.actual == 170.0 and breach.windowRequests == 400


def test_a_window_with_one_interval_without_histogram_falls_back_to_values() -> None:
    judge = AbortJudge(["p95<100ms"], window_intervals=2, min_requests=10)
    judge.observe(interval(100, hist={20: 100}, p95ResponseMs=20.0))
    judge.observe(interval(100, p95ResponseMs=40.0))
    assert judge.states()[0] == ThresholdState("p95<100ms", OK, 30.0)


def test_p90_needs_histograms() -> None:
    judge = AbortJudge(["p90<100ms"], min_requests=10)
    judge.observe(interval(200))
    assert judge.states()[0].state == NOT_JUDGED
    judge = AbortJudge(["p90<100ms"], min_requests=10)
    assert judge.observe(interval(200, hist={10: 100, 500: 100})) is not None


def test_average_latency() -> None:
    judge = AbortJudge(["avg<40ms"], min_requests=10)
    assert judge.observe(interval(200, avgResponseMs=45.0)) is not None
    assert AbortJudge(["avg<50ms"], min_requests=10).observe(interval(200)) is None


# -- max, min, rps -------------------------------------------------------------------------


def test_max_below_a_limit_breaks_at_once_without_a_minimum() -> None:
    judge = AbortJudge(["max<250ms"], min_requests=1000)
    breach = judge.observe(interval(3, maxResponseMs=300.0))
    assert breach is not None and breach.actual == 300.0 and breach.windowIntervals is None
    # A run's maximum never comes down: broken for the rest of the run.
    judge.observe(interval(3, maxResponseMs=10.0))
    assert judge.states()[0].state == BREACHED


def test_a_histogram_shows_the_max_too() -> None:
    judge = AbortJudge(["max<250ms"])
    assert judge.observe(interval(3, hist={10: 2, 900: 1}, maxResponseMs=None)) is not None


def test_min_above_a_limit_breaks_at_once_and_other_directions_never_do() -> None:
    assert AbortJudge(["min>5ms"]).observe(interval(10, minResponseMs=2.0)) is not None
    judge = AbortJudge(["max>1s", "min<1ms"])
    assert judge.observe(interval(10)) is None
    assert [s.state for s in judge.states()] == [NOT_JUDGED, NOT_JUDGED]
    judge.observe(interval(10, maxResponseMs=2000.0, minResponseMs=0.5))
    assert [s.state for s in judge.states()] == [OK, OK]


def test_rps_only_after_spawning_and_a_full_window() -> None:
    judge = AbortJudge(["rps>=100"], window_intervals=2)
    assert judge.observe(interval(100)) is None  # 20/s while spawning: not judged
    assert judge.states()[0] == ThresholdState("rps>=100", NOT_JUDGED, 20.0)
    judge.spawn_complete = True
    assert judge.observe(interval(100)) is None  # may hold the end of the ramp-up
    assert judge.observe(interval(100)) is None  # one of two
    breach = judge.observe(interval(100))
    assert breach is not None and breach.actual == 20.0 and breach.windowIntervals == 2


def test_rps_when_spawning_was_complete_from_the_start() -> None:
    judge = AbortJudge(["rps>=10"], window_intervals=1, spawn_complete=True)
    assert judge.observe(interval(100)) is None
    assert judge.states()[0] == ThresholdState("rps>=10", OK, 20.0)
    judge = AbortJudge(["rps<10"], window_intervals=1, spawn_complete=True)
    # Without the interval's length, the rate Locust reported is what is judged.
    assert judge.observe(interval(100, intervalSec=None, totalRPS=25.0)) is not None


# -- scoped, several, settings -------------------------------------------------------------


def test_a_scoped_threshold_reads_its_request() -> None:
    judge = AbortJudge(["GET /slow:p95<100ms", "/fast:error_rate<1%"], min_requests=10)
    items = [
        request_item("GET", "/slow", 100, p95ResponseMs=400.0),
        request_item("GET", "/fast", 100, failures=0),
    ]
    breach = judge.observe(interval(200, items=items))
    assert breach is not None and breach.expression == "GET /slow:p95<100ms"
    assert breach.scope == "GET /slow"
    assert state_of(judge, "/fast:error_rate<1%").state == OK
    # A request not seen (yet) is not judged.
    other = AbortJudge(["GET /none:p95<100ms"], min_requests=0)
    other.observe(interval(200, items=items))
    assert other.states()[0].state == NOT_JUDGED


def test_the_first_breach_in_the_given_order_is_returned() -> None:
    judge = AbortJudge(["p99<1s", "max<100ms", "error_rate<1%"], min_requests=10)
    breach = judge.observe(interval(200, 100))
    assert breach is not None and breach.expression == "max<100ms"
    assert [s.state for s in judge.states()] == [OK, BREACHED, BREACHED]


def test_before_any_interval_nothing_is_judged() -> None:
    judge = AbortJudge(["p95<1s", "rps>1"])
    assert [s.state for s in judge.states()] == [NOT_JUDGED, NOT_JUDGED]
    assert judge.states()[0].text() == "p95<1s not judged"


def test_odd_documents_are_not_judged_rather_than_crash() -> None:
    judge = AbortJudge(["p95<1s", "error_rate<1%", "max<1s", "GET /x:p95<1s", "rps>1"])
    judge.spawn_complete = True
    for doc in ({}, {"intervalRequests": "many", "hist": "1:x"}, {"requestStats": "junk"}):
        assert judge.observe(doc) is None
    assert {s.state for s in judge.states()} == {NOT_JUDGED}


def test_settings_round_trip_and_validation() -> None:
    settings = JudgeSettings(window_intervals=4, min_requests=50, confidence=None)
    assert JudgeSettings.from_document(settings.to_document()) == settings
    assert JudgeSettings.from_document(None) == JudgeSettings()
    assert JudgeSettings.from_document({"abortWindowIntervals": "x"}) == JudgeSettings()
    judge = AbortJudge.from_settings(["p95<1s"], settings)
    assert judge.settings == settings
    for bad in ({"window_intervals": 0}, {"min_requests": -1}, {"confidence": 1.0}):
        with pytest.raises(ValueError):
            JudgeSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AbortJudge(["p42<1s"])


# -- the arithmetic ------------------------------------------------------------------------

HISTS = st.dictionaries(
    st.integers(min_value=0, max_value=20_000),
    st.integers(min_value=1, max_value=500),
    min_size=1,
    max_size=40,
)


@given(HISTS)
def test_hist_text_round_trips(hist: dict[int, int]) -> None:
    assert parse_hist(hist_text(hist)) == hist


@pytest.mark.parametrize("text", ["1:2,x", "1;2", "a:1", "1:-3", "nan:1", 5])
def test_malformed_histograms_are_none(text: object) -> None:
    assert parse_hist(text) is None


@given(HISTS, st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_hist_percentile_is_locusts(hist: dict[int, int], q: float) -> None:
    """Locust's rule: the smallest recorded value with at most int(n·q) requests below it…
    scanned from the top: the first value v where count(< v) <= int(n·q)."""
    n = sum(hist.values())
    value = hist_percentile(hist, q)
    assert value in hist
    below = sum(c for v, c in hist.items() if v < value)
    assert below <= int(n * q)
    higher = [v for v in hist if v > value]
    if higher:
        nxt = min(higher)
        assert sum(c for v, c in hist.items() if v < nxt) > int(n * q)


@given(st.lists(HISTS, min_size=1, max_size=4))
def test_merging_adds_counts(hists: list[dict[int, int]]) -> None:
    merged = merge_hists(hists)
    assert sum(merged.values()) == sum(sum(h.values()) for h in hists)


@given(
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=10_000),
    st.floats(min_value=0, max_value=3),
)
def test_wilson_bounds_hold_the_proportion(successes: int, trials: int, z: float) -> None:
    successes = min(successes, trials)
    low, high = wilson_bounds(successes, trials, z)
    p = successes / trials
    assert 0 <= low <= p + 1e-12 and p - 1e-12 <= high <= 1


@given(
    requests=st.integers(min_value=0, max_value=5_000),
    failures=st.integers(min_value=0, max_value=5_000),
)
def test_error_rate_breaches_only_when_the_rate_is_over(requests: int, failures: int) -> None:
    failures = min(failures, requests)
    judge = AbortJudge(["error_rate<1%"], min_requests=100)
    breach = judge.observe(interval(requests, failures))
    if breach is not None:
        assert requests >= 100 and failures / requests >= 0.01
    if failures == requests and requests >= 100:
        assert breach is not None
