"""Acknowledged changes (`tests trend TEST --ack RUN --reason …`): a regime a team expects.

An ack is stored in the test's `trendAcks` (`{runId, runCreatedAt, reason, by, at}`). The
trend gate (`--fail-on-regression`, `runs start --check-trend`) then judges the newest run
against the runs from the newest acknowledged run on (trends.py, `Trend.judged`): the step
the team expected is no longer in what is searched, a new step after it still is. Without
acks, the gate would fail until the step left the `--last` window. docs/trends.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.models import LoadTest, RunStatus, Verdict
from loadmgr.models.documents import as_utc
from loadmgr.models.documents.base import utcnow

if TYPE_CHECKING:
    from loadmgr.service.analysis.trends import TrendRun
    from loadmgr.store import Store

# A test keeps at most this many acks: each is a regime someone explained, not a log.
MAX_ACKS = 100
REASON_MAX = 500
_ATTEMPTS = 5
# A control character (a newline, an escape) never reaches a stored reason: it is shown
# in one-line tables and stderr notices.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class Ack:
    """The regime starting at run `run_id` is expected: who said so, when, and why."""

    run_id: str
    run_created_at: datetime | None
    reason: str
    by: str
    at: datetime | None

    def to_document(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "runCreatedAt": self.run_created_at,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
        }

    @classmethod
    def from_document(cls, doc: Any) -> Ack | None:
        """A stored ack back; None when it is not one (any program may write the test)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("runId"), str):
            return None

        def date(key: str) -> datetime | None:
            value = doc.get(key)
            return as_utc(value) if isinstance(value, datetime) else None

        reason, by = (v if isinstance(v := doc.get(k), str) else "" for k in ("reason", "by"))
        return cls(doc["runId"], date("runCreatedAt"), reason, by, date("at"))


def clean_reason(text: str | None) -> str:
    """The reason as stored: control characters and runs of blanks made one space."""
    cleaned = " ".join(_UNPRINTABLE.sub(" ", text or "").split())
    if not cleaned:
        raise ValidationFailed(
            "--ack needs a --reason: why the change is expected (e.g. 'new TLS termination')"
        )
    if len(cleaned) > REASON_MAX:
        raise ValidationFailed(f"--reason is longer than {REASON_MAX} characters")
    return cleaned


def acks_of(test: LoadTest) -> list[Ack]:
    """The test's acks, oldest first; what is not one is left out."""
    found = (Ack.from_document(doc) for doc in test.trendAcks)
    return [ack for ack in found if ack is not None]


def acknowledged_cut(test: LoadTest, runs: Sequence[TrendRun]) -> tuple[int, Ack] | None:
    """Where the regime the gate judges starts in `runs` (oldest first), and its ack.

    The newest ack at or before the newest run; its run found by id, or (when the run is
    not among them: out of the window) by date. None when no ack falls inside the runs."""
    best: tuple[int, Ack] | None = None
    for ack in acks_of(test):
        position = next((i for i, run in enumerate(runs) if run.id == ack.run_id), None)
        if position is None and ack.run_created_at is not None:
            position = sum(
                run.createdAt is not None and run.createdAt < ack.run_created_at for run in runs
            )
        if position is None or position >= len(runs) or position == 0:
            continue  # after the newest run, or every run is of the acknowledged regime
        if best is None or position > best[0]:
            best = (position, ack)
    return best


def list_acks(store: Store, test_ref: str) -> list[dict[str, Any]]:
    """`tests trend TEST --acks`: the test's acks, oldest first."""
    from loadmgr.service.definitions.tests import get_test

    return [ack.to_document() for ack in acks_of(get_test(store, test_ref))]


def add_ack(store: Store, test_ref: str, run_ref: str, reason: str | None, user: str) -> Ack:
    """Record that the regime starting at a finished run of the test is expected.

    ValidationFailed (2): no reason, a run of another test or not finished, already
    acknowledged, too many acks; NotFound (4): the test or the run."""
    from loadmgr.service.definitions.tests import get_test
    from loadmgr.service.runs.lookup import get_run

    cleaned = clean_reason(reason)  # before anything is read
    test = get_test(store, test_ref)
    run = get_run(store, run_ref)
    if run.loadTestId != test.id:
        raise ValidationFailed(
            f"run {run.id} belongs to another test ({run.loadTestId}), not {test.name!r}"
        )
    if run.status != RunStatus.FINISHED or not run.finalStats or run.verdict == Verdict.ABORTED:
        raise ValidationFailed(
            f"run {run.id} is not a finished run with final stats: it is not in the trend"
        )
    ack = Ack(run.id, as_utc(run.createdAt) if run.createdAt else None, cleaned, user, utcnow())

    def added(acks: list[Ack]) -> list[Ack]:
        if any(old.run_id == run.id for old in acks):
            raise ValidationFailed(
                f"run {run.id} is already acknowledged",
                hint=f"remove it first: loadmgr tests trend {test.name} --unack {run.id}",
            )
        if len(acks) >= MAX_ACKS:
            raise ValidationFailed(
                f"test {test.name!r} has {MAX_ACKS} acknowledged changes, the most it keeps",
                hint="remove old ones with --unack RUN",
            )
        return [*acks, ack]

    _change_acks(store, test, user, added)
    return ack


def remove_ack(store: Store, test_ref: str, run_ref: str, user: str) -> Ack:
    """Forget the ack of a run (its id or a unique prefix); NotFound (4) when none."""
    from loadmgr.service.definitions.tests import get_test

    test = get_test(store, test_ref)
    wanted = run_ref.strip()
    removed: list[Ack] = []

    def without(acks: list[Ack]) -> list[Ack]:
        matching = [ack for ack in acks if ack.run_id == wanted]
        if not matching and len(wanted) >= 8:
            matching = [ack for ack in acks if ack.run_id.startswith(wanted)]
        if len(matching) != 1:
            raise NotFound(
                f"no acknowledged change at run {run_ref!r} for test {test.name!r}"
                if not matching
                else f"run prefix {run_ref!r} names several acknowledged runs",
                hint=f"list them: loadmgr tests trend {test.name} --acks",
            )
        removed[:] = matching
        return [ack for ack in acks if ack is not matching[0]]

    _change_acks(store, test, user, without)
    return removed[0]


def _change_acks(
    store: Store, test: LoadTest, user: str, change: Callable[[list[Ack]], list[Ack]]
) -> LoadTest:
    """Store `change(acks)` on the version of the test it was computed from, re-reading
    and recomputing when someone wrote the test meanwhile, so no ack is lost."""
    from loadmgr.service.definitions.tests import check_not_foreign

    check_not_foreign(test, "updated")
    for _ in range(_ATTEMPTS):
        # What is not an ack (written by another program) is kept as it was.
        kept = [doc for doc in test.trendAcks if Ack.from_document(doc) is None]
        acks = [ack.to_document() for ack in change(acks_of(test))]
        changes = {"trendAcks": [*kept, *acks], "updatedAt": utcnow(), "updatedBy": user}
        stored = store.tests.update(test.id, test.version, changes)
        if stored is not None:
            return stored
        fresh = store.tests.find_by_id(test.id)
        if fresh is None:
            raise NotFound(f"test {test.name!r} was deleted meanwhile")
        test = fresh
    raise Conflict(f"test {test.name!r} keeps changing; acks not changed, try again")
