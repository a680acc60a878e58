"""Turn successive /stats/requests payloads into interval snapshots and a run's final stats.

Pure functions, no I/O. Locust gives cumulative counters only, so interval values are
counter deltas between two polls stamped with the client's clock (docs/locust-api.md, "Statistics").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from loadmgr.locust.protocol import AGGREGATED, is_distributed
from loadmgr.locust.seconds import stored_name
from loadmgr.models import MetricSnapshot, RequestStats
from loadmgr.models.stats.catalog import QUANTILES
from loadmgr.models.stats.order import REQUEST_KEYS, TOTAL_KEYS, at_histogram_resolution

Key = tuple[str, str]  # (method, name)
Counters = tuple[int, int, float]  # num_requests, num_failures, avg_response_time

_ZERO: Counters = (0, 0, 0.0)
_P50 = "median_response_time"
_P95 = "response_time_percentile_0.95"
_P99 = "response_time_percentile_0.99"
# The rolling window's percentiles Locust charts (`PERCENTILES_TO_CHART`, by default 0.5
# and 0.95), by the catalog's key: an interval's percentiles all come from that window.
_CURRENT = tuple((m.total_key, f"response_time_percentile_{m.quantile}") for m in QUANTILES)


def split_entries(payload: dict[str, Any]) -> tuple[dict[Key, dict[str, Any]], dict[str, Any]]:
    """The per-request entries keyed by (method, name), and the Aggregated entry."""
    entries: dict[Key, dict[str, Any]] = {}
    total: dict[str, Any] = {}
    for entry in payload.get("stats") or ():
        name = str(entry.get("name", ""))
        method = str(entry.get("method") or "")
        if name == AGGREGATED and not method:
            total = entry
        else:
            entries[(method, name)] = entry
    return entries, total


def _counters(entry: dict[str, Any]) -> Counters:
    return (
        int(entry.get("num_requests") or 0),
        int(entry.get("num_failures") or 0),
        float(entry.get("avg_response_time") or 0.0),
    )


def _number(value: Any) -> float | None:
    """A latency as float, None for Locust's null (no data in its window)."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _interval_mean(now: Counters, before: Counters) -> float | None:
    """Mean latency of the requests between two polls, from the cumulative means."""
    count = now[0] - before[0]
    if count <= 0:
        return None
    mean = (now[2] * now[0] - before[2] * before[0]) / count
    # Cumulative means are rounded floats; a tiny negative is noise, not a latency.
    return max(0.0, mean)


class RunIntervals:
    """What makes the intervals of one run alike, whoever computes them (from Locust's
    payloads here, from the plugin's seconds in loadmgr.service.collection.windows): the
    run and its scope, and the counts and rates of each interval, derived the same way."""

    def __init__(self, run_id: str, tenant_id: str | None, env_id: str | None) -> None:
        self.run_id = run_id
        self.tenant_id = tenant_id
        self.env_id = env_id

    def snapshot(
        self, requests: int, failures: int, seconds: float, **fields: Any
    ) -> MetricSnapshot:
        """The run's interval with `requests` and `failures` in `seconds`, and `fields`."""
        # Built from numbers this code computed, so validation would only re-check them
        # (a tenth of the collector's time per interval); tests round-trip the result.
        return MetricSnapshot.model_construct(
            loadTestRunId=self.run_id,
            tenantId=self.tenant_id,
            envId=self.env_id,
            totalRPS=_rate(requests, seconds),
            failuresPerSec=_rate(failures, seconds),
            intervalRequests=requests,
            intervalFailures=failures,
            errorRate=failures / requests if requests else 0.0,
            **fields,
        )


