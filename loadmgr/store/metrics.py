"""The `metrics_timeseries` collection: one document per collected interval."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pymongo import DeleteMany, ReplaceOne, UpdateOne

from loadmgr.models import MetricSnapshot
from loadmgr.models.foreign import readable_interval
from loadmgr.store.base import IndexSpec, Repository, mapped_errors
from loadmgr.store.connection import translate_errors
from loadmgr.store.foreign import NOT_GO_INTERVAL

# Intervals in the order they were collected: by seq, and by time where there is no seq
# (the Go service's intervals), so every read gets them in the same order.
IN_ORDER = [("seq", 1), ("timestamp", 1)]
LATEST_FIRST = [("seq", -1), ("timestamp", -1)]


def _numbered(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`docs`, with intervals that lack a seq numbered by their position (1, 2, 3…)."""
    result = []
    for number, doc in enumerate(docs, 1):
        if "seq" not in doc:
            doc = readable_interval(doc)
            doc["seq"] = number
        result.append(doc)
    return result


def _with_go_marker(projection: dict[str, Any]) -> dict[str, Any]:
    """`projection`, also asking for the field that tells a Go interval (to read it in
    loadmgr's units), and those that tell a merged window (to skip what it covers); an
    interval without them costs nothing more."""
    if any(value is True for key, value in projection.items() if key != "_id"):
        return {**projection, "totalRps": True, "seq": True, "mergedThrough": True}
    return projection


def _first_of(window: dict[str, Any]) -> dict[str, Any]:
    """The first interval of a merged window's group (where the window is stored)."""
    return {"loadTestRunId": window["loadTestRunId"], "seq": window["seq"]}


def _covered_by(window: dict[str, Any]) -> dict[str, Any]:
    """The other intervals a merged window holds."""
    return {
        "loadTestRunId": window["loadTestRunId"],
        "seq": {"$gt": window["seq"], "$lte": window["mergedThrough"]},
    }


def _own_seq(doc: dict[str, Any]) -> bool:
    seq = doc.get("seq")
    return isinstance(seq, int) and not isinstance(seq, bool) and "totalRps" not in doc


