"""The `cluster_leases` collection: one run per cluster at a time, taken atomically."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pymongo.errors

from loadmgr.store.base import Repository, mapped_errors


class LeaseRepository(Repository):
    """A lease is a document per cluster, `_id` = cluster id; the unique `_id` arbitrates."""

    def ensure_indexes(self) -> None:
        """Nothing beyond `_id`: its uniqueness is what makes acquisition atomic."""

    @mapped_errors
    def acquire(self, cluster_id: str, run_id: str, now: datetime, ttl_sec: float) -> bool:
        """Take the lease if free or expired; exactly one of racing callers wins."""
        free = {"_id": cluster_id, "$or": [{"expiresAt": {"$lt": now}}, {"runId": None}]}
        lease = {"runId": run_id, "acquiredAt": now, "expiresAt": now + timedelta(seconds=ttl_sec)}
        try:
            self.collection.find_one_and_update(free, {"$set": lease}, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            # The upsert lost to a live lease: it is held by someone else.
            return False
        return True

    @mapped_errors
    def renew(self, cluster_id: str, run_id: str, now: datetime, ttl_sec: float) -> bool:
        result = self.collection.update_one(
            {"_id": cluster_id, "runId": run_id},
            {"$set": {"expiresAt": now + timedelta(seconds=ttl_sec)}},
        )
        return result.matched_count == 1

    @mapped_errors
    def release(self, cluster_id: str, run_id: str) -> bool:
        result = self.collection.update_one(
            {"_id": cluster_id, "runId": run_id}, {"$set": {"runId": None, "expiresAt": None}}
        )
        return result.matched_count == 1

    @mapped_errors
    def holder(self, cluster_id: str) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": cluster_id})
