"""The `load_test_runs` collection."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from loadmgr.models import LoadTestRun, RunStatus
from loadmgr.store.base import (
    NO_OBJECT_ID,
    IndexSpec,
    Repository,
    mapped_errors,
    scope_created,
    stored,
)
from loadmgr.store.foreign import NOT_GO_WRITTEN
from loadmgr.store.upkeep import newest, residual
from loadmgr.store.upkeep.guarded import MISSING, condition_of, holds, set_if

ACTIVE_STATUSES = [RunStatus.PENDING.value, RunStatus.RUNNING.value, RunStatus.STOPPING.value]
# A run read whole leaves out its steady samples (up to MAX_SAMPLES_BYTES, read only by a
# comparison: `samples_of`), so showing, listing or updating a run never carries them.
WHOLE_RUN = {**NO_OBJECT_ID, "samples": False}
# A test's history is read newest first in batches of at most this many runs.
HISTORY_BATCH = 500


class RunRepository(Repository):
    """Runs of tests; each changes status only forward, checked in the update filter.
    Every write goes through `owned()`: the Go service's runs are never changed."""

    OWN = NOT_GO_WRITTEN

    # The Go control plane's names for the same keys (see LoadTestRepository.INDEXES).
    INDEXES: list[IndexSpec] = [
        IndexSpec([("id", 1)], "id_unique_idx", unique=True),
        IndexSpec([("loadTestId", 1), ("createdAt", -1)], "loadtest_created_idx"),
        IndexSpec([("createdAt", -1)], "created_at_idx"),
        IndexSpec([("status", 1)], "status_idx"),
        # `runs list --branch/--commit` (a commit prefix: an anchored range of the index),
        # and a test's history on one branch (`tests trend --branch`, `--against-branch`).
        IndexSpec([("ci.branch", 1), ("createdAt", -1)], "ci_branch_created_idx"),
        IndexSpec([("ci.commit", 1)], "ci_commit_idx"),
        IndexSpec(
            [("loadTestId", 1), ("ci.branch", 1), ("createdAt", -1)], "loadtest_branch_created_idx"
        ),
        # A list's order, newest first and then by id (`find_newest`): served whole by
        # the index, so listing 10,000 of them never sorts them all (docs/benchmarks.md).
        IndexSpec([("createdAt", -1), ("id", 1)], "created_id_idx"),
        *scope_created(),
    ]

    @mapped_errors
    def insert(self, run: LoadTestRun) -> LoadTestRun:
        document = run.model_dump(mode="python")
        self.check_in_scope(document)
        self.collection.insert_one(document)
        return run

    @mapped_errors
    def find_by_id(self, run_id: str) -> LoadTestRun | None:
        return self.find_one_as(LoadTestRun, {"id": run_id}, WHOLE_RUN)

    @mapped_errors
    def samples_of(self, run_id: str) -> Any:
        """The run's stored steady samples as stored (None: none, or no such run)."""
        fields = {"_id": False, "samples": True}
        docs = self.collection.find({"id": run_id}, self.with_scope_fields(fields))
        doc = next(self.scope_checked(docs, fields), None)
        return doc.get("samples") if doc else None

    @mapped_errors
    def set_samples(self, run_id: str, samples: dict[str, Any]) -> None:
        """Store an ended run's steady samples (never a live run's)."""
        query = self.owned({"id": run_id, "status": {"$nin": ACTIVE_STATUSES}})
        self.collection.update_one(query, {"$set": {"samples": samples}})

    @mapped_errors
    def find_many(
        self,
        *,
        test_id: str | None = None,
        statuses: list[str] | None = None,
        verdicts: list[str | None] | None = None,
        since: datetime | None = None,
        limit: int = 50,
        test_ids: list[str] | None = None,
        branch: str | None = None,
        commit: str | None = None,
    ) -> list[dict[str, Any]]:
        """Raw documents, newest first, with the final totals but without the bulky
        per-request final stats.

        `verdicts`: None in the list matches runs without a verdict (null or absent).
        `test_ids`: only runs of these tests (an empty list: none).
        `branch`: only runs of that `ci.branch`; `commit`: whose `ci.commit` starts so
        (lowercase hex, checked by the caller: it goes into an anchored pattern).
        """
        query: dict[str, Any] = {}
        either: list[dict[str, Any]] = []
        if test_id:
            # The Go service's runs name their test under `loadtestid`.
            either.append({"$or": [{"loadTestId": test_id}, {"loadtestid": test_id}]})
        if test_ids is not None:
            ids = list(test_ids)
            either.append({"$or": [{"loadTestId": {"$in": ids}}, {"loadtestid": {"$in": ids}}]})
        if statuses:
            query["status"] = {"$in": list(statuses)}
        if verdicts:
            query["verdict"] = {"$in": list(verdicts)}
        if branch is not None:
            query["ci.branch"] = branch
        if commit is not None:
            query["ci.commit"] = {"$regex": f"^{re.escape(commit)}"}
        if since:
            # The Go service's runs have their date under `createdat`, in milliseconds.
            millis = int(since.timestamp() * 1000)
            either.append(
                {"$or": [{"createdAt": {"$gte": since}}, {"createdat": {"$gte": millis}}]}
            )
        if either:
            query["$and"] = either
        bulky = {
            "finalStats.requestStats": False,
            "finalStats.errors": False,
            "locustfileContent": False,
            "locustfileBundle": False,
            "samples": False,
        }
        return self.find_newest(LoadTestRun, query, {**NO_OBJECT_ID, **bulky}, limit)

    @mapped_errors
    def history(
        self,
        test_id: str,
        fields: list[str],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 30,
        branch: str | None = None,
    ) -> list[dict[str, Any]]:
        """The test's finished runs with final stats, newest first, `fields` only (raw).

        Asked by the test (and `branch`, `since`, `until`) alone, the fields of the
        `(loadTestId[, ci.branch], createdAt)` index: SecantusDB plans an index only when
        it holds every field of the filter, so with `status` and `finalStats` beside them
        it scanned every run of every test. Read in `createdAt` windows newest first
        (`newest.in_windows`: SecantusDB builds a whole range before its limit); whether
        a run finished with final stats, and the scope, are checked here, and the read
        stops at the `limit`-th run that passes (docs/storage.md, "Indexes").
        """
        equal: dict[str, Any] = {"loadTestId": test_id}
        order = [("loadTestId", 1), ("createdAt", -1)]
        if branch is not None:
            equal["ci.branch"] = branch
            order = [("loadTestId", 1), ("ci.branch", 1), ("createdAt", -1)]
        asked: dict[str, Any] = dict.fromkeys(fields, True)
        checked = residual.with_finished_marks(asked)
        batch = min(limit or HISTORY_BATCH, HISTORY_BATCH)
        docs = newest.in_windows(
            self.collection, equal, order, self.with_scope_fields(checked),
            since=since, until=until, batch=batch,
        )
        try:
            added = residual.finished_marks(asked)
            finished = (
                residual.without(doc, added)
                for doc in self.scope_checked(docs, checked)
                if residual.finished_with_stats(doc)
            )
            return self.screen_all(LoadTestRun, itertools.islice(finished, limit or None))
        finally:
            docs.close()

    @mapped_errors
    def update(
        self,
        run_id: str,
        changes: dict[str, Any],
        *,
        only_if_status: list[str] | None = None,
        epoch: int | None = None,
    ) -> LoadTestRun | None:
        """Set fields; with `only_if_status`, only while the run is in one of those; with
        `epoch`, only while that collector still holds the run."""
        self.check_in_scope(changes, partial=True)
        condition: dict[str, list[Any]] = {}
        if only_if_status:
            condition["status"] = list(only_if_status)
        if epoch is not None:
            condition.update(_epoch_is(epoch))
        doc = self._write_if(run_id, condition, changes)
        return None if doc is None else stored(LoadTestRun, doc)

    @mapped_errors
    def heartbeat(self, run_id: str, epoch: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Set the collector's fields while it still holds `epoch`; None once fenced off.

        Returns only what the collector checks (status, stop request): called every
        interval, so no whole document comes back, and none is validated.
        """
        self.check_in_scope(changes, partial=True)
        fields = ["status", "stopRequested"]
        return self._write_if(run_id, _epoch_is(epoch), changes, fields, quiet=True)

    @mapped_errors
    def epoch_of(self, run_id: str) -> int | None:
        """The run's current fencing epoch (None when the run is gone)."""
        doc = self.collection.find_one(self.scoped({"id": run_id}), {"collectorEpoch": True})
        if doc is None:
            return None
        value = doc.get("collectorEpoch")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @mapped_errors
    def claim(self, run_id: str, epoch: int, changes: dict[str, Any]) -> LoadTestRun | None:
        """Become the run's collector if nobody beat us to it: the epoch moves on by one.

        Every write of the previous collector carries the old epoch, so from here on it
        matches nothing: it is fenced off, however long it was paused.
        """
        self.check_in_scope(changes, partial=True)
        condition = {"status": list(ACTIVE_STATUSES), **_epoch_is(epoch)}
        doc = self._write_if(run_id, condition, {**changes, "collectorEpoch": epoch + 1})
        return None if doc is None else stored(LoadTestRun, doc)

    def _write_if(
        self,
        run_id: str,
        condition: dict[str, list[Any]],
        changes: dict[str, Any],
        fields: list[str] | None = None,
        *,
        quiet: bool = False,
    ) -> dict[str, Any] | None:
        """Set `changes` on the run if it is in the scope, loadmgr's own, and meets
        `condition` when written; the run after (`fields` of it), else None. Found by its
        `id` alone and conditioned in the write (store/upkeep/guarded.py): with the rest in
        the filter, SecantusDB scanned every run on each of the collector's writes.
        `quiet`: no look for why nothing was written (the collector asks the epoch)."""
        owned = condition_of(self.owned())
        before, after = set_if(
            self.collection, {"id": run_id}, {**owned, **condition}, changes, fields,
            omit=("samples",),  # a run's stored samples: read by `samples_of` alone
        )
        if after is None and before is not None and not quiet and self.in_scope(before):
            if not holds(condition_of(self.OWN), before):
                self.refuse_foreign("run", run_id)
        return after

    @mapped_errors
    def count_for_test(self, test_id: str) -> int:
        return self.collection.count_documents(self.scoped({"loadTestId": test_id}))

    @mapped_errors
    def ids_for_test(self, test_id: str) -> list[str]:
        return [
            d["id"]
            for d in self.collection.find(self.scoped({"loadTestId": test_id}), {"id": True})
        ]

    @mapped_errors
    def previous_ended(self, run: LoadTestRun) -> dict[str, Any] | None:
        """The ended run of the same test created just before `run` (raw, verdict only)."""
        query = {
            "loadTestId": run.loadTestId,
            "id": {"$ne": run.id},
            "status": {"$nin": ACTIVE_STATUSES},
            "createdAt": {"$lt": run.createdAt},
        }
        projection = {"_id": False, "id": True, "verdict": True}
        cursor = self.collection.find(self.scoped(query), projection)
        return next(iter(cursor.sort([("createdAt", -1), ("id", -1)]).limit(1)), None)

    @mapped_errors
    def claim_end_steps(self, run_id: str) -> bool:
        """Whether this caller is the one to do what follows the run's recorded end: the
        first to move `endSteps` from `pending` (or unset) to `running`."""
        claimed = self.collection.update_one(
            self.owned({"id": run_id, "endSteps": {"$in": ["pending", None]}}),
            {"$set": {"endSteps": "running"}},
        )
        return claimed.modified_count == 1

    @mapped_errors
    def end_steps_done(self, run_id: str) -> None:
        self.collection.update_one(self.owned({"id": run_id}), {"$set": {"endSteps": "done"}})

    @mapped_errors
    def claim_notifications(self, run_id: str) -> bool:
        """Whether this caller is the one to notify about the run's end: the first to turn
        its `notifications` from null to a list, so no run end is announced twice."""
        claimed = self.collection.update_one(
            self.owned({"id": run_id, "notifications": None}), {"$set": {"notifications": []}}
        )
        return claimed.modified_count == 1

    @mapped_errors
    def record_notifications(self, run_id: str, outcomes: list[dict[str, Any]]) -> None:
        """Append delivery outcomes to the run, touching nothing else of it."""
        if outcomes:
            self.collection.update_one(
                self.owned({"id": run_id}), {"$push": {"notifications": {"$each": outcomes}}}
            )

    @mapped_errors
    def delete_pending(self, run_id: str) -> bool:
        """Remove a run that never started (still `Pending`); a started one stays."""
        query = self.owned({"id": run_id, "status": RunStatus.PENDING.value})
        return self.collection.delete_one(query).deleted_count == 1

    @mapped_errors
    def delete_for_test(self, test_id: str) -> int:
        return self.collection.delete_many(self.owned({"loadTestId": test_id})).deleted_count

    @mapped_errors
    def delete_ended(self, run_id: str) -> bool:
        """Remove a run that has ended (retention's `--drop-runs-after`); a live one stays."""
        query = self.owned({"id": run_id, "status": {"$nin": ACTIVE_STATUSES}})
        return self.collection.delete_one(query).deleted_count == 1

    @mapped_errors
    def set_intervals_kept(self, run_ids: list[str], kept: dict[str, Any]) -> None:
        """Record what retention left of ended runs' intervals (never a live run's), in
        one write: the filter names more than `id` (the status, `owned()`), which
        SecantusDB answers by scanning the runs, so once for a page of runs, not per run."""
        if not run_ids:
            return
        query = self.owned({"id": {"$in": run_ids}, "status": {"$nin": ACTIVE_STATUSES}})
        self.collection.update_many(query, {"$set": {"intervalsKept": kept}})

    # -- migrations: whole-collection passes over raw documents --------------------------

    @mapped_errors
    def ended_page(
        self, after: str | None, fields: list[str], limit: int = 500
    ) -> list[dict[str, Any]]:
        """Raw documents of runs that ended, in `id` order after the run whose `id` is
        `after` (None: from the start), with `_id`, `id`, `status` and `fields` only. Any
        run of loadmgr's, of any age: not the Go service's (`db migrate` converts those,
        deciding their verdict then).

        Asked by a range on `id` alone, the unique index's: SecantusDB plans no index for
        `status: {$nin: ...}` nor for a range on `_id`, so each page scanned every run.
        The status, the owner and the scope are checked here, on a cursor read in
        batches and closed at the `limit`-th run that passes (docs/storage.md, "Indexes").
        A run whose `id` is not text is not in the index's range (nor one of loadmgr's).
        """
        query = {"id": {"$gt": after} if after is not None else {"$gte": ""}}
        marks = ["id", "status", *residual.OWNER_MARKS]
        checked = {**dict.fromkeys(fields, True), **dict.fromkeys(marks, True)}
        cursor = self.collection.find(query, self.with_scope_fields(checked)).sort("id", 1)
        cursor = cursor.batch_size(limit)
        try:
            ended = (
                residual.without(doc, residual.OWNER_MARKS)
                for doc in self.scope_checked(cursor, checked)
                if residual.ended_and_own(doc, ACTIVE_STATUSES)
            )
            return list(itertools.islice(ended, limit))
        finally:
            cursor.close()

    @mapped_errors
    def set_fields(self, changes: list[tuple[Any, dict[str, Any]]]) -> int:
        """`$set` each `(_id, fields)`; the number of documents changed."""
        if not changes:
            return 0
        requests = [
            UpdateOne(self.owned({"_id": key}), {"$set": fields}) for key, fields in changes
        ]
        return self.collection.bulk_write(requests, ordered=False).modified_count


def _epoch_is(epoch: int) -> dict[str, list[Any]]:
    """A condition on a run's fencing epoch; a run written before epochs existed counts
    as 0."""
    return {"collectorEpoch": [0, MISSING] if epoch == 0 else [epoch]}
