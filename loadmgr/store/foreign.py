"""Whole-database passes over the Go control plane's documents, for `db migrate`.

Go documents are found by their shape (tests/data/README.md): tests and runs
with `createdat` and no `createdAt`; intervals with `totalRps` and no `seq`. A converted
document no longer has that shape, so every pass finds only what is left to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymongo.errors
from pymongo import ReplaceOne
from pymongo.database import Database

from loadmgr.store.connection import translate_errors

GO_SHAPED = {"createdat": {"$exists": True}, "createdAt": {"$exists": False}}
GO_INTERVAL = {"totalRps": {"$exists": True}, "seq": {"$exists": False}}
# What every write of loadmgr's outside `db migrate` adds to its filter, so that it never
# changes or deletes a document the Go service wrote (issue 20, item 6): loadmgr never
# writes `createdat` (it writes `createdAt`) nor `totalRps` (it writes `totalRPS`), and a
# converted document has neither any more.
NOT_GO_WRITTEN = {"createdat": {"$exists": False}}
NOT_GO_INTERVAL = {"totalRps": {"$exists": False}}
BATCH = 1000


class ForeignDocuments:
    """The Go service's tests, runs, script revisions and intervals in one database."""

    def __init__(self, database: Database[dict[str, Any]], uri: str) -> None:
        self.db = database
        self._uri = uri

    def count(self, collection: str, query: dict[str, Any] | None = None) -> int:
        with translate_errors(self._uri):
            return self.db[collection].count_documents(query or {})

    def go_documents(self, collection: str) -> Iterator[dict[str, Any]]:
        """Tests or runs still in the Go shape, in `_id` order, streamed."""
        with translate_errors(self._uri):
            cursor = self.db[collection].find(GO_SHAPED).sort("_id", 1).batch_size(BATCH)
            try:
                yield from cursor
            finally:
                cursor.close()

    def test_summaries(self) -> dict[str, dict[str, Any]]:
        """Every test's id → name, target, cluster and default duration, in either spelling."""
        fields = ["id", "name", "targetUrl", "targeturl", "locustClusterId", "locustclusterid"]
        fields += ["defaultDurationSec", "defaultdurationsec"]
        with translate_errors(self._uri):
            docs = self.db["load_tests"].find({}, dict.fromkeys(fields, True))
            return {str(doc["id"]): doc for doc in docs if doc.get("id")}

    def latest_revision(self, test_id: str) -> dict[str, Any] | None:
        with translate_errors(self._uri):
            return self.db["script_revisions"].find_one(
                {"loadTestId": test_id}, sort=[("revisionNumber", -1), ("createdAt", -1)]
            )

    def replace_one(self, collection: str, doc: dict[str, Any]) -> str | None:
        """Replace a Go document by its conversion, only if still in the Go shape; None
        when done (or already done by a racing migration), else why it was refused."""
        with translate_errors(self._uri):
            try:
                self.db[collection].replace_one({"_id": doc["_id"], **GO_SHAPED}, doc)
            except pymongo.errors.DuplicateKeyError:
                return "a loadmgr document with the same unique key (name in its scope) exists"
        return None

    def runs_with_go_intervals(self) -> list[str]:
        with translate_errors(self._uri):
            return [
                str(run_id)
                for run_id in self.db["metrics_timeseries"].distinct("loadTestRunId", GO_INTERVAL)
            ]

    def intervals_by_time(self, run_id: str) -> Iterator[dict[str, Any]]:
        """All of a run's intervals (Go or converted) in time order, streamed: the order
        that numbers them, so a migration stopped half-way numbers the rest the same."""
        with translate_errors(self._uri):
            cursor = (
                self.db["metrics_timeseries"]
                .find({"loadTestRunId": run_id})
                .sort([("timestamp", 1), ("_id", 1)])
                .batch_size(BATCH)
            )
            try:
                yield from cursor
            finally:
                cursor.close()

    def replace_intervals(self, docs: list[dict[str, Any]]) -> int:
        if not docs:
            return 0
        with translate_errors(self._uri):
            requests = [ReplaceOne({"_id": d["_id"], **GO_INTERVAL}, d) for d in docs]
            result = self.db["metrics_timeseries"].bulk_write(requests, ordered=False)
            return result.modified_count
