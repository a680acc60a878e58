"""What a hot read checks in loadmgr's process rather than sending: the rest of its
filter beyond the fields of the index that serves it.

SecantusDB (the embedded server) plans an index only when it holds every field of the
filter: one field more (a run's status, its final stats, an interval's window bounds)
and it scans the whole collection. So those reads send the indexed fields alone, fetch
the few fields the rest needs (`with_*`), check each document as the server would have
(`finished_with_stats`, `ended_and_own`, `in_window`) and drop what they fetched only to
check (`without`). docs/storage.md, "Indexes".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from loadmgr.models import RunStatus
from loadmgr.models.documents.base import as_utc
from loadmgr.store.foreign import NOT_GO_WRITTEN

# -- a test's history (`RunRepository.history`) -----------------------------------------

FINISHED = RunStatus.FINISHED.value


def asks_final_stats(asked: Mapping[str, Any]) -> bool:
    return any(key == "finalStats" or key.startswith("finalStats.") for key in asked)


def with_finished_marks(asked: dict[str, Any]) -> dict[str, Any]:
    """`asked`, also fetching what tells a finished run with final stats: its `status`,
    and a path under `finalStats` (a run's `finalStats` comes back, as `{}` at least,
    only when it is a document: null or absent, it does not)."""
    marks = {} if asks_final_stats(asked) else {"finalStats.totals": True}
    return {**asked, "status": True, **marks}


def finished_with_stats(doc: Mapping[str, Any]) -> bool:
    """The server's `{status: "Finished", finalStats: {$ne: null}}` on a run fetched with
    `with_finished_marks` (final stats that are not a document count as none)."""
    return doc.get("status") == FINISHED and isinstance(doc.get("finalStats"), dict | list)


def finished_marks(asked: Mapping[str, Any]) -> list[str]:
    """The fields `with_finished_marks` fetched that `asked` did not ask for."""
    added = [] if "status" in asked else ["status"]
    return added if asks_final_stats(asked) else [*added, "finalStats"]


# -- runs that ended (`RunRepository.ended_page`) ---------------------------------------

# The fields whose presence tells a run the Go service wrote (`NOT_GO_WRITTEN`: each one
# absent), fetched to check that a run is loadmgr's own.
OWNER_MARKS = [field for field, rule in NOT_GO_WRITTEN.items() if rule == {"$exists": False}]
if len(OWNER_MARKS) != len(NOT_GO_WRITTEN):  # pragma: no cover - a change of that rule
    raise RuntimeError("a run's owner must be told by absent fields to be checked here")


def ended_and_own(doc: Mapping[str, Any], active: Iterable[str]) -> bool:
    """The server's `{status: {$nin: active}, createdat: {$exists: false}}` on `doc` (a
    status that is absent is not an active one)."""
    return doc.get("status") not in set(active) and not any(f in doc for f in OWNER_MARKS)


# -- an interval's window (`MetricsRepository.iter_window`) -----------------------------

WINDOW = ("windowStart", "windowEnd")


def with_window(fields: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """An interval's projection (None: whole) also fetching its window's bounds; and
    the bounds it added."""
    added = [key for key in WINDOW if fields and key not in fields]
    return ({**fields, **dict.fromkeys(added, True)} if fields else None), added


def in_window(
    docs: Iterable[dict[str, Any]], start: datetime, end: datetime | None, added: list[str]
) -> Iterator[dict[str, Any]]:
    """The intervals of `docs` wholly inside [start, end] (`within`), without the fields
    `with_window` `added`. An interval whose window ends at its `timestamp`, as every one
    loadmgr writes with a window does, is among those a [start, end] range on its
    `timestamp` finds: the range narrows the read to the window, this decides."""
    for doc in docs:
        if within(doc, start, end):
            yield without(doc, added)


def within(doc: Mapping[str, Any], start: datetime, end: datetime | None) -> bool:
    """The server's `{windowStart: {$gte: start}, windowEnd: {$lte: end}}` on `doc`."""
    began, ended = doc.get("windowStart"), doc.get("windowEnd")
    if not isinstance(began, datetime) or as_utc(began) < as_utc(start):
        return False
    return end is None or (isinstance(ended, datetime) and as_utc(ended) <= as_utc(end))


def without(doc: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """`doc` without `fields` (fetched only to check it)."""
    for field in fields:
        doc.pop(field, None)
    return doc
