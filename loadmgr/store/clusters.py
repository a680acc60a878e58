"""What runs are pointed at: registered remote Locust masters (`locust_clusters`), the
sources server-side metrics are read from (`server_sources`), and the values read for a
run's intervals (in `metrics_timeseries`, beside Locust's numbers)."""

from __future__ import annotations

from typing import Any

from loadmgr.errors import Conflict
from loadmgr.models import LocustCluster, ServerSource
from loadmgr.store.base import IndexSpec, Repository, mapped_errors


class ClusterRepository(Repository):
    """Clusters by id; secrets are never stored, only where to find them."""

    INDEXES: list[IndexSpec] = [IndexSpec([("id", 1)], "id_unique", unique=True)]

    @mapped_errors
    def insert(self, cluster: LocustCluster) -> LocustCluster:
        document = cluster.to_document()
        if not self.insert_new(document):
            raise Conflict(f"a cluster with id {cluster.id!r} already exists")
        return cluster

    @mapped_errors
    def find_by_id(self, cluster_id: str) -> LocustCluster | None:
        return self.find_one_as(LocustCluster, {"id": cluster_id})

    @mapped_errors
    def find_many(self) -> list[dict[str, Any]]:
        return self.screen_all(LocustCluster, self.collection.find(self.scoped()).sort("id", 1))

    @mapped_errors
    def delete(self, cluster_id: str) -> bool:
        return self.collection.delete_one(self.scoped({"id": cluster_id})).deleted_count == 1


class SourceRepository(Repository):
    """Sources by name (`id`); credentials are never stored, only where to find them."""

    INDEXES: list[IndexSpec] = [
        IndexSpec([("id", 1), ("tenantId", 1), ("envId", 1)], "id_scope_unique", unique=True)
    ]

    @mapped_errors
    def insert(self, source: ServerSource) -> ServerSource:
        if not self.insert_new(source.to_document()):
            raise Conflict(f"a source named {source.id!r} already exists")
        return source

    @mapped_errors
    def find_by_id(self, source_id: str) -> ServerSource | None:
        return self.find_one_as(ServerSource, {"id": source_id})

    @mapped_errors
    def find_many(self) -> list[dict[str, Any]]:
        return self.screen_all(ServerSource, self.collection.find(self.scoped()).sort("id", 1))

    @mapped_errors
    def delete(self, source_id: str) -> bool:
        return self.collection.delete_one(self.scoped({"id": source_id})).deleted_count == 1


class ServerValueRepository(Repository):
    """The server-side values of a run's intervals, set apart from the interval's write
    (which never waits for them): `server.NAME` or `serverMissing.NAME` per interval."""

    @staticmethod
    def _update(values: dict[str, float], missing: dict[str, str]) -> dict[str, Any]:
        """A value replaces a missing mark."""
        changes: dict[str, Any] = {f"server.{k}": v for k, v in values.items()}
        changes.update({f"serverMissing.{k}": why for k, why in missing.items()})
        update: dict[str, Any] = {"$set": changes}
        cleared = {f"serverMissing.{k}": "" for k in values}
        if cleared:
            update["$unset"] = cleared
        return update

    @mapped_errors
    def set_values(
        self, run_id: str, seq: int, values: dict[str, float], missing: dict[str, str]
    ) -> bool:
        """Set the interval's values; False when the interval is not stored yet."""
        if not values and not missing:
            return True
        result = self.collection.update_one(
            self.scoped({"loadTestRunId": run_id, "seq": seq}), self._update(values, missing)
        )
        return result.matched_count == 1

    @mapped_errors
    def set_many(
        self, run_id: str, items: list[tuple[int, dict[str, float], dict[str, str]]]
    ) -> None:
        """Set the values of many intervals in one round trip (the end's filling: one
        update per interval would be most of its time)."""
        from pymongo import UpdateOne

        operations = [
            UpdateOne(self.scoped({"loadTestRunId": run_id, "seq": seq}), self._update(v, m))
            for seq, v, m in items
            if v or m
        ]
        if operations:
            self.collection.bulk_write(operations, ordered=False)

    @mapped_errors
    def windows(self, run_id: str) -> list[dict[str, Any]]:
        """Every interval of the run: seq, window, length, values, missing marks."""
        fields = {
            "_id": 0,
            "seq": 1,
            "windowStart": 1,
            "windowEnd": 1,
            "intervalSec": 1,
            "server": 1,
            "serverMissing": 1,
        }
        cursor = self.collection.find(self.scoped({"loadTestRunId": run_id}), fields)
        return sorted(cursor, key=lambda d: int(d.get("seq") or 0))
