"""The `load_test_runs` collection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from loadmgr.models import LoadTestRun, RunStatus
from loadmgr.store.base import NO_OBJECT_ID, Repository, mapped_errors

ACTIVE_STATUSES = [RunStatus.PENDING.value, RunStatus.RUNNING.value, RunStatus.STOPPING.value]


class RunRepository(Repository):
    """Runs of tests; each changes status only forward, checked in the update filter."""

    def ensure_indexes(self) -> None:
        self.collection.create_index("id", unique=True, name="id_unique")
        self.collection.create_index([("loadTestId", 1), ("createdAt", -1)], name="test_created")
        self.collection.create_index([("createdAt", -1)], name="created_desc")
        self.collection.create_index([("status", 1)], name="status")

    @mapped_errors
    def insert(self, run: LoadTestRun) -> LoadTestRun:
        document = run.model_dump(mode="python")
        self.check_in_scope(document)
        self.collection.insert_one(document)
        return run

    @mapped_errors
    def find_by_id(self, run_id: str) -> LoadTestRun | None:
        doc = self.collection.find_one(self.scoped({"id": run_id}), NO_OBJECT_ID)
        return LoadTestRun.model_validate(doc) if doc else None

    @mapped_errors
    def find_many(
        self,
        *,
        test_id: str | None = None,
        statuses: list[str] | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Raw documents, newest first, without the bulky final stats."""
        query: dict[str, Any] = {}
        if test_id:
            query["loadTestId"] = test_id
        if statuses:
            query["status"] = {"$in": list(statuses)}
        if since:
            query["createdAt"] = {"$gte": since}
        cursor = self.collection.find(self.scoped(query), {**NO_OBJECT_ID, "finalStats": False})
        cursor = cursor.sort([("createdAt", -1), ("id", 1)])
        if limit:
            cursor = cursor.limit(limit)
        return list(cursor)

    @mapped_errors
    def update(
        self,
        run_id: str,
        changes: dict[str, Any],
        *,
        only_if_status: list[str] | None = None,
    ) -> LoadTestRun | None:
        """Set fields; with `only_if_status`, only while the run is in one of those."""
        self.check_in_scope(changes, partial=True)
        query: dict[str, Any] = {"id": run_id}
        if only_if_status:
            query["status"] = {"$in": only_if_status}
        doc = self.collection.find_one_and_update(
            self.scoped(query),
            {"$set": changes},
            projection=NO_OBJECT_ID,
            return_document=ReturnDocument.AFTER,
        )
        return LoadTestRun.model_validate(doc) if doc else None

    @mapped_errors
    def heartbeat(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Set the collector's fields; return only what it checks (status, stop request).

        Called every interval: no whole document comes back, and none is validated.
        """
        self.check_in_scope(changes, partial=True)
        return self.collection.find_one_and_update(
            self.scoped({"id": run_id}),
            {"$set": changes},
            projection={"_id": False, "status": True, "stopRequested": True},
            return_document=ReturnDocument.AFTER,
        )

    @mapped_errors
    def claim(
        self, run_id: str, last_heartbeat: datetime | None, changes: dict[str, Any]
    ) -> LoadTestRun | None:
        """Take over a run's collection if nobody beat us to it (its heartbeat unchanged)."""
        self.check_in_scope(changes, partial=True)
        query = {"id": run_id, "heartbeatAt": last_heartbeat, "status": {"$in": ACTIVE_STATUSES}}
        doc = self.collection.find_one_and_update(
            self.scoped(query),
            {"$set": changes},
            projection=NO_OBJECT_ID,
            return_document=ReturnDocument.AFTER,
        )
        return LoadTestRun.model_validate(doc) if doc else None

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
    def delete_pending(self, run_id: str) -> bool:
        """Remove a run that never started (still `Pending`); a started one stays."""
        query = self.scoped({"id": run_id, "status": RunStatus.PENDING.value})
        return self.collection.delete_one(query).deleted_count == 1

    @mapped_errors
    def delete_for_test(self, test_id: str) -> int:
        return self.collection.delete_many(self.scoped({"loadTestId": test_id})).deleted_count
