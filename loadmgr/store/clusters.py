"""The `locust_clusters` collection: registered remote Locust masters."""

from __future__ import annotations

from typing import Any

from loadmgr.errors import Conflict
from loadmgr.models import LocustCluster
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