class SnapshotBuilder(RunIntervals):
    """Builds one `MetricSnapshot` per changed payload of one run."""

    # `started_at` is when the swarm was sent: the first payload's delta is taken against
    # zero over the time since then. `prime` takes over a run in progress instead.

    def __init__(
        self,
        run_id: str,
        *,
        started_at: datetime,
        tenant_id: str | None = None,
        env_id: str | None = None,
        seq: int = 0,
    ) -> None:
        super().__init__(run_id, tenant_id, env_id)
        self.seq = seq
        self._at = started_at
        self._payload: dict[str, Any] | None = None
        self._total: Counters = _ZERO
        self._entries: dict[Key, Counters] = {}
        self._gap = False

    def resume(self, last: dict[str, Any] | None, at: datetime) -> None:
        """Continue after the last stored interval `last` (taken at `at`) of a run whose
        collector died: the next snapshot covers every request since then, marked a gap
        (nobody saw when within it they came)."""
        self._at = at
        self._payload = None
        if last:
            self._total = (
                int(last.get("totalRequests") or 0), int(last.get("totalFailures") or 0), 0.0
            )
            self._entries = {
                (str(item.get("method") or ""), str(item.get("name") or "")): (
                    int(item.get("numRequests") or 0),
                    int(item.get("numFailures") or 0),
                    float(item.get("avgResponseTimeMs") or 0.0),
                )
                for item in last.get("requestStats") or []
            }
        self._gap = True

    @property
    def last_payload(self) -> dict[str, Any] | None:
        """The payload the next delta is taken against (None before the first)."""
        return self._payload

    def prime(self, payload: dict[str, Any], at: datetime) -> None:
        """Take `payload` as the baseline without emitting a snapshot."""
        entries, total = split_entries(payload)
        self._remember(payload, at, total, entries)

    def build(
        self, payload: dict[str, Any], now: datetime, *, force: bool = False
    ) -> MetricSnapshot | None:
        """The snapshot of the interval ending at `now`, or None for a repeated payload."""
        # Locust memoizes /stats/requests for 2 s, so an identical payload carries no new
        # interval; `force` emits one anyway (e.g. the last poll of a run).
        if payload == self._payload and not force:
            return None
        entries, total = split_entries(payload)
        counters = {key: _counters(entry) for key, entry in entries.items()}
        total_now = _counters(total)
        reset = self._is_reset(total_now, counters)
        before_total = _ZERO if reset else self._total
        before = {} if reset else self._entries
        seconds = max(0.0, (now - self._at).total_seconds())

        requests = max(0, total_now[0] - before_total[0])
        failures = max(0, total_now[1] - before_total[1])
        has_requests = total_now[0] > 0
        # A fresh Locust reports 0 for its rolling window: no requests is no data, not 0 ms.
        current = (payload.get("current_response_time_percentiles") or {}) if has_requests else {}
        # Percentiles from Locust's rolling window only (a cumulative p99 beside a rolling
        # p95 can read below it); min and max are the run's so far, which hold the window.
        latencies = at_histogram_resolution(
            {
                "avgResponseMs": None if self._gap else _interval_mean(total_now, before_total),
                "minResponseMs": _number(total.get("min_response_time")) if has_requests else None,
                "maxResponseMs": _number(total.get("max_response_time")) if has_requests else None,
                **{key: _number(current.get(name)) for key, name in _CURRENT},
            },
            TOTAL_KEYS,
        )
        snapshot = self.snapshot(
            requests,
            failures,
            seconds,
            timestamp=now,
            seq=self.seq,
            intervalSec=seconds,
            windowStart=self._at,
            windowEnd=now,
            percentileWindow="rolling",
            gap=self._gap,
            totalRequests=total_now[0],
            totalFailures=total_now[1],
            **latencies,
            currentUsers=int(payload.get("user_count") or 0),
            workerCount=int(payload.get("worker_count") or 0) if is_distributed(payload) else None,
            state=payload.get("state"),
            requestStats=[
                RequestStats.model_construct(
                    **_interval_request(entry, counters[key], before.get(key, _ZERO), seconds)
                )
                for key, entry in entries.items()
            ],
            metadata={"reset": True} if reset else {},
        )
        self.seq += 1
        self._gap = False
        self._remember(payload, now, total, entries, total_now, counters)
        return snapshot

    def is_reset(self, payload: dict[str, Any]) -> bool:
        """Whether `payload`'s counters are below the last ones this builder took."""
        entries, total = split_entries(payload)
        return self._is_reset(_counters(total), {k: _counters(e) for k, e in entries.items()})

    def _is_reset(self, total: Counters, entries: dict[Key, Counters]) -> bool:
        """Whether any counter went down: a new swarm or /stats/reset began a new series."""
        if total[0] < self._total[0] or total[1] < self._total[1]:
            return True
        for key, (requests, failures, _) in self._entries.items():
            now = entries.get(key, _ZERO)
            if now[0] < requests or now[1] < failures:
                return True
        return False

    def _remember(
        self,
        payload: dict[str, Any],
        at: datetime,
        total: dict[str, Any],
        entries: dict[Key, dict[str, Any]],
        total_counters: Counters | None = None,
        counters: dict[Key, Counters] | None = None,
    ) -> None:
        self._payload = payload
        self._at = at
        self._total = total_counters or _counters(total)
        self._entries = counters or {key: _counters(entry) for key, entry in entries.items()}


