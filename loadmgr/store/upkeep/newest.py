"""Newest-first reads that cost what they return, not the whole history.

SecantusDB (the embedded server) answers a sorted `find` by building every candidate its
index range holds, sorting them in Python and only then applying the limit: the 30
newest runs of a test with 10,000 runs built all 10,000 (2.9 s at bench case 13's full
size), and `runs list`'s 50 newest built the whole collection. So these reads ask in
`createdAt` windows, newest first: (T - 1 h, T], then the next older window twice as
long, and so on. Each window is a range the index bounds, so the server builds only that
window's documents; the caller reads lazily and the walk stops when it has what it needs.

Windows are half-open, (lo, hi], and each one's `lo` is the next one's `hi`, so a run
created exactly on an edge is read once, in the newer window; within a window the server
sorts as the whole query would have. The newest window has no upper end when no `until`
is asked (a run dated in the future comes first, as before), and the walk ends with the
window with no lower end once `lo` passes `FLOOR`: ~log2(span / first window) windows,
about 19 from now to 1970. Without a `since` or `until` the walk ends with the documents
whose `createdAt` is null or absent (the Go service's, which date themselves
`createdat`): they sort after every date, newest first.

An ascending `find(...).sort(createdAt, 1).limit(1)` for the real oldest date is no
cheaper on SecantusDB (it builds the same candidates), hence the fixed `FLOOR`.
docs/storage.md, "Newest first in windows".
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo.collection import Collection

from loadmgr.models.documents.base import as_utc as _utc

FIRST_WINDOW = timedelta(hours=1)
# Below this the walk asks one last window open at the bottom (any older date at all).
FLOOR = datetime(1970, 1, 1, tzinfo=timezone.utc)


def served(indexes: Iterable[Sequence[tuple[str, int]]], equal: Mapping[str, Any]) -> bool:
    """Whether one of `indexes` (each its keys) bounds a window of `equal`: its keys
    are `equal`'s fields (equalities only, in any order), then `createdAt`. SecantusDB
    bounds a range only on the key right after the equalities, so without such an index
    each window would build every match again (`--tenant` alone, whose index also holds
    `envId`, keeps the one sorted read)."""
    if any(key.startswith("$") or isinstance(value, dict) for key, value in equal.items()):
        return False
    wanted = len(equal)
    return any(
        len(keys) > wanted
        and {key for key, _ in keys[:wanted]} == set(equal)
        and keys[wanted] == ("createdAt", -1)
        for keys in indexes
    )


def in_windows(
    collection: Collection[dict[str, Any]],
    equal: Mapping[str, Any],
    order: list[tuple[str, int]],
    projection: Mapping[str, Any] | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 0,
    now: datetime | None = None,
) -> Generator[dict[str, Any], None, None]:
    """The documents matching `equal` (equalities on indexed fields only) with `createdAt`
    in [since, until], in `order` (which must start with `equal`'s fields, then
    `createdAt` descending), read window by window; stop iterating to stop reading.

    `batch`: the cursor's batch size (0: the server's). `now`: the newest window's upper
    edge when no `until` is given (the wall clock; tests pin it).
    """
    top = _utc(until) if until is not None else None
    hi = top or _utc(now or datetime.now(timezone.utc))
    bottom = _utc(since) if since is not None else None
    width = FIRST_WINDOW
    first = True
    while True:
        lo = hi - width if hi - FLOOR > width else None
        if bottom is not None and (lo is None or lo <= bottom):
            lo = None
        created: dict[str, Any] = {}
        if lo is not None:
            created["$gt"] = lo
        elif bottom is not None:
            created["$gte"] = bottom
        if not first or top is not None:
            created["$lte"] = hi
        if not created:  # the first window reaches past the floor: one read of all dates
            created["$type"] = "date"
        yield from _read(collection, {**equal, "createdAt": created}, order, projection, batch)
        if lo is None:
            break
        hi, width, first = lo, width * 2, False
    if since is None and until is None:
        yield from _read(collection, {**equal, "createdAt": None}, order, projection, batch)


def _read(
    collection: Collection[dict[str, Any]],
    query: dict[str, Any],
    order: list[tuple[str, int]],
    projection: Mapping[str, Any] | None,
    batch: int,
) -> Generator[dict[str, Any], None, None]:
    cursor = collection.find(query, projection).sort(order)
    if batch:
        cursor = cursor.batch_size(batch)
    try:
        yield from cursor
    finally:
        cursor.close()
