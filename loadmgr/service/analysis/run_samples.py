"""A run's steady samples stored on it at its end, so a comparison reads two run documents
instead of every interval of both runs (docs/trends.md, "Significance of a comparison").

`samples_at_end` computes them once the run's end is stored (every interval written) with
`steady_samples` itself, from the intervals as the collector wrote them: retention's
downsampling later merges those intervals, and a pruned run keeps the samples of its
detail. Stored as `samples` on the run (never read with it: `store.runs.samples_of`):

    {v: 1, metrics: [p50, p95, ...], totals: {p95: <bytes>, ...},
     requests: [{request: "GET /cart", values: {p95: <bytes>, ...}}], requestsOmitted: 3}

each value list packed as little-endian float64 (exact: the samples are finite floats),
a metric without any steady value left out, as `steady_samples` leaves it out. Bounded:
the totals and the MAX_SAMPLED_REQUESTS busiest requests (by their final request count)
that fit in MAX_SAMPLES_BYTES; a run whose totals alone do not fit stores none.

`comparison_samples` reads them, and reads the intervals only for what they lack: a run
without them (older, the Go service's), a request not sampled, a server metric (filled
after the end by its own step) or a metric added to the catalog since.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from loadmgr.models import LoadTestRun
from loadmgr.models.stats.catalog import COMPARED, is_server_metric
from loadmgr.models.stats.catalog import metric as catalog_metric
from loadmgr.service.analysis.samples import Samples, steady_samples

if TYPE_CHECKING:
    from loadmgr.store import Store

VERSION = 1
# With the run document's own worst case (about 13 MB, service/collection/fitting.py) this
# stays under MongoDB's 16 MiB. 2 MB is an hour of 5-s intervals (720, 9 metrics: 52 KB a
# request) for the totals and 37 requests, or 4 hours for the totals and 8 requests.
MAX_SAMPLES_BYTES = 2_000_000
MAX_SAMPLED_REQUESTS = 50
# What is stored: the compared metrics of the catalog (server metrics are read after the end).
STORED_METRICS = tuple(m.name for m in COMPARED if m.direction and not is_server_metric(m.name))


def _pack(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def _unpack(value: Any) -> list[float] | None:
    if not isinstance(value, bytes | bytearray | memoryview):
        return None
    data = bytes(value)
    if len(data) % 8:
        return None
    return list(struct.unpack(f"<{len(data) // 8}d", data))


def request_name(item: Mapping[str, Any]) -> str:
    """A request as comparisons name it: `GET /cart`."""
    return f"{item.get('method', '')} {item.get('name', '')}".strip()


def busiest_requests(final_stats: Any, limit: int = MAX_SAMPLED_REQUESTS) -> list[str]:
    """The `limit` requests of `final_stats` with most requests, busiest first."""
    items = (final_stats or {}).get("requestStats") if isinstance(final_stats, dict) else None
    counted: dict[str, float] = {}
    for item in items or ():
        if isinstance(item, dict):
            count = item.get("numRequests")
            number = float(count) if isinstance(count, int | float) else 0.0
            counted[request_name(item)] = counted.get(request_name(item), 0.0) + number
    return sorted(counted, key=lambda name: -counted[name])[:limit]


def encode(
    samples: Samples, requests: list[str], budget: int = MAX_SAMPLES_BYTES
) -> dict[str, Any] | None:
    """`samples` (of STORED_METRICS, the totals and `requests`, busiest first) as stored:
    the requests that fit in `budget` bytes, in that order; None when the totals do not."""
    totals = _packed(samples, None)
    used = sum(len(v) for v in totals.values())
    if used > budget:
        return None
    kept: list[dict[str, Any]] = []
    for request in requests:
        values = _packed(samples, request)
        size = sum(len(v) for v in values.values())
        if used + size > budget:
            break
        used += size
        kept.append({"request": request, "values": values})
    return {"v": VERSION, "metrics": list(STORED_METRICS), "totals": totals, "requests": kept}


def _packed(samples: Samples, request: str | None) -> dict[str, bytes]:
    return {m: _pack(samples[(request, m)]) for m in STORED_METRICS if (request, m) in samples}


def decode(stored: Any) -> tuple[Samples, set[str], set[str]] | None:
    """Stored samples as (samples, metrics sampled, requests sampled); None when there are
    none or they cannot be read (another version, another program's): read the intervals."""
    if not isinstance(stored, dict) or stored.get("v") != VERSION:
        return None
    metrics, totals, requests = stored.get("metrics"), stored.get("totals"), stored.get("requests")
    if not isinstance(metrics, list) or not isinstance(totals, dict):
        return None
    if not isinstance(requests, list):
        return None
    samples: Samples = {}
    named: set[str] = set()
    for request, values in [(None, totals)] + [
        (item.get("request"), item.get("values")) for item in requests if isinstance(item, dict)
    ]:
        if (request is not None and not isinstance(request, str)) or not isinstance(values, dict):
            return None
        for metric, packed in values.items():
            unpacked = _unpack(packed)
            if unpacked is None or metric not in metrics:
                return None
            samples[(request, metric)] = unpacked
        if request is not None:
            named.add(request)
    return samples, {m for m in metrics if isinstance(m, str)}, named


def samples_at_end(
    store: Store, run: LoadTestRun, *, budget: int = MAX_SAMPLES_BYTES
) -> dict[str, Any] | None:
    """The steady samples to store on a run whose end is stored (None: too many intervals
    to store even its totals' within `budget` bytes)."""
    requests = busiest_requests(run.finalStats)
    samples = steady_samples(store, run, STORED_METRICS, requests=requests)
    document = encode(samples, requests, budget)
    if document is not None:
        sampled = len(document["requests"])
        every = {request_name(i) for i in (run.finalStats or {}).get("requestStats") or ()}
        if len(every) > sampled:
            document["requestsOmitted"] = len(every) - sampled
    return document


def comparison_samples(
    store: Store, run: LoadTestRun, metrics: Iterable[str], *, requests: Iterable[str] = ()
) -> Samples:
    """What `steady_samples(store, run, metrics, requests=requests)` gives, from the
    samples stored on the run where they hold it, from the intervals for the rest."""
    names = [m for m in metrics if catalog_metric(m).direction]
    wanted = list(requests)
    found = decode(store.runs.samples_of(run.id))
    if found is None:
        return steady_samples(store, run, names, requests=wanted)
    stored, sampled_metrics, sampled_requests = found
    missing = [m for m in names if m not in sampled_metrics]
    unsampled = [r for r in wanted if r not in sampled_requests]
    samples: Samples = {
        key: values
        for key, values in stored.items()
        if key[1] in names and (key[0] is None or key[0] in wanted)
    }
    if not missing and not unsampled:
        return samples
    # Read: every metric of an unsampled request; a metric not stored, of the totals and
    # (unless a server metric: the totals only) of every request.
    per_request = [m for m in missing if not is_server_metric(m)]
    read = steady_samples(
        store,
        run,
        names if unsampled else missing,
        requests=wanted if per_request else unsampled,
    )
    samples.update(
        (key, values)
        for key, values in read.items()
        if key[1] in missing or (key[0] is not None and key[0] in unsampled)
    )
    return samples
