"""Metrics: the catalog of every metric (`catalog`) and the stored numbers (`stored`)."""

from loadmgr.models.stats.catalog import METRICS, Metric, metric
from loadmgr.models.stats.stored import (
    STATS_FIELDS,
    clean_stats,
    find_request,
    metric_value,
    readable_stats,
    stored_number,
    stored_totals,
)

__all__ = [
    "METRICS",
    "STATS_FIELDS",
    "Metric",
    "clean_stats",
    "find_request",
    "metric",
    "metric_value",
    "readable_stats",
    "stored_number",
    "stored_totals",
]
