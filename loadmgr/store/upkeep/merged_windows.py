"""Merged windows retention writes over a run's intervals (models/stats/downsample.py):
which stored intervals a merged window holds, and reads that skip those a killed prune
left behind, so every request is counted once at every moment."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from loadmgr.store.upkeep.residual import without


def first_of(window: dict[str, Any]) -> dict[str, Any]:
    """The first interval of a merged window's group (where the window is stored)."""
    return {"loadTestRunId": window["loadTestRunId"], "seq": window["seq"]}


def covered_by(window: dict[str, Any]) -> dict[str, Any]:
    """The other intervals a merged window holds."""
    return {
        "loadTestRunId": window["loadTestRunId"],
        "seq": {"$gt": window["seq"], "$lte": window["mergedThrough"]},
    }


def own_seq(doc: dict[str, Any]) -> bool:
    seq = doc.get("seq")
    return isinstance(seq, int) and not isinstance(seq, bool) and "totalRps" not in doc


def as_asked(
    docs: Iterable[dict[str, Any]], projection: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """`docs` without the fields `_with_go_marker` asked for only to skip covered ones."""
    added = [key for key in ("seq", "mergedThrough") if projection and key not in projection]
    return (without(doc, added) for doc in docs)


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