def _interval_request(
    entry: dict[str, Any], now: Counters, before: Counters, seconds: float
) -> dict[str, Any]:
    requests = max(0, now[0] - before[0])
    failures = max(0, now[1] - before[1])
    fields = _request_fields(entry)
    fields.update(
        requestsPerSec=_rate(requests, seconds),
        failuresPerSec=_rate(failures, seconds),
        intervalRequests=requests,
        intervalFailures=failures,
    )
    return at_histogram_resolution(fields, REQUEST_KEYS)


def _request_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry's cumulative fields, named as in `requestStats[]`."""
    has_requests = int(entry.get("num_requests") or 0) > 0
    return {
        "method": str(entry.get("method") or ""),
        "name": str(entry.get("name", "")),
        "numRequests": int(entry.get("num_requests") or 0),
        "numFailures": int(entry.get("num_failures") or 0),
        "avgResponseTimeMs": float(entry.get("avg_response_time") or 0.0),
        "minResponseTimeMs": float(entry.get("min_response_time") or 0.0),
        "maxResponseTimeMs": float(entry.get("max_response_time") or 0.0),
        "p50ResponseMs": _number(entry.get(_P50)) if has_requests else None,
        "p95ResponseMs": _number(entry.get(_P95)) if has_requests else None,
        "p99ResponseMs": _number(entry.get(_P99)) if has_requests else None,
        "avgContentLength": float(entry.get("avg_content_length") or 0.0),
    }


def _csv_percentile(row: dict[str, str] | None, column: str) -> float | None:
    value = (row or {}).get(column)
    try:
        return _number(float(value)) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def final_stats(
    payload: dict[str, Any], csv_rows: Iterable[dict[str, str]] | None = None
) -> dict[str, Any]:
    """A run's `finalStats`: totals, per-request stats and errors; `csv_rows` add p90."""
    # Counts are Locust's own (`num_requests`/`num_failures` of each entry and of
    # Aggregated), never recomputed, so they equal its final report exactly.
    # Keyed as the JSON's names are (a long one shortened), so every row finds its entry.
    by_key = {
        (row.get("Type", ""), stored_name(row.get("Name", ""))): row for row in csv_rows or ()
    }
    entries, total = split_entries(payload)
    request_stats = []
    for (method, name), entry in entries.items():
        fields = _request_fields(entry)
        requests, failures = fields["numRequests"], fields["numFailures"]
        fields.update(
            errorRate=failures / requests if requests else 0.0,
            requestsPerSec=float(entry.get("total_rps") or 0.0),
            failuresPerSec=float(entry.get("total_fail_per_sec") or 0.0),
            p90ResponseMs=_csv_percentile(by_key.get((method, name)), "90%"),
        )
        if not requests:
            fields.update(avgResponseTimeMs=None, minResponseTimeMs=None, maxResponseTimeMs=None)
        request_stats.append(at_histogram_resolution(fields, REQUEST_KEYS))

    cumulative = _request_fields(total) if total else _request_fields({})
    requests, failures = cumulative["numRequests"], cumulative["numFailures"]
    has_requests = requests > 0
    totals = {
        "requests": requests,
        "failures": failures,
        "errorRate": failures / requests if requests else 0.0,
        "rps": float(total.get("total_rps") or 0.0),
        "failuresPerSec": float(total.get("total_fail_per_sec") or 0.0),
        "avgResponseMs": cumulative["avgResponseTimeMs"] if has_requests else None,
        "minResponseMs": cumulative["minResponseTimeMs"] if has_requests else None,
        "maxResponseMs": cumulative["maxResponseTimeMs"] if has_requests else None,
        "p50ResponseMs": cumulative["p50ResponseMs"],
        "p90ResponseMs": _csv_percentile(by_key.get(("", AGGREGATED)), "90%"),
        "p95ResponseMs": cumulative["p95ResponseMs"],
        "p99ResponseMs": cumulative["p99ResponseMs"],
        "avgContentLength": cumulative["avgContentLength"],
    }
    at_histogram_resolution(totals, TOTAL_KEYS)
    errors = [
        {
            "method": str(error.get("method") or ""),
            "name": str(error.get("name", "")),
            "error": str(error.get("error", "")),
            "occurrences": int(error.get("occurrences") or 0),
        }
        for error in payload.get("errors") or ()
    ]
    return {
        "state": payload.get("state"),
        "userCount": int(payload.get("user_count") or 0),
        "workerCount": int(payload.get("worker_count") or 0) if is_distributed(payload) else None,
        "totals": totals,
        "requestStats": request_stats,
        "errors": errors,
    }

