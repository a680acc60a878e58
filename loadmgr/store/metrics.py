"""The `metrics_timeseries` collection: one document per collected interval."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pymongo import DeleteMany, ReplaceOne, UpdateOne

from loadmgr.errors import left_out
from loadmgr.models import MetricSnapshot
from loadmgr.models.documents.compact import (
    REQUESTS_FIELD,
    compact,
    expanded,
    stored_projection,
    wanted_fields,
)
from loadmgr.models.foreign import readable_interval
from loadmgr.store.base import IndexSpec, Repository, mapped_errors
from loadmgr.store.connection import translate_errors
from loadmgr.store.foreign import NOT_GO_INTERVAL
from loadmgr.store.upkeep import residual
from loadmgr.store.upkeep.merged_windows import as_asked, covered_by, first_of, own_seq, uncovered

# Intervals in the order they were collected: by seq, and by time where there is no seq
# (the Go service's intervals), so every read gets them in the same order.
IN_ORDER = [("seq", 1), ("timestamp", 1)]
LATEST_FIRST = [("seq", -1), ("timestamp", -1)]


def _with_go_marker(projection: dict[str, Any]) -> dict[str, Any]:
    """`projection`, also asking for the field that tells a Go interval (to read it in
    loadmgr's units), and those that tell a merged window (to skip what it covers); an
    interval without them costs nothing more."""
    if any(value is True for key, value in projection.items() if key != "_id"):
        return {**projection, "totalRps": True, "seq": True, "mergedThrough": True}
    return projection


def _named_by_object_id(projection: dict[str, Any]) -> dict[str, Any] | None:
    """`projection` with `_id`, which names an interval that cannot be read (None: all),
    and the compact fields that hold what it names (models/documents/compact.py)."""
    fields = {key: value for key, value in projection.items() if key != "_id"}
    return stored_projection(_with_go_marker(fields)) if fields else None


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


_TOTALED = ("method", "name", "intervalRequests", "intervalFailures")


def _whole(value: Any) -> int:
    """A count as `$sum` reads it: a number as a whole number, anything else 0."""
    number = _number(value)
    return 0 if number is None else int(number)


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

    def _expanded(
        self,
        docs: Iterable[dict[str, Any]],
        projection: dict[str, Any] | None,
        *,
        steps: bool = False,
        fields: frozenset[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """`docs` as plain intervals (the compact form expanded; `steps`: see
        `compact.expand`; of each entry `fields`, else those the projection names); one
        whose compact form cannot be read is left out with one warning naming it."""

        def unreadable(doc: dict[str, Any], why: str) -> None:
            left_out(self.collection.name, doc.get("_id"), why)

        return expanded(docs, fields or wanted_fields(projection), unreadable, steps=steps)

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
                {"$setOnInsert": compact(s.model_dump(mode="python"))},
                upsert=True,
            )
            for s in snapshots
        ]
        self.collection.bulk_write(operations, ordered=True)

    @mapped_errors
    def find_for_run(
        self, run_id: str, projection: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        fields = _named_by_object_id(projection or {})
        cursor = self.collection.find({"loadTestRunId": run_id}, self.with_scope_fields(fields))
        # (run, seq, timestamp) is indexed: sorting on it needs no in-memory sort.
        own = uncovered(self.scope_checked(cursor.sort(IN_ORDER), fields))
        docs = self._expanded(as_asked(own, projection or {}), projection)
        return self.screen_all(MetricSnapshot, list(_go_numbered(docs, {})))

    @mapped_errors
    def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run `pipeline` on the intervals in scope only (a `$match` goes first)."""
        return list(self.collection.aggregate([{"$match": self.scoped()}, *pipeline]))

    @mapped_errors
    def count_for_run(self, run_id: str) -> int:
        return self.count_in_scope({"loadTestRunId": run_id})

    @mapped_errors
    def latest(self, run_id: str) -> dict[str, Any] | None:
        docs = self.collection.find({"loadTestRunId": run_id}, sort=LATEST_FIRST)
        # The latest that can be read (one another program spoiled is left out).
        readable = map(readable_interval, self._expanded(self.scope_checked(docs, None), None))
        for doc in self.iter_screened(MetricSnapshot, readable):
            return doc
        return None

    @mapped_errors
    def request_totals(self, run_id: str) -> dict[tuple[str, str], tuple[int, int]]:
        """Each request's summed interval requests and failures over a run: the server's
        sums over plain intervals, this process's over compact ones (their items are one
        binary the server cannot unwind). Each pipeline's first `$match` names the run
        alone, so SecantusDB lifts it onto the run's index (whether an interval is compact,
        and the scope, are matched after it)."""
        run = {"$match": {"loadTestRunId": run_id}}
        pipeline: list[dict[str, Any]] = [
            run,
            {"$match": {REQUESTS_FIELD: {"$exists": False}}},
            *self.scope_stage(),
            {"$unwind": "$requestStats"},
            {
                "$group": {
                    "_id": {"method": "$requestStats.method", "name": "$requestStats.name"},
                    "requests": {"$sum": "$requestStats.intervalRequests"},
                    "failures": {"$sum": "$requestStats.intervalFailures"},
                }
            },
        ]
        totals = {
            (str(row["_id"].get("method") or ""), str(row["_id"].get("name") or "")): (
                int(row["requests"] or 0),
                int(row["failures"] or 0),
            )
            for row in self.collection.aggregate(pipeline)
        }
        fields = [f"requestStats.{name}" for name in _TOTALED]
        compact_ones: list[dict[str, Any]] = [
            run,
            {"$match": {REQUESTS_FIELD: {"$exists": True}, **self.scope.query()}},
            {"$project": _named_by_object_id(dict.fromkeys(fields, True))},
        ]
        cursor = self.collection.aggregate(compact_ones)
        for doc in self._expanded(cursor, dict.fromkeys(fields, True)):
            for item in doc.get("requestStats") or ():
                key = (str(item.get("method") or ""), str(item.get("name") or ""))
                requests, failures = totals.get(key, (0, 0))
                totals[key] = (
                    requests + _whole(item.get("intervalRequests")),
                    failures + _whole(item.get("intervalFailures")),
                )
        return totals

    @mapped_errors
    def last_seq(self, run_id: str) -> int:
        fields = {"seq": True}
        cursor = self.collection.find(
            {"loadTestRunId": run_id}, self.with_scope_fields(fields), sort=LATEST_FIRST
        )
        doc = next(self.scope_checked(cursor, fields), None)
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

    # -- `db migrate`: plain intervals made compact in place -------------------------------

    # loadmgr's intervals not yet compact (the Go service's are never rewritten).
    PLAIN = {"encoding": {"$exists": False}, **NOT_GO_INTERVAL}

    def _in_form(self, encoding: int | None) -> dict[str, Any]:
        """loadmgr's intervals in `encoding` (None: plain)."""
        return self.PLAIN if encoding is None else {"encoding": encoding, **NOT_GO_INTERVAL}

    @mapped_errors
    def count_plain(self, encoding: int | None = None) -> int:
        return self.collection.count_documents(self.scoped(self._in_form(encoding)))

    @mapped_errors
    def plain_page(
        self, after: Any, limit: int, encoding: int | None = None
    ) -> list[dict[str, Any]]:
        """Up to `limit` intervals not yet compact (or in `encoding`), after `_id` `after`,
        in `_id` order."""
        form = self._in_form(encoding)
        query = self.scoped(form if after is None else {**form, "_id": {"$gt": after}})
        return list(self.collection.find(query).sort("_id", 1).limit(limit))

    @mapped_errors
    def make_compact(
        self, changes: list[tuple[Any, dict[str, Any], list[str]]], encoding: int | None = None
    ) -> int:
        """Each interval (`_id`, fields to set, fields to unset) made compact in one write
        of its own, only while it is still plain (or in `encoding`): a second migration, or
        one racing this, changes nothing again. Returns how many changed."""
        operations = [
            UpdateOne(
                {"_id": object_id, **self._in_form(encoding)},
                {"$set": fields, **({"$unset": dict.fromkeys(gone, "")} if gone else {})},
            )
            for object_id, fields, gone in changes
        ]
        if not operations:
            return 0
        return self.collection.bulk_write(operations, ordered=False).modified_count

    # -- reads for `metrics show/export/report` (appended; the methods above are the
    #    collector's) -----------------------------------------------------------------------

    def iter_for_run(
        self, run_id: str, projection: dict[str, Any], batch_size: int = 1000, steps: bool = False
    ) -> Iterator[dict[str, Any]]:
        """A run's intervals in collection order (seq), streamed from the cursor (a run of
        100,000 intervals never sits in memory whole); errors raised while iterating are
        translated too. `steps`: compact histograms as checked flat arrays (`STEPS_FIELD`).
        """
        fields = _named_by_object_id(projection)
        with translate_errors(self._uri):
            cursor = self.collection.find({"loadTestRunId": run_id}, self.with_scope_fields(fields))
            cursor = cursor.sort(IN_ORDER).batch_size(batch_size)
            try:
                own = uncovered(self.scope_checked(cursor, fields))
                plain = self._expanded(as_asked(own, projection), projection, steps=steps)
                docs = _go_numbered(plain, projection)
                yield from self.iter_screened(MetricSnapshot, docs)
            finally:
                cursor.close()

    def iter_window(
        self,
        run_id: str,
        start: datetime,
        end: datetime | None,
        projection: dict[str, Any],
        *,
        steps: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """A run's intervals wholly inside [start, end], chosen by the server (intervals
        that say their window, as the plugin's do), in seq order, in the server's own
        batch sizes (up to 16 MB: few round trips for a long run). `steps`: compact
        histograms as checked flat arrays (`compact.STEPS_FIELD`), not as text.

        Asked by the run and a range on `timestamp` (an interval's window end: the
        collector's and a merged window's), the (run, timestamp) index's fields; the
        window is checked here (`residual.in_window`: docs/storage.md, "Indexes")."""
        fields, added = residual.with_window(_named_by_object_id(projection))
        with translate_errors(self._uri):
            ended = {"$gte": start, **({"$lte": end} if end is not None else {})}
            query = {"loadTestRunId": run_id, "timestamp": ended}
            cursor = self.collection.find(query, self.with_scope_fields(fields)).sort(IN_ORDER)
            try:
                found = residual.in_window(self.scope_checked(cursor, fields), start, end, added)
                asked = as_asked(uncovered(found), projection)
                docs = self._expanded(asked, projection, steps=steps)
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
            {"$match": {"loadTestRunId": run_id}},
            *self.scope_stage(),
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
    def peaks(
        self, run_id: str, field_names: list[str], also: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The largest value of each numeric field over a run's intervals (server side);
        `also`: more `$group` accumulators of the same pass, each a number or None."""
        more = also or {}
        peaks = {f: {"$max": _either_spelling(f)} for f in field_names}
        pipeline: list[dict[str, Any]] = [
            {"$match": {"loadTestRunId": run_id}},
            *self.scope_stage(),
            {"$group": {"_id": None, **peaks, **more}},
        ]
        found = next(iter(self.collection.aggregate(pipeline)), {})
        maxima = {f: _number(found.get(f)) for f in field_names}
        result = {f: None if value is None else float(value) for f, value in maxima.items()}
        return {**result, **{key: _number(found.get(key)) for key in more}}

    # -- retention (`db prune`): merged windows written first, their originals after ----

    def iter_raw(
        self, run_id: str, covered: list[tuple[int, int]], fields: frozenset[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """A run's own intervals, whole (of each entry, only `fields` if given), in seq
        order, skipping what merged windows cover (appended to `covered`, see `uncovered`)."""
        # The run alone in the filter: a server that plans only on indexed fields (as
        # SecantusDB does) walks the (run, seq, time) index. The Go service's intervals
        # (no seq) are left out here, never merged.
        with translate_errors(self._uri):
            cursor = self.collection.find({"loadTestRunId": run_id}, {"_id": False})
            cursor = cursor.sort(IN_ORDER).batch_size(500)
            try:
                own = (doc for doc in self.scope_checked(cursor, None) if own_seq(doc))
                # Merged as plain intervals with their histograms as checked steps (the
                # compact form expanded, no text), stored compact.
                plain = uncovered(own, covered)
                yield from self._expanded(plain, None, steps=True, fields=fields)
            finally:
                cursor.close()

    @mapped_errors
    def write_merged_windows(self, windows: list[dict[str, Any]]) -> None:
        """Store merged windows (plain, or compact already), then delete the intervals
        they cover.

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
        writes = [ReplaceOne(self.where_in_scope(first_of(w)), compact(w)) for w in windows]
        written = self.collection.bulk_write(writes, ordered=True).matched_count
        if written != len(windows):
            windows = [w for w in windows if self._covers(w)]
        deletes = [DeleteMany(self.where_in_scope(covered_by(w))) for w in windows]
        if deletes:
            self.collection.bulk_write(deletes, ordered=True)

    def _covers(self, window: dict[str, Any]) -> bool:
        fields = {"mergedThrough": True}
        cursor = self.collection.find(first_of(window), self.with_scope_fields(fields))
        through = (next(self.scope_checked(cursor, fields), None) or {}).get("mergedThrough")
        return isinstance(through, int) and through >= window["mergedThrough"]

    @mapped_errors
    def delete_covered(self, run_id: str, seq: int, through: int) -> int:
        """Delete the intervals the merged window at `seq` covers (seqs after it, up to
        `through`): idempotent, so a prune run again finishes what a killed one began."""
        window = {"loadTestRunId": run_id, "seq": seq, "mergedThrough": through}
        return self.collection.delete_many(self.where_in_scope(covered_by(window))).deleted_count

    @mapped_errors
    def drop_own_for_run(self, run_id: str) -> int:
        """Delete a run's own intervals (those with a seq: never the Go service's), by a
        range on the (run, seq) index that every server plans as an index scan."""
        query = self.where_in_scope({"loadTestRunId": run_id, "seq": {"$gte": 0}})
        return self.collection.delete_many(query).deleted_count
