"""The stored documents, with the camelCase field names of the Go control plane.

Field names are the contract shared with that service: they are written as they are
stored, never aliased, so `model_dump()` is the document and `model_validate(doc)` reads
one back. `base` has what every document shares, `definitions` tests and clusters, `runs`
runs and their intervals.
"""

from loadmgr.models.documents.base import (
    DESCRIPTION_MAX,
    LOCAL_CLUSTER_ID,
    LOCAL_WORKERS_MAX,
    LOCUSTFILE_MAX_BYTES,
    MAX_USERS_CEILING,
    NAME_MAX,
    TAG_MAX,
    URL_MAX,
    Audited,
    Description,
    Document,
    Name,
    Named,
    Thresholds,
    UtcDatetime,
    as_utc,
    check_http_url,
    checked_name,
    new_id,
    target_url_refusal,
    utcnow,
)
from loadmgr.models.documents.definitions import ClusterAuth, LoadTest, LocustCluster
from loadmgr.models.documents.locustfiles import (
    BUNDLE_MAX_BYTES,
    BUNDLE_MAX_FILES,
    BundleFile,
    LocustfileBundle,
    bundle_sha256,
)
from loadmgr.models.documents.runs import (
    LoadTestRun,
    MetricSnapshot,
    RequestStats,
    RunStatus,
    StopReason,
    ThresholdResult,
)
from loadmgr.models.documents.server import ServerMetric, ServerSource, server_metric_key
from loadmgr.models.meta import META_VALUE_MAX

__all__ = [
    "BUNDLE_MAX_BYTES",
    "BUNDLE_MAX_FILES",
    "DESCRIPTION_MAX",
    "LOCAL_CLUSTER_ID",
    "LOCAL_WORKERS_MAX",
    "LOCUSTFILE_MAX_BYTES",
    "MAX_USERS_CEILING",
    "META_VALUE_MAX",
    "NAME_MAX",
    "TAG_MAX",
    "URL_MAX",
    "Audited",
    "BundleFile",
    "ClusterAuth",
    "Description",
    "Document",
    "LoadTest",
    "LoadTestRun",
    "LocustCluster",
    "LocustfileBundle",
    "MetricSnapshot",
    "Name",
    "Named",
    "RequestStats",
    "RunStatus",
    "ServerMetric",
    "ServerSource",
    "StopReason",
    "ThresholdResult",
    "Thresholds",
    "UtcDatetime",
    "as_utc",
    "bundle_sha256",
    "check_http_url",
    "checked_name",
    "new_id",
    "server_metric_key",
    "target_url_refusal",
    "utcnow",
]
