"""Registered Locust clusters: add, find, list, remove, check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.models import LOCAL_CLUSTER_ID, LocustCluster, utcnow
from loadmgr.service.validation import refuse_url_credentials, validation_failed

if TYPE_CHECKING:
    from loadmgr.store import Store


def add_cluster(store: Store, user: str, fields: dict[str, Any]) -> LocustCluster:
    if str(fields.get("id", "")).strip() == LOCAL_CLUSTER_ID:
        raise ValidationFailed(f"{LOCAL_CLUSTER_ID!r} is the built-in cluster; pick another id")
    refuse_url_credentials("--url", fields.get("baseUrl"))
    now = utcnow()
    try:
        cluster = LocustCluster.model_validate(
            {
                **fields,
                **store.scope.stamp(),
                "createdAt": now,
                "createdBy": user,
                "updatedAt": now,
                "updatedBy": user,
            }
        )
    except ValidationError as exc:
        raise validation_failed(exc) from None
    store.ensure_indexes()
    return store.clusters.insert(cluster)


def get_cluster(store: Store, cluster_id: str) -> LocustCluster:
    cluster = store.clusters.find_by_id(cluster_id)
    if cluster is None:
        raise NotFound(f"cluster {cluster_id!r} not found{store.scope.describe()}")
    return cluster


def list_clusters(store: Store) -> list[dict[str, Any]]:
    return store.clusters.find_many()


def remove_cluster(store: Store, cluster_id: str) -> LocustCluster:
    cluster = get_cluster(store, cluster_id)
    in_use = store.tests.find_many(cluster=cluster.id, limit=1)
    if in_use:
        raise Conflict(
            f"cluster {cluster.id!r} is used by test {in_use[0]['name']!r}",
            hint="point its tests at another cluster with 'tests update --cluster' first",
        )
    store.clusters.delete(cluster.id)
    return cluster


def check_cluster(store: Store, cluster_id: str) -> dict[str, Any]:
    """Reachability, Locust version, state and workers; ClusterError when unreachable."""
    from loadmgr.errors import ClusterError
    from loadmgr.locust.client import LocustClient

    cluster = get_cluster(store, cluster_id)
    with LocustClient.from_cluster(cluster) as client:
        status = client.check()
    report = {
        "id": cluster.id,
        "baseUrl": cluster.baseUrl,
        "verifyTls": cluster.verifyTls,
        **status.to_dict(),
    }
    if not status.reachable:
        raise ClusterError(f"cluster {cluster.id!r} is not reachable: {status.error}")
    return report
