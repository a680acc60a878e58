"""The `load_tests` collection."""

from __future__ import annotations

import re
from typing import Any

import pymongo
import pymongo.errors
from pymongo import ReturnDocument

from loadmgr.errors import Conflict
from loadmgr.models import LoadTest
from loadmgr.store.base import (
    NO_OBJECT_ID,
    IndexSpec,
    ModelRepository,
    mapped_errors,
    scope_created,
    scope_name_unique,
    stored,
)
from loadmgr.store.foreign import NOT_GO_WRITTEN

# The Go service's fields plus what `tests list` shows; the locustfile's content stays out.
LIST_PROJECTION = {**NO_OBJECT_ID, "locustfileContent": False, "locustfileBundle": False}


class LoadTestRepository(ModelRepository[LoadTest]):
    """Test definitions, unique by (tenantId, envId, name)."""

    MODEL = LoadTest
    KIND = "test"
    TAKEN_HINT = "choose another --name, or change the existing one with 'tests update'"
    # Every write goes through `owned()`: the Go service's tests are never changed.
    OWN = NOT_GO_WRITTEN

    # Where the Go control plane indexes the same keys, its name is used, so that it can
    # start on a database loadmgr created (it insists on its names). Names are unique
    # only among loadmgr's tests: those have a `version`, the Go service's never do.
    INDEXES: list[IndexSpec] = [
        IndexSpec([("id", 1)], "id_unique_idx", unique=True),
        scope_name_unique(partialFilterExpression={"version": {"$exists": True}}),
        IndexSpec([("createdAt", -1)], "created_at_idx"),
        # A list's order, newest first and then by id (`find_newest`): served whole by
        # the index, so listing 10,000 of them never sorts them all (docs/benchmarks.md).
        IndexSpec([("createdAt", -1), ("id", 1)], "created_id_idx"),
        *scope_created(),
    ]

    @mapped_errors
    def find_many(
        self,
        *,
        tags: list[str] | None = None,
        name_contains: str | None = None,
        cluster: str | None = None,
        server_source: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Raw documents, newest first: listing thousands must not pay for validation."""
        query: dict[str, Any] = {}
        if tags:
            query["tags"] = {"$all": list(tags)}
        if name_contains:
            query["name"] = {"$regex": re.escape(name_contains), "$options": "i"}
        if cluster:
            query["locustClusterId"] = cluster
        if server_source:
            query["serverMetrics.source"] = server_source
        # Go-written tests listed as loadmgr's (keys, dates), not dropped nor crashing.
        return self.find_newest(LoadTest, query, LIST_PROJECTION, limit)

    @mapped_errors
    def update(
        self, test_id: str, expected_version: int, changes: dict[str, Any]
    ) -> LoadTest | None:
        """Apply `changes` if the stored version is still `expected_version`; else None."""
        self.check_in_scope(changes, partial=True)
        try:
            # The document as it was, with the update applied here: exactly what is stored
            # (top-level $set and one increment), in one atomic round trip. Asking for the
            # AFTER document instead breaks on mongomock, which re-matches the filter
            # (whose version just changed) to find it.
            before = self.collection.find_one_and_update(
                self.owned({"id": test_id, "version": expected_version}),
                {"$set": changes, "$inc": {"version": 1}},
                projection=NO_OBJECT_ID,
                return_document=ReturnDocument.BEFORE,
            )
        except pymongo.errors.DuplicateKeyError:
            raise Conflict(
                f"a test named {changes.get('name')!r} already exists{self.scope.describe()}"
            ) from None
        if before is None:
            self.refuse_foreign("test", test_id)
            return None
        return stored(LoadTest, {**before, **changes, "version": expected_version + 1})

    @mapped_errors
    def delete(self, test_id: str) -> bool:
        if self.collection.delete_one(self.owned({"id": test_id})).deleted_count == 1:
            return True
        self.refuse_foreign("test", test_id)
        return False

    @mapped_errors
    def take(self, test_id: str) -> dict[str, Any] | None:
        """Delete the test and return its stored document (None if it was not there)."""
        taken = self.collection.find_one_and_delete(self.owned({"id": test_id}))
        if taken is None:
            self.refuse_foreign("test", test_id)
        return taken

    @mapped_errors
    def restore(self, document: dict[str, Any]) -> None:
        """Put back a document `take` returned, as it was (same `_id`)."""
        if not self.insert_new(document):
            raise Conflict(
                f"test {document.get('name')!r} could not be put back: a test of that name "
                "was created meanwhile",
                hint="its runs are kept; rename one of the tests",
            )
