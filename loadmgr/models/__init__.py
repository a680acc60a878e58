"""Documents, enums, and the parsers of durations and thresholds. Imports nothing of ours."""

from loadmgr.models.documents import (
    LOCAL_CLUSTER_ID,
    LOCAL_WORKERS_MAX,
    ClusterAuth,
    LoadTest,
    LoadTestRun,
    LocustCluster,
    MetricSnapshot,
    RequestStats,
    RunStatus,
    ServerMetric,
    ServerSource,
    StopReason,
    ThresholdResult,
    new_id,
    utcnow,
)
from loadmgr.models.durations import format_duration, parse_duration
from loadmgr.models.meta import parse_meta
from loadmgr.models.scope import Scope
from loadmgr.models.thresholds import Threshold, merge_thresholds, parse_threshold
from loadmgr.models.verdicts import ReasonKind, Regression, Verdict, VerdictReason

__all__ = [
    "LOCAL_CLUSTER_ID",
    "LOCAL_WORKERS_MAX",
    "ClusterAuth",
    "LoadTest",
    "LoadTestRun",
    "LocustCluster",
    "MetricSnapshot",
    "ReasonKind",
    "Regression",
    "RequestStats",
    "RunStatus",
    "Scope",
    "ServerMetric",
    "ServerSource",
    "StopReason",
    "Threshold",
    "ThresholdResult",
    "Verdict",
    "VerdictReason",
    "format_duration",
    "merge_thresholds",
    "new_id",
    "parse_duration",
    "parse_meta",
    "parse_threshold",
    "utcnow",
]
