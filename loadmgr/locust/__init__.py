"""Locust: the web API client, stats into snapshots, and the built-in local cluster.

Imports `requests` (through the client), so the CLI imports this package lazily.
"""

from loadmgr.locust.client import LocustClient
from loadmgr.locust.local import LocalCluster, LocalClusterError
from loadmgr.locust.protocol import ClusterStatus, is_distributed
from loadmgr.locust.stats import SnapshotBuilder, final_stats, metric_value

__all__ = [
    "ClusterStatus",
    "LocalCluster",
    "LocalClusterError",
    "LocustClient",
    "SnapshotBuilder",
    "final_stats",
    "is_distributed",
    "metric_value",
]
