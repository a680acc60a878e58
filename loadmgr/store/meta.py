"""The `loadmgr_meta` collection: the schema version `loadmgr db migrate` advances.

One document per database, `_id` "schema": the version the stored documents are in, and
the history of the migrations that brought them there. Not scoped: a database has one
schema, whatever tenant or environment a command works in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo.errors

from loadmgr.store.base import Repository, mapped_errors

SCHEMA_ID = "schema"


class MetaRepository(Repository):
    """The schema version of the database."""

    def ensure_indexes(self) -> None:
        """Nothing beyond `_id`."""

    @mapped_errors
    def schema_version(self) -> int:
        """The version the database's documents are in; 0 before any migration."""
        doc = self.collection.find_one({"_id": SCHEMA_ID}, {"version": True})
        try:
            return int((doc or {}).get("version") or 0)
        except (TypeError, ValueError):
            return 0

    @mapped_errors
    def advance(self, version: int, at: datetime, by: str, note: dict[str, Any]) -> None:
        """Record that the database is at `version` (never lowers it), with who and when."""
        update = {
            "$max": {"version": version},
            "$set": {"updatedAt": at, "updatedBy": by},
            "$push": {"history": {"version": version, "at": at, "by": by, **note}},
        }
        try:
            self.collection.update_one({"_id": SCHEMA_ID}, update, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            # Two first migrations raced to create the document: it exists now.
            self.collection.update_one({"_id": SCHEMA_ID}, update)
