"""`db migrate`: plain intervals made compact in place (issue 26; docs/storage.md).

Not a schema step: readers read both forms, so a database need not be converted before
use, and a large history is converted only when someone asks (`db migrate`), never on a
command's first use. Each interval is one write of its own, made only while it is still
plain, so the pass is idempotent and resumable: killed at any point (SIGKILL included), a
run again finds only what is left, and no interval is ever half converted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loadmgr.models.documents.compact import compact_fields

if TYPE_CHECKING:
    from loadmgr.store import Store

PAGE = 200  # intervals read and written at a time: how much a kill can leave to redo
COLLECTION = "metrics_timeseries"
BAR = "intervals into the compact form"  # a bar of its own beside the Go import's
# A line of progress at most this often (in intervals) where no bar shows it.
LINE_EVERY = 10_000


def compact_intervals(
    store: Store,
    *,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None],
    line: Callable[[str], None],
) -> dict[str, int]:
    """Every plain interval of the database made compact; `{examined, changed}` (with
    `dry_run`, only how many would be examined)."""
    metrics = store.unscoped().metrics
    total = metrics.count_plain()
    if dry_run or not total:
        return {"examined": total, "changed": 0}
    examined = changed = 0
    after: Any = None
    progress(BAR, 0, total)
    while True:
        page = metrics.plain_page(after, PAGE)
        if not page:
            break
        updates = []
        for doc in page:
            found = compact_fields(doc)
            if found is not None:
                updates.append((doc["_id"], *found))
        changed += metrics.make_compact(updates)
        before, examined = examined, examined + len(page)
        after = page[-1]["_id"]
        progress(BAR, min(examined, total), total)
        if examined // LINE_EVERY > before // LINE_EVERY:
            line(f"{COLLECTION}: {examined} of {total} intervals examined for compaction")
    progress(BAR, total, total)
    return {"examined": examined, "changed": changed}