def _as_asked(
    docs: Iterable[dict[str, Any]], projection: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """`docs` without the fields `_with_go_marker` asked for only to skip covered ones."""
    added = [key for key in ("seq", "mergedThrough") if projection and key not in projection]
    for doc in docs:
        for key in added:
            doc.pop(key, None)
        yield doc


def uncovered(
    docs: Iterable[dict[str, Any]], covered: list[tuple[int, int]] | None = None
) -> Iterator[dict[str, Any]]:
    """`docs` (one run's, in seq order) without the intervals a merged window before them
    already holds: those a prune stopped after writing the window and before deleting its
    originals (models/stats/downsample.py). Each merged window that had some is appended
    to `covered` as (seq, mergedThrough), for the next prune to finish."""
    through = 0
    window: tuple[int, int] | None = None
    for doc in docs:
        seq = doc.get("seq")
        if isinstance(seq, int) and seq <= through:
            if covered is not None and window is not None and window not in covered:
                covered.append(window)
            continue
        merged = doc.get("mergedThrough")
        if isinstance(merged, int) and isinstance(seq, int) and merged > through:
            through, window = merged, (seq, merged)
        yield doc


def _named_by_object_id(projection: dict[str, Any]) -> dict[str, Any] | None:
    """`projection` with `_id`, which names an interval that cannot be read (None: all)."""
    fields = {key: value for key, value in projection.items() if key != "_id"}
    return _with_go_marker(fields) if fields else None


def _go_numbered(
    docs: Iterable[dict[str, Any]], projection: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Intervals in order; the Go service's read in loadmgr's units and numbered."""
    for number, doc in enumerate(docs, 1):
        if "seq" not in doc:
            doc = readable_interval(doc)  # the Go service's: its units, no seq
            if not projection or "seq" in projection:
                doc["seq"] = number
        yield doc


def _number(value: Any) -> int | float | None:
    """A server-side aggregate as the number it is; anything else (text, a list) unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


# loadmgr's interval fields the Go control plane spelled otherwise (in the same unit).
GO_SPELLING = {"totalRPS": "totalRps"}


def _either_spelling(field: str) -> Any:
    """An aggregation expression for `field`, or its Go spelling where it has one."""
    if field in GO_SPELLING:
        return {"$ifNull": [f"${field}", f"${GO_SPELLING[field]}"]}
    return f"${field}"


class MetricsRepository(Repository):
    """Intervals of runs, keyed by (loadTestRunId, seq) so a retried write is a no-op.
    Deletions go through `owned()`: the Go service's intervals are never removed."""

    OWN = NOT_GO_INTERVAL

    # The Go control plane's name for (run, timestamp); `seq` is loadmgr's alone, so its
    # uniqueness covers only intervals that have one (Go's have none: a plain unique
    # index would see each of them as a duplicate null and refuse all but the first).
    INDEXES: list[IndexSpec] = [
        IndexSpec([("loadTestRunId", 1), ("timestamp", 1)], "loadtestrun_timestamp_idx"),
        IndexSpec(
            [("loadTestRunId", 1), ("seq", 1)],
            "run_seq_unique",
            unique=True,
            partialFilterExpression={"seq": {"$exists": True}},
        ),
        # A query on a run does not imply `seq` exists, so the partial index above cannot
        # serve its sort; this one does, and orders intervals without a `seq` (the Go
        # service's) by their timestamp.
        IndexSpec([("loadTestRunId", 1), ("seq", 1), ("timestamp", 1)], "run_seq_time"),
    ]

    @mapped_errors
    def save(self, snapshots: list[MetricSnapshot]) -> None:
        """Store intervals idempotently: writing one twice leaves one document."""
        if not snapshots:
            return
        for snapshot in snapshots:
            self.check_in_scope({"tenantId": snapshot.tenantId, "envId": snapshot.envId})
        # Matches by `seq`, which no Go interval has: a Go interval is never changed.
        operations = [
            UpdateOne(
                {"loadTestRunId": s.loadTestRunId, "seq": s.seq},
                {"$setOnInsert": s.model_dump(mode="python")},
                upsert=True,
            )
            for s in snapshots
        ]
        self.collection.bulk_write(operations, ordered=True)

    @mapped_errors
    def find_for_run(
        self, run_id: str, projection: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        query = self.scoped({"loadTestRunId": run_id})
        fields = _named_by_object_id(projection or {})
        cursor = self.collection.find(query, fields)
        # (run, seq, timestamp) is indexed: sorting on it needs no in-memory sort.
        docs = _as_asked(uncovered(cursor.sort(IN_ORDER)), projection or {})
        return self.screen_all(MetricSnapshot, _numbered(docs))

    @mapped_errors
    def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run `pipeline` on the intervals in scope only (a `$match` goes first)."""
        return list(self.collection.aggregate([{"$match": self.scoped()}, *pipeline]))

    @mapped_errors
    def count_for_run(self, run_id: str) -> int:
        return self.collection.count_documents(self.scoped({"loadTestRunId": run_id}))

    @mapped_errors
    def latest(self, run_id: str) -> dict[str, Any] | None:
        docs = self.collection.find(self.scoped({"loadTestRunId": run_id}), sort=LATEST_FIRST)
        # The latest that can be read (one another program spoiled is left out).
        for doc in self.iter_screened(MetricSnapshot, map(readable_interval, docs)):
            return doc
        return None

    @mapped_errors
    def request_totals(self, run_id: str) -> dict[tuple[str, str], tuple[int, int]]:
        """Each request's summed interval requests and failures over a run (server side)."""
        pipeline: list[dict[str, Any]] = [
            {"$match": self.scoped({"loadTestRunId": run_id})},
            {"$unwind": "$requestStats"},
            {
                "$group": {
                    "_id": {"method": "$requestStats.method", "name": "$requestStats.name"},
                    "requests": {"$sum": "$requestStats.intervalRequests"},
                    "failures": {"$sum": "$requestStats.intervalFailures"},
                }
            },
        ]
        return {
            (str(row["_id"].get("method") or ""), str(row["_id"].get("name") or "")): (
                int(row["requests"] or 0),
                int(row["failures"] or 0),
            )
            for row in self.collection.aggregate(pipeline)
        }

    @mapped_errors
    def last_seq(self, run_id: str) -> int:
        doc = self.collection.find_one(
            self.scoped({"loadTestRunId": run_id}), {"seq": True}, sort=LATEST_FIRST
        )
        if doc is None:
            return 0
        if not isinstance(doc.get("seq"), int):
            # Intervals without seq (the Go service's) are numbered 1, 2, 3… as they are read.
            return self.count_for_run(run_id)
        return int(doc["seq"])

    @mapped_errors
    def delete_for_runs(self, run_ids: list[str]) -> int:
        if not run_ids:
            return 0
        query = self.owned({"loadTestRunId": {"$in": run_ids}})
        return self.collection.delete_many(query).deleted_count

    # -- reads for `metrics show/export/report` (appended; the methods above are the
    #    collector's) -----------------------------------------------------------------------

    def iter_for_run(
        self, run_id: str, projection: dict[str, Any], batch_size: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """A run's intervals in collection order (seq), streamed from the cursor.

        A generator, so a run of 100,000 intervals never sits in memory whole; errors
        raised while iterating are translated too, not only when the query is sent.
        """
        query = self.scoped({"loadTestRunId": run_id})
        with translate_errors(self._uri):
            cursor = self.collection.find(query, _named_by_object_id(projection))
            cursor = cursor.sort(IN_ORDER).batch_size(batch_size)
            try:
                docs = _go_numbered(_as_asked(uncovered(cursor), projection), projection)
                yield from self.iter_screened(MetricSnapshot, docs)
            finally:
                cursor.close()

    def iter_window(
        self,
        run_id: str,
        start: datetime,
        end: datetime | None,
        projection: dict[str, Any],
    ) -> Iterator[dict[str, Any]]:
        """A run's intervals wholly inside [start, end], chosen by the server (intervals
        that say their window, as the plugin's do), in seq order, in the server's own
        batch sizes (up to 16 MB: few round trips for a long run)."""
        bounds: dict[str, Any] = {"windowStart": {"$gte": start}}
        if end is not None:
            bounds["windowEnd"] = {"$lte": end}
        query = self.scoped({"loadTestRunId": run_id, **bounds})
        with translate_errors(self._uri):
            cursor = self.collection.find(query, _named_by_object_id(projection))
            cursor = cursor.sort(IN_ORDER)
            try:
                docs = _as_asked(uncovered(cursor), projection)
                yield from self.iter_screened(MetricSnapshot, docs)
            finally:
                cursor.close()

    @mapped_errors
    def downsampled(
        self, run_id: str, step: int, fields: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A run's intervals merged `step` at a time by the server, in seq order.

        `fields` are `$group` accumulators (`{"users": {"$max": "$currentUsers"}}`); each
        bucket also gets `seq` (its first), `timestamp` (its last) and `intervals`. Seqs
        are 1, 2, 3… from the collector, so `(seq - 1) // step` numbers the buckets and at
        most ceil(last_seq / step) rows come back whatever the run's length. `$group`
        rather than `$bucketAuto`, which mongomock lacks.
        """
        bucket = {"$floor": {"$divide": [{"$max": [0, {"$subtract": ["$seq", 1]}]}, step]}}
        pipeline: list[dict[str, Any]] = [
            {"$match": self.scoped({"loadTestRunId": run_id})},
            {
                "$group": {
                    "_id": bucket,
                    "seq": {"$min": "$seq"},
                    "timestamp": {"$max": "$timestamp"},
                    "intervals": {"$sum": 1},
                    **fields,
                }
            },
            {"$sort": {"_id": 1}},
            {"$project": {"_id": 0}},
        ]
        rows = self.collection.aggregate(pipeline, allowDiskUse=True)
        # `$max` of a field another program filled with text is that text: unknown.
        return [{k: _number(v) if k in fields else v for k, v in row.items()} for row in rows]

    @mapped_errors
    def peaks(self, run_id: str, field_names: list[str]) -> dict[str, float | None]:
        """The largest value of each numeric field over a run's intervals (server side)."""
        pipeline: list[dict[str, Any]] = [
            {"$match": self.scoped({"loadTestRunId": run_id})},
            {"$group": {"_id": None, **{f: {"$max": _either_spelling(f)} for f in field_names}}},
        ]
        rows = list(self.collection.aggregate(pipeline))
        found = rows[0] if rows else {}
        peaks = {f: _number(found.get(f)) for f in field_names}
        return {f: None if value is None else float(value) for f, value in peaks.items()}

    # -- retention (`db prune`): merged windows written first, their originals after ----

    def iter_raw(self, run_id: str, covered: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        """A run's own intervals, whole, in seq order, skipping what merged windows cover
        (appended to `covered`, see `uncovered`); streamed from the cursor."""
        # The run alone in the filter: a server that plans only on indexed fields (as
        # SecantusDB does) walks the (run, seq, time) index. The Go service's intervals
        # (no seq) are left out here, never merged.
        query = self.scoped({"loadTestRunId": run_id})
        with translate_errors(self._uri):
            cursor = self.collection.find(query, {"_id": False}).sort(IN_ORDER).batch_size(500)
            try:
                own = (doc for doc in cursor if _own_seq(doc))
                yield from uncovered(own, covered)
            finally:
                cursor.close()

    @mapped_errors
    def write_merged_windows(self, windows: list[dict[str, Any]]) -> None:
        """Store merged windows, then delete the intervals they cover.

        Each window replaces the first interval of its group in one single-document write
        (atomic on every server): from then on a reader skips the rest of the group
        (`uncovered`). Only once every window of the batch is written are the others
        deleted; a window whose write matched nothing (one covering as much is there
        already) has its originals deleted only when a window covering them is found.
        """
        for window in windows:
            self.check_in_scope(window)
        # Filters on (run, seq) alone, which the index answers on every server: only
        # loadmgr's intervals have a seq, so the Go service's are never matched.
        writes = [ReplaceOne(self.scoped(_first_of(w)), w) for w in windows]
        written = self.collection.bulk_write(writes, ordered=True).matched_count
        if written != len(windows):
            windows = [w for w in windows if self._covers(w)]
        deletes = [DeleteMany(self.scoped(_covered_by(w))) for w in windows]
        if deletes:
            self.collection.bulk_write(deletes, ordered=True)

    def _covers(self, window: dict[str, Any]) -> bool:
        stored = self.collection.find_one(self.scoped(_first_of(window)), {"mergedThrough": True})
        through = (stored or {}).get("mergedThrough")
        return isinstance(through, int) and through >= window["mergedThrough"]

    @mapped_errors
    def delete_covered(self, run_id: str, seq: int, through: int) -> int:
        """Delete the intervals the merged window at `seq` covers (seqs after it, up to
        `through`): idempotent, so a prune run again finishes what a killed one began."""
        window = {"loadTestRunId": run_id, "seq": seq, "mergedThrough": through}
        return self.collection.delete_many(self.scoped(_covered_by(window))).deleted_count

    @mapped_errors
    def drop_own_for_run(self, run_id: str) -> int:
        """Delete a run's own intervals (those with a seq: never the Go service's), by a
        range on the (run, seq) index that every server plans as an index scan."""
        query = self.scoped({"loadTestRunId": run_id, "seq": {"$gte": 0}})
        return self.collection.delete_many(query).deleted_count
