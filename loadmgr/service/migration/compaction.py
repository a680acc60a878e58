"""`db migrate`: plain intervals, and those in the older compact forms (encodings 1 and 2),
made compact in the current form (encoding 3) in place (issue 26; docs/storage.md).

Not a schema step: readers read every form, so a database need not be converted before
use, and a large history is converted only when someone asks (`db migrate`), never on a
command's first use. Each interval is one write of its own, made only while it is still in
the form it was read in, so the pass is idempotent and resumable: killed at any point
(SIGKILL included), a run again finds only what is left, and no interval is ever half
converted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loadmgr.errors import left_out
from loadmgr.models.documents.compact import OLDER_ENCODINGS, CompactError, compact_fields

if TYPE_CHECKING:
    from loadmgr.store import Store

PAGE = 200  # intervals read and written at a time: how much a kill can leave to redo
COLLECTION = "metrics_timeseries"
BAR = "intervals into the compact form"  # a bar of its own beside the Go import's
# A line of progress at most this often (in intervals) where no bar shows it.
LINE_EVERY = 10_000
# The forms converted, in this order: plain (None), then encodings 1 and 2.
FORMS = (None, *OLDER_ENCODINGS)


def compact_intervals(
    store: Store,
    *,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None],
    line: Callable[[str], None],
) -> dict[str, int]:
    """Every plain or older-encoding interval of the database made compact in the current
    form; `{examined, changed}` (with `dry_run`, only how many would be examined)."""
    metrics = store.unscoped().metrics
    total = sum(metrics.count_plain(form) for form in FORMS)
    if dry_run or not total:
        return {"examined": total, "changed": 0}
    examined = changed = 0
    progress(BAR, 0, total)
    for form in FORMS:
        after: Any = None
        while True:
            page = metrics.plain_page(after, PAGE, form)
            if not page:
                break
            changed += metrics.make_compact(_changes(page), form)
            before, examined = examined, examined + len(page)
            after = page[-1]["_id"]
            progress(BAR, min(examined, total), total)
            if examined // LINE_EVERY > before // LINE_EVERY:
                line(f"{COLLECTION}: {examined} of {total} intervals examined for compaction")
    progress(BAR, total, total)
    return {"examined": examined, "changed": changed}


def _changes(page: list[dict[str, Any]]) -> list[tuple[Any, dict[str, Any], list[str]]]:
    """What makes each of `page` compact; an older-encoding interval that cannot be read stays
    as it is (every read leaves it out, naming it), named here too."""
    updates = []
    for doc in page:
        try:
            found = compact_fields(doc)
        except CompactError as exc:
            left_out(COLLECTION, doc.get("_id"), f"{exc}; not converted")
            continue
        if found is not None:
            updates.append((doc["_id"], *found))
    return updates
