"""The `retention_policies` collection: at most one policy per target in a scope.

A policy's `name` is its target (`all`, `test:ID`, `tag:T`), unique within a tenant and
environment, so `db retention set` on a target that has one changes it in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo.errors

from loadmgr.models.documents.retention import RetentionPolicy
from loadmgr.store.base import (
    NO_OBJECT_ID,
    IndexSpec,
    Repository,
    mapped_errors,
    scope_name_unique,
)

# The lease (in `cluster_leases`) that lets one `db prune` at a time apply policies in a
# scope: its id is this, then the scope.
PRUNE_LEASE = "retention-prune"


class RetentionRepository(Repository):
    """Retention policies, read whole (a scope has a handful)."""

    INDEXES: list[IndexSpec] = [
        IndexSpec([("id", 1)], "id_unique_idx", unique=True),
        scope_name_unique(),
    ]

    @mapped_errors
    def put(self, policy: RetentionPolicy) -> RetentionPolicy:
        """Store `policy`, replacing the one its target had (keeping that one's id and
        creation); the policy as stored."""
        fields = policy.to_document()
        self.check_in_scope(fields)
        created = ("id", "createdAt", "createdBy")
        changes = {k: v for k, v in fields.items() if k not in created}
        target = self.scoped({"name": policy.name})
        update = {"$set": changes, "$setOnInsert": {k: fields[k] for k in created}}
        try:
            self.collection.update_one(target, update, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            # Another `set` of the same target created it meanwhile: change that one.
            self.collection.update_one(target, {"$set": changes})
        doc = self.collection.find_one(target, NO_OBJECT_ID)
        return RetentionPolicy.model_validate(doc)

    @mapped_errors
    def all(self) -> list[RetentionPolicy]:
        cursor = self.collection.find(self.scoped(), NO_OBJECT_ID).sort([("name", 1)])
        return self.models_of(RetentionPolicy, cursor.limit(10_000))

    @mapped_errors
    def remove(self, name: str) -> bool:
        return self.collection.delete_one(self.scoped({"name": name})).deleted_count == 1

    @mapped_errors
    def any(self) -> bool:
        return self.collection.find_one(self.scoped(), {"_id": True}) is not None

    @mapped_errors
    def last_prune(self) -> datetime | None:
        """When the daily prune (`schedules tick`) last ran in this scope."""
        doc: dict[str, Any] | None = self.collection.database["loadmgr_meta"].find_one(
            {"_id": self._prune_key()}
        )
        at = (doc or {}).get("at")
        return at if isinstance(at, datetime) else None

    @mapped_errors
    def claim_daily_prune(self, now: datetime, before: datetime) -> bool:
        """Whether this tick is the one to prune today: the first to move the scope's
        last-prune time from before `before` to `now` (compare-and-set; others match
        nothing, or lose the upsert's unique `_id`)."""
        meta = self.collection.database["loadmgr_meta"]
        due = {
            "_id": self._prune_key(),
            "$or": [{"at": {"$lt": before}}, {"at": {"$exists": False}}],
        }
        try:
            result = meta.update_one(due, {"$set": {"at": now}}, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            return False
        return result.modified_count == 1 or result.upserted_id is not None

    def _prune_key(self) -> str:
        return lease_key(self.scope.tenant, self.scope.env)


def lease_key(tenant: str | None, env: str | None) -> str:
    """The id of the prune's lease (and of its daily record) for a scope."""
    return f"{PRUNE_LEASE}:{tenant or '*'}:{env or '*'}"
