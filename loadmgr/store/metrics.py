"""The `metrics_timeseries` collection: one document per collected interval."""

from __future__ import annotations

from typing import Any

from pymongo import UpdateOne

from loadmgr.models import MetricSnapshot
from loadmgr.store.base import NO_OBJECT_ID, Repository, mapped_errors


class MetricsRepository(Repository):
    """Intervals of runs, keyed by (loadTestRunId, seq) so a retried write is a no-op."""

    def ensure_indexes(self) -> None:
        self.collection.create_index([("loadTestRunId", 1), ("timestamp", 1)], name="run_time")
        self.collection.create_index(
            [("loadTestRunId", 1), ("seq", 1)], unique=True, name="run_seq_unique"
        )

    @mapped_errors
    def save(self, snapshots: list[MetricSnapshot]) -> None:
        """Store intervals idempotently: writing one twice leaves one document."""
        if not snapshots:
            return
        operations = [
            UpdateOne(
                {"loadTestRunId": s.loadTestRunId, "seq": s.seq},
                {"$setOnInsert": s.model_dump(mode="python")},
                upsert=True,
            )
            for s in snapshots
        ]
        self.collection.bulk_write(operations, ordered=True)

    @mapped_errors
    def find_for_run(
        self, run_id: str, projection: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        query = self.scoped({"loadTestRunId": run_id})
        cursor = self.collection.find(query, {**NO_OBJECT_ID, **(projection or {})})
        return list(cursor.sort([("timestamp", 1), ("seq", 1)]))

    @mapped_errors
    def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self.collection.aggregate(pipeline))

    @mapped_errors
    def count_for_run(self, run_id: str) -> int:
        return self.collection.count_documents(self.scoped({"loadTestRunId": run_id}))

    @mapped_errors
    def latest(self, run_id: str) -> dict[str, Any] | None:
        return self.collection.find_one(
            self.scoped({"loadTestRunId": run_id}), NO_OBJECT_ID, sort=[("seq", -1)]
        )

    @mapped_errors
    def last_seq(self, run_id: str) -> int:
        doc = self.collection.find_one(
            self.scoped({"loadTestRunId": run_id}), {"seq": True}, sort=[("seq", -1)]
        )
        return int(doc["seq"]) if doc else 0

    @mapped_errors
    def delete_for_runs(self, run_ids: list[str]) -> int:
        if not run_ids:
            return 0
        query = self.scoped({"loadTestRunId": {"$in": run_ids}})
        return self.collection.delete_many(query).deleted_count
