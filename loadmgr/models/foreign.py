"""Documents the Go control plane wrote, read as loadmgr's (issue 12).

What that service really stored (tests/data/README.md): tests and runs with
all-lowercase keys (`loadtestid`, `createdat`), dates as int64 epoch milliseconds, scope as
account/org/project ids, `lastmetrics` with `totalrps`, a percentage `errorrate` and
`requeststats` as a map; metrics intervals camelCase but with `totalRps`, a percentage
`errorRate`, no `seq`, and 0.0 for latencies it did not know.

Two uses, one set of rules: the models read such documents tolerantly (`readable`, for
`show`, `list`, `compare` on a shared database), and `loadmgr db migrate` rewrites them for
good (`convert_*`), keeping what has no loadmgr field under `metadata.legacy` (JSON text).
`metadata` itself is a free map in the Go model (any JSON value, numbers stored as doubles):
its values are kept as they are, except a key loadmgr cannot store (empty, `$…`, dotted)
or an over-long string, which go to `metadata.legacy` too (issue 20, item 7).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from loadmgr.models.meta import metadata_refusal
from loadmgr.models.stats.stored import STATS_FIELDS, readable_stats

# Keys only the Go service writes on tests and runs (loadmgr writes `createdAt`).
GO_MARKERS = ("createdat", "loadtestid", "accountid")
# Keys of a Go test that loadmgr has no field for (they stay lowercase when read).
GO_TEST_ONLY_KEYS = frozenset({"accountid", "latestrevisionid", "recentruns"})
DATE_FIELDS = frozenset(
    {"createdAt", "updatedAt", "startedAt", "finishedAt", "heartbeatAt", "timestamp"}
)
TENANT_SOURCES = {"account": "accountid", "org": "orgid", "project": "projectid"}
# Latencies the Go service stored as 0.0 because it did not know them.
_UNKNOWN_WHEN_ZERO = ("minResponseMs", "maxResponseMs", "avgResponseMs")


def is_go_document(doc: Mapping[str, Any]) -> bool:
    """A test or run as the Go service wrote it (lowercase keys), not yet migrated."""
    return any(key in doc for key in GO_MARKERS) and "createdAt" not in doc


def is_go_interval(doc: Mapping[str, Any]) -> bool:
    """A metrics interval as the Go service wrote it: `totalRps`, no `seq`."""
    return "totalRps" in doc and "totalRPS" not in doc and "seq" not in doc


def as_datetime(value: Any) -> Any:
    """Epoch milliseconds (the Go service's dates) as an aware UTC datetime."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return value


def _renamed(doc: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """`doc` with each key that is one of `fields` lowercased spelled as that field
    (unless the field itself is there too: then both stay as they are)."""
    by_lower = {name.lower(): name for name in fields}
    result: dict[str, Any] = {}
    for key, value in doc.items():
        name = by_lower.get(key, key)
        result[key if name in doc else name] = value
    return result


def readable(doc: Any, fields: Iterable[str]) -> Any:
    """A stored test or run (raw dict) as loadmgr's models read it: Go keys spelled as
    loadmgr's fields, integer dates as dates, a missing `version` as 0, `metadata: null`
    as empty. Anything else (a loadmgr document, not a dict) comes back unchanged."""
    if not isinstance(doc, Mapping):
        return doc
    result = dict(doc)
    if is_go_document(doc):
        result = _renamed(doc, fields)
        if "lastMetrics" in result and isinstance(result["lastMetrics"], Mapping):
            result["lastMetrics"], _ = last_metrics(result["lastMetrics"])
        if result.get("scenarioId") == "":
            result["scenarioId"] = None
        if "version" in fields:
            result.setdefault("version", 0)
        if "tags" in result and result["tags"] is None:
            result["tags"] = []
        if "metadata" in result:
            result["metadata"] = legacy_metadata(result["metadata"], {})
    for key in DATE_FIELDS.intersection(result):
        result[key] = as_datetime(result[key])
    if "durationSeconds" in result and result["durationSeconds"] is None:
        result["durationSeconds"] = _elapsed_seconds(result)
    if "metadata" in result and result["metadata"] is None:
        result["metadata"] = {}
    if "lastMetrics" in fields:  # a run: its numbers as the model reads them
        for key in STATS_FIELDS:
            if key in result:
                result[key] = readable_stats(key, result[key])
    return result


def newest_first(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A page the server sorted by `createdAt`, with the Go documents in it (no
    `createdAt`: they come last) in the order of their own dates too.

    Sorting on the server by both spellings would cost every list a scan of the
    collection instead of a walk of the `createdAt` index.
    """
    go = [doc for doc in docs if is_go_document(doc)]
    if not go:
        return docs

    def millis(doc: Mapping[str, Any]) -> int:
        value = doc.get("createdat")
        return value if isinstance(value, int) else 0

    go.sort(key=millis, reverse=True)
    return [doc for doc in docs if not is_go_document(doc)] + go


# -- the Go service's lastmetrics and metrics intervals ----------------------------------

_LAST_METRICS_KEYS = {
    "timestamp": "timestamp",
    "totalrps": "totalRPS",
    "totalrequests": "totalRequests",
    "totalfailures": "totalFailures",
    "errorrate": "errorRate",
    "averageresponsems": "avgResponseMs",
    "minresponsems": "minResponseMs",
    "maxresponsems": "maxResponseMs",
    "p50responsems": "p50ResponseMs",
    "p95responsems": "p95ResponseMs",
    "p99responsems": "p99ResponseMs",
    "currentusers": "currentUsers",
}
# Per request in `lastmetrics.requeststats`: the *ms fields are always 0.0 there, the
# real values are in the unsuffixed ones.
_REQUEST_KEYS = {
    "method": "method",
    "name": "name",
    "numrequests": "numRequests",
    "numfailures": "numFailures",
    "avgresponsetime": "avgResponseTimeMs",
    "minresponsetime": "minResponseTimeMs",
    "maxresponsetime": "maxResponseTimeMs",
    "medianresponsetime": "p50ResponseMs",
    "requestspersec": "requestsPerSec",
}


def _percent(value: Any) -> Any:
    return value / 100 if isinstance(value, int | float) and not isinstance(value, bool) else value


def last_metrics(go: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Go service's `lastmetrics` as loadmgr's `lastMetrics`; and what had no place."""
    result: dict[str, Any] = {}
    legacy: dict[str, Any] = {}
    for key, value in go.items():
        name = _LAST_METRICS_KEYS.get(key)
        if name is None:
            if key != "requeststats" and value not in (0, 0.0, None):
                legacy[key] = value
            continue
        result[name] = value
    result["timestamp"] = as_datetime(result.get("timestamp"))
    result["errorRate"] = _percent(result.get("errorRate", 0.0))
    for name in _UNKNOWN_WHEN_ZERO:
        if not result.get(name):
            result[name] = None
    stats = go.get("requeststats")
    if isinstance(stats, Mapping):
        result["requestStats"] = [
            {new: item.get(old) for old, new in _REQUEST_KEYS.items() if old in item}
            for item in stats.values()
            if isinstance(item, Mapping)
        ]
    return result, legacy


def readable_interval(doc: Any) -> Any:
    """A Go metrics interval as loadmgr reads one: `totalRPS`, `errorRate` a fraction,
    latencies it did not know as unknown. A loadmgr interval comes back unchanged."""
    if not isinstance(doc, Mapping) or not is_go_interval(doc):
        return doc
    result = dict(doc)
    result["totalRPS"] = result.pop("totalRps")
    result["errorRate"] = _percent(result.get("errorRate", 0.0))
    for name in _UNKNOWN_WHEN_ZERO:
        if not result.get(name):
            result[name] = None
    for item in result.get("requestStats") or []:
        if isinstance(item, dict):
            for name in ("p50ResponseMs", "p95ResponseMs"):
                if not item.get(name):
                    item[name] = None
    return result


# -- `db migrate`: a Go document rewritten as loadmgr's ------------------------------------


def legacy_metadata(metadata: Any, legacy: Mapping[str, Any]) -> dict[str, Any]:
    """A Go document's metadata as loadmgr stores it: each value as it is (any JSON value),
    with what loadmgr cannot store under a key and `legacy` as JSON text in `legacy`."""
    kept: dict[str, Any] = {}
    refused: dict[str, Any] = {}
    for key, value in metadata.items() if isinstance(metadata, Mapping) else ():
        # `legacy` is the migration's own key: a Go value of that name is kept inside it.
        if key == "legacy" or metadata_refusal(str(key), value):
            refused[str(key)] = value
        else:
            kept[str(key)] = value
    everything = {**legacy, "metadata": refused} if refused else dict(legacy)
    if everything:
        kept["legacy"] = json.dumps(everything, default=str, sort_keys=True)
    return kept


def _elapsed_seconds(doc: Mapping[str, Any]) -> int | None:
    """A Go run without a fixed duration (`durationseconds: null`, it ran until stopped):
    how long it ran, in whole seconds (at least 1), when both its dates are known."""
    started, finished = doc.get("startedAt"), doc.get("finishedAt")
    if not isinstance(started, datetime) or not isinstance(finished, datetime):
        return None
    return max(1, math.ceil((finished - started).total_seconds()))


def _scope(doc: Mapping[str, Any], tenant_from: str) -> str | None:
    value = doc.get(TENANT_SOURCES[tenant_from])
    return str(value) if value else None


def convert_test(
    doc: Mapping[str, Any],
    fields: Iterable[str],
    tenant_from: str,
    revision: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A Go test as a loadmgr `load_tests` document (keeps `_id`): scope from the account
    (or org, project), the latest script revision as its stored locustfile."""
    fields = list(fields)
    result = readable(doc, fields)
    known = set(fields) | {"_id"}
    legacy = {k: v for k, v in result.items() if k not in known and k != "recentruns"}
    # `recentruns` repeats what the runs themselves hold: not kept.
    converted = {k: v for k, v in result.items() if k in known}
    converted["tenantId"] = _scope(doc, tenant_from)
    converted["version"] = 1
    converted["updatedAt"] = converted.get("updatedAt") or converted.get("createdAt")
    content = _script(revision)
    if content is not None:
        converted["locustfileContent"] = content
        converted["locustfileSha256"] = hashlib.sha256(content.encode()).hexdigest()
        legacy["scriptRevision"] = revision.get("revisionNumber") if revision else None
    converted["metadata"] = legacy_metadata(doc.get("metadata"), legacy)
    return converted


def _script(revision: Mapping[str, Any] | None) -> str | None:
    """A script revision's content: base64 as the Go service stored it, else as is."""
    if not revision or not isinstance(revision.get("scriptContent"), str):
        return None
    raw = revision["scriptContent"]
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return str(raw)


def final_stats(last: Mapping[str, Any], seconds: float | None) -> dict[str, Any] | None:
    """A Go run's `finalStats`, from the last snapshot it kept (cumulative counts, Locust's
    current percentiles), so baselines, comparisons and verdicts have numbers to judge.
    `source` says where they came from: p90, min and max are unknown, and the percentiles
    are Locust's recent window, not the whole run's."""
    requests, failures = last.get("totalRequests"), last.get("totalFailures")
    if not isinstance(requests, int) or not isinstance(failures, int):
        return None
    items = []
    for item in last.get("requestStats") or []:
        count, failed = int(item.get("numRequests") or 0), int(item.get("numFailures") or 0)
        items.append(
            {
                **item,
                "errorRate": failed / count if count else 0.0,
                "p95ResponseMs": None,
                "p99ResponseMs": None,
                "p90ResponseMs": None,
            }
        )
    return {
        "source": "go-control-plane lastmetrics",
        "totals": {
            "requests": requests,
            "failures": failures,
            "errorRate": failures / requests if requests else 0.0,
            "rps": requests / seconds if seconds else last.get("totalRPS"),
            "avgResponseMs": last.get("avgResponseMs"),
            "minResponseMs": None,
            "maxResponseMs": None,
            "p50ResponseMs": last.get("p50ResponseMs"),
            "p90ResponseMs": None,
            "p95ResponseMs": last.get("p95ResponseMs"),
            "p99ResponseMs": last.get("p99ResponseMs"),
        },
        "requestStats": items,
        "errors": [],
    }


def convert_run(doc: Mapping[str, Any], fields: Iterable[str], tenant_from: str) -> dict[str, Any]:
    """A Go run as a loadmgr `load_test_runs` document (keeps `_id`); `Stopped` becomes
    `Finished` stopped by a user, which is what it was."""
    fields = list(fields)
    result = readable(doc, fields)
    known = set(fields) | {"_id"}
    legacy = {k: v for k, v in result.items() if k not in known}
    converted = {k: v for k, v in result.items() if k in known}
    raw_last = doc.get("lastmetrics")
    if isinstance(raw_last, Mapping):
        converted["lastMetrics"], extra = last_metrics(raw_last)
        if extra:
            legacy["lastmetrics"] = extra
        started, finished = converted.get("startedAt"), converted.get("finishedAt")
        seconds = (
            (finished - started).total_seconds()
            if isinstance(started, datetime) and isinstance(finished, datetime)
            else None
        )
        converted["finalStats"] = final_stats(converted["lastMetrics"], seconds)
    converted["tenantId"] = _scope(doc, tenant_from)
    if converted.get("status") == "Stopped":
        converted["status"] = "Finished"
        converted["stopReason"] = "user"
        legacy["status"] = "Stopped"
    elif converted.get("status") == "Finished" and not converted.get("stopReason"):
        converted["stopReason"] = "duration"
    converted["updatedAt"] = converted.get("updatedAt") or converted.get("createdAt")
    if doc.get("durationseconds") is None and "durationseconds" in doc:
        legacy["durationseconds"] = None  # no fixed duration: it ran until stopped
    converted["metadata"] = legacy_metadata(doc.get("metadata"), legacy)
    return converted


def convert_interval(doc: Mapping[str, Any], seq: int, tenant_from: str) -> dict[str, Any]:
    """A Go metrics interval as loadmgr's (keeps `_id`), numbered `seq` in its run."""
    converted = readable_interval(doc)
    assert isinstance(converted, dict)
    legacy = {
        key: converted.pop(key) for key in ("accountId", "orgId", "projectId") if key in converted
    }
    source = {"account": "accountId", "org": "orgId", "project": "projectId"}[tenant_from]
    converted["tenantId"] = legacy.get(source) or None
    converted["seq"] = seq
    converted["percentileWindow"] = "rolling"  # Locust's own stats, as the Go plugin sent
    metadata = converted.get("metadata") if isinstance(converted.get("metadata"), dict) else {}
    converted["metadata"] = legacy_metadata(metadata, legacy)
    return converted
