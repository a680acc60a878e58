"""One classifier of pymongo's errors: an outage is retried later, a refusal never is.

A property test over every error class pymongo and bson define and every server code the
classifier names; then the writer, which keeps intervals through any outage and sets one
aside only when MongoDB refuses it (issue 21, item 4).
"""

from __future__ import annotations

import inspect
from datetime import datetime, timezone
from pathlib import Path

import bson.errors
import mongomock
import pymongo.errors
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.errors import DatabaseError, DatabaseRefused
from loadmgr.models import LoadTestRun, MetricSnapshot, RunStatus, Scope
from loadmgr.service.collection import QuietObserver
from loadmgr.service.collection.writer import DRAIN_BATCH, DRAIN_BATCHES_PER_BEAT, IntervalWriter
from loadmgr.store import Store
from loadmgr.store.connection import translate_errors
from loadmgr.store.failures import (
    AUTH_CODES,
    DOCUMENT_CODES,
    OUTAGE_CODES,
    Failure,
    classify,
)

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(pymongo.errors, inspect.isclass)
    if issubclass(cls, pymongo.errors.PyMongoError)
]
OPERATION_CLASSES = [c for c in ERROR_CLASSES if issubclass(c, pymongo.errors.OperationFailure)]
# A write that cannot be cured by sending it again, whatever the command.
REFUSALS: list[BaseException] = [
    pymongo.errors.DocumentTooLarge("BSON document too large (17000000 bytes)"),
    bson.errors.InvalidDocument("cannot encode object"),
    bson.errors.InvalidStringData("strings must be UTF-8"),
    OverflowError("MongoDB can only handle up to 8-byte ints"),
    pymongo.errors.WriteError("Document failed validation", 121),
    pymongo.errors.OperationFailure("Resulting document after update is larger than", 17419),
    pymongo.errors.OperationFailure("object to insert too large", 10334),
    # The embedded SecantusDB's answer to a document past 16 MiB: an InternalError, code 1.
    pymongo.errors.OperationFailure(
        "InternalError: DocumentTooLargeError: document (17000512 bytes) is larger than 16777216",
        1,
        {"ok": 0, "code": 1, "codeName": "InternalError"},
    ),
    pymongo.errors.OperationFailure("DocumentTooLargeError", 1, {"codeName": "InternalError"}),
]
OUTAGES: list[BaseException] = [
    pymongo.errors.AutoReconnect("connection closed"),
    pymongo.errors.NetworkTimeout("timed out"),
    pymongo.errors.ServerSelectionTimeoutError("no servers"),
    pymongo.errors.NotPrimaryError("not primary"),
    pymongo.errors.WaitQueueTimeoutError("pool full"),
    pymongo.errors.ExecutionTimeout("operation would exceed time limit", 50),  # client-side
    pymongo.errors.OperationFailure("operation exceeded time limit", 50),
    pymongo.errors.WTimeoutError("waiting for replication timed out", 64),
    pymongo.errors.WriteConcernError("write concern failed", 100),
    pymongo.errors.BulkWriteError(
        {"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "timeout"}]}
    ),
    pymongo.errors.BulkWriteError({"writeErrors": [{"index": 0, "code": 50, "errmsg": "slow"}]}),
    pymongo.errors.OperationFailure("retry me", 999_999, {"errorLabels": ["RetryableWriteError"]}),
    # Another InternalError is no refusal: only its size message makes it one.
    pymongo.errors.OperationFailure("InternalError: lock poisoned", 1),
]


def _make(cls: type[BaseException], code: int | None) -> BaseException:
    """An instance of any pymongo error class, with `code` where the class takes one."""
    if issubclass(cls, pymongo.errors.BulkWriteError):
        return cls({"writeErrors": [{"index": 0, "code": code, "errmsg": "x"}]})
    if issubclass(cls, pymongo.errors.OperationFailure):
        return cls("failed", code, {"code": code, "errmsg": "failed"})
    return cls("failed")


@pytest.mark.parametrize("exc", OUTAGES + REFUSALS, ids=repr)
def test_each_known_error_is_what_a_writer_must_take_it_for(exc: BaseException) -> None:
    expected = Failure.OUTAGE if exc in OUTAGES else Failure.REFUSAL
    assert classify(exc) is expected
    with pytest.raises(DatabaseError) as raised, translate_errors("mongodb://u:secret@h/"):
        raise exc
    assert isinstance(raised.value, DatabaseRefused) is (expected is Failure.REFUSAL)
    assert "secret" not in raised.value.message


@settings(max_examples=400, deadline=None)
@given(
    cls=st.sampled_from(ERROR_CLASSES),
    code=st.one_of(
        st.none(),
        st.sampled_from(sorted(OUTAGE_CODES | DOCUMENT_CODES | AUTH_CODES)),
        st.integers(0, 100_000),
    ),
)
def test_every_error_class_and_code_is_classified_one_way(
    cls: type[BaseException], code: int | None
) -> None:
    try:
        exc = _make(cls, code)
    except TypeError:
        return  # a class pymongo builds itself with other arguments (covered by the tables)
    failure = classify(exc)
    if isinstance(exc, pymongo.errors.DuplicateKeyError):
        assert failure is Failure.DUPLICATE  # a Conflict for the caller, never retried blind
        return
    # An outage is never a refusal: a timeout or a lost connection never sets data aside.
    if issubclass(cls, (pymongo.errors.ConnectionFailure, pymongo.errors.ExecutionTimeout)):
        assert failure is Failure.OUTAGE
    elif issubclass(cls, pymongo.errors.OperationFailure) and code in OUTAGE_CODES:
        assert failure is Failure.OUTAGE
    elif issubclass(cls, pymongo.errors.WriteConcernError):
        assert failure is Failure.OUTAGE
    elif cls in OPERATION_CLASSES and code in DOCUMENT_CODES and code not in OUTAGE_CODES:
        assert failure is Failure.REFUSAL
    # translate_errors agrees with the classifier, for every class and code.
    with pytest.raises(DatabaseError) as raised, translate_errors("mongodb://h/"):
        raise exc
    if failure is Failure.REFUSAL:
        assert isinstance(raised.value, DatabaseRefused)
    elif failure is Failure.OUTAGE:
        assert not isinstance(raised.value, DatabaseRefused)


@given(code=st.sampled_from(sorted(OUTAGE_CODES)), cls=st.sampled_from(OPERATION_CLASSES))
def test_a_timeout_or_outage_code_is_an_outage_in_any_operation_failure(
    cls: type[BaseException], code: int
) -> None:
    try:
        exc = _make(cls, code)
    except TypeError:
        return
    if not isinstance(exc, pymongo.errors.DuplicateKeyError):
        assert classify(exc) is Failure.OUTAGE


# -- the writer ----------------------------------------------------------------------------


class FlakyMetrics:
    """The metrics repository's writes (mongomock has no bulk upsert), failing its next
    writes as told: pymongo's error, through the store's own translation."""

    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.batches: list[int] = []
        self.stored: dict[int, MetricSnapshot] = {}

    def save(self, snapshots: list[MetricSnapshot]) -> None:
        if self.failures:
            with translate_errors("mongodb://h/"):
                raise self.failures.pop(0)
        self.batches.append(len(snapshots))
        self.stored.update((s.seq, s) for s in snapshots)  # idempotent, keyed by seq

    def seqs(self) -> list[int]:
        return sorted(self.stored)


@pytest.fixture
def store() -> Store:
    store = Store(mongomock.MongoClient()["db"], Scope(None, None), "mongodb://x")
    store.ensure_indexes()
    return store


def _writer(store: Store, tmp_path: Path) -> tuple[IntervalWriter, FlakyMetrics]:
    run = LoadTestRun(
        loadTestId="t",
        targetUsers=1,
        spawnRate=1,
        durationSeconds=60,
        status=RunStatus.RUNNING,
        collectorEpoch=1,
    )
    store.runs.insert(run)
    writer = IntervalWriter(store, run, home=tmp_path, interval=1, observer=QuietObserver())
    flaky = FlakyMetrics()
    store.metrics = flaky  # type: ignore[assignment]
    return writer, flaky


def _snapshot(run_id: str, seq: int) -> MetricSnapshot:
    return MetricSnapshot(
        loadTestRunId=run_id, timestamp=datetime.now(timezone.utc), seq=seq, totalRequests=seq
    )


@pytest.mark.parametrize("outage", OUTAGES, ids=repr)
def test_an_outage_sets_nothing_aside_and_the_backlog_drains_in_batches(
    store: Store, tmp_path: Path, outage: BaseException
) -> None:
    writer, flaky = _writer(store, tmp_path)
    backlog = DRAIN_BATCH * DRAIN_BATCHES_PER_BEAT + 5
    for seq in range(1, backlog + 1):
        writer.keep(_snapshot(writer.run.id, seq))
        flaky.failures = [outage]
        assert writer.heartbeat(None) is False  # the outage: kept, nothing set aside
    assert writer.rejected == 0 and len(writer.pending) == backlog
    writer.heartbeat(None)  # MongoDB is back: a bounded part drains while the run goes on
    assert flaky.batches == [DRAIN_BATCH] * DRAIN_BATCHES_PER_BEAT
    assert writer.spool.path.exists() and len(writer.pending) == 5
    writer.heartbeat(None)
    assert flaky.seqs() == list(range(1, backlog + 1)) and not writer.pending
    assert not writer.spool.path.exists() and writer.rejected == 0


def test_a_refusal_sets_only_the_refused_interval_aside(store: Store, tmp_path: Path) -> None:
    writer, flaky = _writer(store, tmp_path)
    for seq in (1, 2, 3):
        writer.keep(_snapshot(writer.run.id, seq))
    # The batch is refused, then each is tried alone: the second alone is refused again.
    flaky.failures = [REFUSALS[0]]
    original = flaky.save

    def save(snapshots: list[MetricSnapshot]) -> None:
        if len(snapshots) == 1 and snapshots[0].seq == 2:
            with translate_errors("mongodb://h/"):
                raise pymongo.errors.DocumentTooLarge("too large")
        original(snapshots)

    flaky.save = save  # type: ignore[method-assign]
    writer.heartbeat(None)
    assert flaky.seqs() == [1, 3]
    assert writer.rejected == 1 and not writer.pending
