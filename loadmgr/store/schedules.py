"""The `schedules` and `schedule_slots` collections.

A slot is started exactly once across any number of machines ticking at the same time:
a tick claims it by moving the schedule's `nextSlotAt` on from the exact value it read
(a compare-and-set in one `find_one_and_update`); the losers match nothing. The slot's
record has a unique (scheduleId, slot) index too, so history never holds a slot twice.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pymongo
import pymongo.errors
from pymongo import ReturnDocument

from loadmgr.errors import ValidationFailed
from loadmgr.models.schedules import Schedule, ScheduleSlot
from loadmgr.store.base import (
    NO_OBJECT_ID,
    IndexSpec,
    ModelRepository,
    Repository,
    mapped_errors,
    scope_name_unique,
    stored,
)


class ScheduleRepository(ModelRepository[Schedule]):
    """Schedules, unique by id and by (tenantId, envId, name)."""

    MODEL = Schedule
    KIND = "schedule"
    TAKEN_HINT = "choose another --name"

    INDEXES: list[IndexSpec] = [
        IndexSpec([("id", 1)], "id_unique_idx", unique=True),
        scope_name_unique(),
        # A tick's one query: the unpaused schedules whose next slot has come.
        IndexSpec([("paused", 1), ("nextSlotAt", 1)], "due_idx"),
    ]

    @mapped_errors
    def find_by_prefix(self, prefix: str) -> list[Schedule]:
        query = self.scoped({"id": {"$regex": f"^{re.escape(prefix)}"}})
        return [stored(Schedule, d) for d in self.collection.find(query, NO_OBJECT_ID).limit(2)]

    @mapped_errors
    def find_many(self, *, test_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"loadTestId": test_id} if test_id else {}
        cursor = self.collection.find(self.scoped(query))
        cursor = cursor.sort([("name", 1), ("id", 1)])
        return self.screen_all(Schedule, cursor.limit(limit) if limit else cursor)

    @mapped_errors
    def count_due(self, now: datetime) -> int:
        """How many unpaused schedules are due at `now`."""
        query = self.scoped({"paused": False, "nextSlotAt": {"$lte": now}})
        return int(self.collection.count_documents(query))

    @mapped_errors
    def find_due(self, now: datetime, limit: int = 0) -> tuple[list[Schedule], list[str]]:
        """Unpaused schedules whose next slot is at or before `now` (one indexed query), the
        longest due first, at most `limit` (0: all); and why any of them cannot be read:
        such a one must not keep the others from starting."""
        query = self.scoped({"paused": False, "nextSlotAt": {"$lte": now}})
        readable: list[Schedule] = []
        unreadable: list[str] = []
        found = self.collection.find(query, NO_OBJECT_ID).sort([("nextSlotAt", 1), ("id", 1)])
        for document in found.limit(limit):
            try:
                readable.append(stored(Schedule, document))
            except ValidationFailed as exc:
                unreadable.append(exc.message)
        return readable, unreadable

    @mapped_errors
    def claim(self, schedule_id: str, expected_next: datetime, changes: dict[str, Any]) -> bool:
        """Move `nextSlotAt` on (with `changes`) if it still is `expected_next` and the
        schedule is not paused; exactly one of racing callers gets True."""
        before = self.collection.find_one_and_update(
            self.scoped({"id": schedule_id, "paused": False, "nextSlotAt": expected_next}),
            {"$set": changes},
            projection={"_id": True},
        )
        return before is not None

    @mapped_errors
    def update(self, schedule_id: str, changes: dict[str, Any]) -> Schedule | None:
        self.check_in_scope(changes, partial=True)
        doc = self.collection.find_one_and_update(
            self.scoped({"id": schedule_id}),
            {"$set": changes},
            projection=NO_OBJECT_ID,
            return_document=ReturnDocument.AFTER,
        )
        return stored(Schedule, doc) if doc else None

    @mapped_errors
    def count_result(
        self, schedule_id: str, failed: bool, changes: dict[str, Any]
    ) -> Schedule | None:
        """One more failure in a row (`$inc`), or none (a pass resets the count)."""
        return self._in_a_row(schedule_id, "consecutiveFailures", failed, changes)

    @mapped_errors
    def count_inconclusive(
        self, schedule_id: str, inconclusive: bool, changes: dict[str, Any]
    ) -> Schedule | None:
        """One more inconclusive run in a row (`$inc`), or none (any other verdict resets
        the count and its warning)."""
        return self._in_a_row(
            schedule_id, "consecutiveInconclusive", inconclusive, changes, {"warning": None}
        )

    def _in_a_row(
        self,
        schedule_id: str,
        counter: str,
        counted: bool,
        changes: dict[str, Any],
        reset: dict[str, Any] | None = None,
    ) -> Schedule | None:
        """`counter` one more (`$inc`), or back to 0 with `reset`; the schedule after."""
        update: dict[str, Any] = (
            {"$inc": {counter: 1}, "$set": changes}
            if counted
            else {"$set": {**changes, counter: 0, **(reset or {})}}
        )
        doc = self.collection.find_one_and_update(
            self.scoped({"id": schedule_id}),
            update,
            projection=NO_OBJECT_ID,
            return_document=ReturnDocument.AFTER,
        )
        return stored(Schedule, doc) if doc else None

    @mapped_errors
    def pause_if_failing(self, schedule_id: str, limit: int, changes: dict[str, Any]) -> bool:
        """Pause it if it is still unpaused with `limit` failures in a row or more."""
        result = self.collection.update_one(
            self.scoped(
                {"id": schedule_id, "paused": False, "consecutiveFailures": {"$gte": limit}}
            ),
            {"$set": {**changes, "paused": True}},
        )
        return result.modified_count == 1

    @mapped_errors
    def delete(self, schedule_id: str) -> bool:
        return self.collection.delete_one(self.scoped({"id": schedule_id})).deleted_count == 1


class ScheduleSlotRepository(Repository):
    """What became of each slot: one document per (scheduleId, slot)."""

    INDEXES: list[IndexSpec] = [
        IndexSpec([("scheduleId", 1), ("slot", 1)], "schedule_slot_unique", unique=True),
    ]

    @mapped_errors
    def record(self, slot: ScheduleSlot) -> bool:
        """Insert the slot's record; False if that slot was already recorded."""
        return self.insert_new(slot.to_document())

    @mapped_errors
    def record_many(self, slots: list[ScheduleSlot]) -> int:
        """Insert each record not there yet; the number inserted."""
        documents = [slot.to_document() for slot in slots]
        for document in documents:
            self.check_in_scope(document)
        if not documents:
            return 0
        try:
            return len(self.collection.insert_many(documents, ordered=False).inserted_ids)
        except pymongo.errors.BulkWriteError as exc:
            return int(exc.details.get("nInserted", 0))

    @mapped_errors
    def update(self, schedule_id: str, slot: datetime, changes: dict[str, Any]) -> bool:
        result = self.collection.update_one(
            self.scoped({"scheduleId": schedule_id, "slot": slot}), {"$set": changes}
        )
        return result.matched_count == 1

    @mapped_errors
    def find_many(self, schedule_id: str, limit: int = 50) -> list[dict[str, Any]]:
        cursor = self.collection.find(self.scoped({"scheduleId": schedule_id}))
        cursor = cursor.sort([("slot", -1)])
        return self.screen_all(ScheduleSlot, cursor.limit(limit) if limit else cursor)

    @mapped_errors
    def delete_all(self, schedule_id: str) -> int:
        return self.collection.delete_many(self.scoped({"scheduleId": schedule_id})).deleted_count
