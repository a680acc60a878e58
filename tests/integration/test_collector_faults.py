"""One writer per run, on the server's clock, and nothing that blocks a run's end
(issue 9, item 4 and 5): skewed host clocks, fencing epochs, refused intervals."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import loadmgr.store as store_module
from loadmgr.models import LoadTestRun, MetricSnapshot, RunStatus, Scope
from loadmgr.service.collection import Collector, CollectorSettings, Fenced, QuietObserver, ending
from loadmgr.service.collection.writer import IntervalWriter
from loadmgr.service.runs.lease import is_stale
from loadmgr.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def store(mongo_uri):
    opened = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    opened.ensure_indexes()
    yield opened
    opened.close()


def _skew(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This host's clock `seconds` off (both the date and the epoch loadmgr reads)."""
    real_time = time.time
    real_now = store_module.utcnow
    monkeypatch.setattr(store_module.time, "time", lambda: real_time() + seconds)
    monkeypatch.setattr(store_module, "utcnow", lambda: real_now() + timedelta(seconds=seconds))


def _run(store: Store, beat_age: float) -> LoadTestRun:
    beat = store.server_now() - timedelta(seconds=beat_age)
    run = LoadTestRun(
        loadTestId="t",
        targetUsers=1,
        spawnRate=1,
        durationSeconds=600,
        status=RunStatus.RUNNING,
        heartbeatAt=beat,
        collectorEpoch=1,
        collector={"host": "another-host", "pid": 1, "interval": 5},
    )
    store.runs.insert(run)
    return run


@pytest.mark.parametrize("skew", [-45.0, 600.0])
def test_a_skewed_host_clock_neither_steals_a_live_run_nor_freezes_a_dead_one(
    store, monkeypatch, skew
):
    live = _run(store, beat_age=1)
    dead = _run(store, beat_age=60)
    holder = store.server_now()
    assert store.leases.acquire("remote", live.id, holder, 30)
    _skew(monkeypatch, skew)
    store._clock_offset = None  # this process measures its (now skewed) clock again
    now = store.server_now()
    assert abs((now - datetime.now(timezone.utc)).total_seconds()) < 5, "not the server's time"
    assert not is_stale(live, now)
    assert is_stale(dead, now)
    assert not store.leases.acquire("remote", "thief", now, 30)


def test_a_fenced_writer_writes_nothing_more(store, tmp_path: Path):
    run = _run(store, beat_age=0)
    old = IntervalWriter(store, run, home=tmp_path, interval=1, observer=QuietObserver())
    assert old.heartbeat(None) is False
    claimed = store.runs.claim(run.id, 1, {"heartbeatAt": store.server_now()})
    assert claimed is not None and claimed.collectorEpoch == 2
    assert store.runs.claim(run.id, 1, {}) is None  # a second claimant of epoch 1 loses
    snapshot = MetricSnapshot(loadTestRunId=run.id, timestamp=datetime.now(timezone.utc), seq=1)
    old.keep(snapshot)
    with pytest.raises(Fenced):
        old.heartbeat(None)
    assert store.metrics.count_for_run(run.id) == 0
    assert old.write_final({"status": "Finished"}) is None
    assert store.runs.find_by_id(run.id).status == RunStatus.RUNNING


def test_an_interval_mongodb_refuses_is_set_aside_and_never_blocks(store, tmp_path: Path):
    run = _run(store, beat_age=0)
    writer = IntervalWriter(store, run, home=tmp_path, interval=1, observer=QuietObserver())
    at = datetime.now(timezone.utc)
    good = MetricSnapshot(loadTestRunId=run.id, timestamp=at, seq=1, totalRequests=5)
    # An 8-byte overflow: MongoDB (and BSON) cannot hold it, however often it is retried.
    bad = MetricSnapshot.model_construct(**{**good.model_dump(), "seq": 2, "totalRequests": 10**30})
    later = MetricSnapshot(loadTestRunId=run.id, timestamp=at, seq=3, totalRequests=9)
    for snapshot in (good, bad, later):
        writer.keep(snapshot)
    assert writer.heartbeat(None) is False
    assert [d["seq"] for d in store.metrics.find_for_run(run.id)] == [1, 3]
    assert writer.rejected == 1
    aside = writer.spool.path.with_suffix(".rejected.jsonl")
    assert aside.exists() and "1000000000000000000000000000000" in aside.read_text()
    assert not writer.spool.path.exists()  # the spool no longer holds it: nothing replays it
    finished = writer.write_final({"status": RunStatus.FINISHED.value})
    assert finished is not None and finished.status == RunStatus.FINISHED


def test_an_end_mongodb_refuses_is_stored_without_its_per_request_part(
    store, tmp_path: Path, monkeypatch
):
    """Issue 21, item 3: 2,500 names of 9,000 characters make a 22 MB end; MongoDB refuses
    it. That is not retried (before: two minutes of "retrying", exit 3, the run left
    `Running`): the end is stored at once without the per-request part, saying why."""
    monkeypatch.setattr(ending, "FINALIZE_RETRY_SEC", 5.0)
    run = _run(store, beat_age=0)
    collector = Collector(store, run, cluster=None, settings=CollectorSettings(), home=tmp_path)
    items = [{"method": "GET", "name": f"{i}:" + "x" * 9000, "numRequests": 1} for i in range(2500)]
    changes = {
        "status": RunStatus.FINISHED.value,
        "stopReason": "duration",
        "finalStats": {"totals": {"requests": 2500}, "requestStats": items, "errors": []},
        "error": None,
    }
    started = time.monotonic()
    ended = collector._write_final(changes)
    assert time.monotonic() - started < 4.0  # refused once, written once: no retrying
    assert ended.status == RunStatus.FINISHED
    stored = store.runs.find_by_id(run.id)
    assert stored is not None and stored.status == RunStatus.FINISHED
    assert stored.finalStats["totals"] == {"requests": 2500}
    assert "requestStats" not in stored.finalStats
    assert stored.error.startswith("per-request statistics not stored: MongoDB refused")


def test_after_a_signal_an_outage_holds_the_end_a_few_seconds_only(store, tmp_path: Path):
    """A signal and a MongoDB outage together: the end was retried for two minutes
    (FINALIZE_RETRY_SEC) after Ctrl-C or SIGTERM, so the command did not end within
    seconds (a detached collector took its full two minutes). After a signal the end gets
    SIGNALLED_FINALIZE_SEC; the spool keeps the intervals for `runs follow`."""
    import threading

    from loadmgr.errors import DatabaseError

    run = _run(store, beat_age=0)
    collector = Collector(store, run, cluster=None, settings=CollectorSettings(), home=tmp_path)

    def outage(_changes: object) -> None:
        raise DatabaseError("cannot reach MongoDB (an outage)")

    collector.writer.write_final = outage  # type: ignore[method-assign]
    collector.stop_event.set()  # the signal
    raised: list[BaseException] = []

    def end() -> None:
        try:
            collector._write_final({"status": RunStatus.FINISHED.value})
        except DatabaseError as exc:
            raised.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=end, daemon=True)
    thread.start()
    thread.join(15.0)
    assert not thread.is_alive(), "the end was still retried 15 s after the signal"
    assert raised and time.monotonic() - started < ending.SIGNALLED_FINALIZE_SEC + 3
