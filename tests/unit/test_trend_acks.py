"""Acknowledged changes: `runs start --check-trend` judges a run against the regime from the
acknowledged run on; which ack applies to which runs; reasons cleaned and bounded."""

from __future__ import annotations

from datetime import timedelta

import mongomock
import pytest

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, Scope, Verdict
from loadmgr.service.analysis.trend_acks import (
    MAX_ACKS,
    REASON_MAX,
    Ack,
    acknowledged_cut,
    add_ack,
    clean_reason,
)
from loadmgr.service.analysis.trend_gate import apply_trend
from loadmgr.service.analysis.trends import TrendOptions, TrendRun
from loadmgr.store import Store
from tests.metrics_data import START, make_test, store_all
from tests.trend_data import nightly_runs, stepped


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def test_check_trend_judges_the_run_against_the_acknowledged_regime(store: Store) -> None:
    test = make_test("checkout")
    runs = nightly_runs(test, stepped(40, 30, seed=3))
    store_all(store.db, test, runs)
    options = TrendOptions(last=40).to_document()
    assert apply_trend(store, runs[-1], options).verdict == Verdict.FAILED
    add_ack(store, test.id, runs[30].id, "bigger payloads, expected", "alice")
    judged = apply_trend(store, runs[-1], options)
    assert judged.verdict == Verdict.PASSED, judged.trendChecks
    assert {c["acknowledgedRunId"] for c in judged.trendChecks or []} == {runs[30].id}
    # A run judged from before the ack: the ack is later, so it does not apply.
    assert "acknowledgedRunId" not in (apply_trend(store, runs[29], options).trendChecks or [{}])[0]


def _runs(count: int) -> list[TrendRun]:
    return [TrendRun(f"run-{i:02d}", "", START + timedelta(days=i), (), {}) for i in range(count)]


def _acked(*acks: tuple[str, float]) -> LoadTest:
    return make_test(
        trendAcks=[
            Ack(run_id, START + timedelta(days=day), "why", "who", START).to_document()
            for run_id, day in acks
        ]
    )


@pytest.mark.parametrize(
    ("acks", "cut"),
    [
        ((), None),
        ((("run-05", 5),), 5),
        ((("run-05", 5), ("run-08", 8)), 8),  # the newest ack in the window
        ((("run-08", 8), ("run-05", 5)), 8),  # whatever order they were stored in
        ((("gone", -3),), None),  # before the window: every run is of its regime
        ((("run-00", 0),), None),  # the oldest run: the same
        ((("gone", 4.5),), 5),  # not among the runs (deleted, aborted): by its date
        ((("later", 12),), None),  # after the newest run: not yet
        ((("run-09", 9),), 9),  # the newest run itself: judged alone, never failed
    ],
)
def test_which_ack_applies(acks: tuple[tuple[str, float], ...], cut: int | None) -> None:
    found = acknowledged_cut(_acked(*acks), _runs(10))
    assert (found[0] if found else None) == cut


def test_an_unreadable_stored_ack_is_left_out() -> None:
    test = make_test(trendAcks=[{"runId": 5}, {"reason": "x"}, {"runId": "run-03"}])
    assert acknowledged_cut(test, _runs(10)) == (3, Ack("run-03", None, "", "", None))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  new TLS   terminator ", "new TLS terminator"),
        ("line one\nline two\r\n", "line one line two"),
        ("\x1b[31mred\x1b[0m", "[31mred [0m"),
        ("a\u2028b", "a b"),
    ],
)
def test_reasons_are_cleaned(given: str, stored: str) -> None:
    assert clean_reason(given) == stored


@pytest.mark.parametrize("given", [None, "", " \n\t", "\x00\x07", "x" * (REASON_MAX + 1)])
def test_reasons_refused(given: str | None) -> None:
    with pytest.raises(ValidationFailed):
        clean_reason(given)


def test_acks_are_bounded(store: Store) -> None:
    test = make_test("checkout")
    runs = nightly_runs(test, stepped(12, 6, seed=1))
    full = [Ack(f"old-{i}", START, "r", "u", START).to_document() for i in range(MAX_ACKS)]
    store_all(store.db, test.model_copy(update={"trendAcks": full}), runs)
    with pytest.raises(ValidationFailed, match=f"has {MAX_ACKS} acknowledged changes"):
        add_ack(store, test.id, runs[6].id, "expected", "alice")
    assert len(store.db.load_tests.find_one({"id": test.id})["trendAcks"]) == MAX_ACKS


def test_two_acks_at_once_are_both_kept(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    test = make_test("checkout")
    runs = nightly_runs(test, stepped(12, 6, seed=1))
    store_all(store.db, test, runs)
    update = store.tests.update
    raced: list[str] = []

    def racing(test_id: str, version: int, changes: dict[str, object]) -> LoadTest | None:
        if not raced:  # someone else's ack lands between our read and our write
            raced.append("bob")
            add_ack(store, test.id, runs[3].id, "bob's", "bob")
        return update(test_id, version, changes)

    monkeypatch.setattr(store.tests, "update", racing)
    add_ack(store, test.id, runs[6].id, "alice's", "alice")
    stored = store.db.load_tests.find_one({"id": test.id})["trendAcks"]
    assert [(a["runId"], a["by"]) for a in stored] == [(runs[3].id, "bob"), (runs[6].id, "alice")]
