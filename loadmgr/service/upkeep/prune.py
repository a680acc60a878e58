"""`db prune`: apply the retention policies to the runs that ended, once at a time.

For each ended run a policy covers, by its age since it finished: past `--drop-runs-after`
the run and its intervals go; past `--drop-intervals-after` its intervals go (the run, its
final stats, verdict and checks stay); past `--keep-detail` its intervals are merged into
windows of `--downsample` (models/stats/downsample.py). A live run is never touched: only
runs that ended are read, and every write says so again in its filter.

Killed at any moment and run again, nothing is half done: a merged window replaces the
first interval of its group in one single-document write, and only then are the others
deleted (readers skip what a merged window covers meanwhile); a run is deleted only after
its intervals, and marked downsampled only after its windows. The downsampling's writes
go through one thread of their own, in order (`writer.py`), while the next run is read
and merged here. One prune per scope at a time holds a lease; a second is refused (exit 5),
and a tick's daily prune skips.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from loadmgr.errors import Conflict, LoadmgrError
from loadmgr.models.documents.base import as_utc
from loadmgr.models.documents.compact import compact
from loadmgr.models.documents.retention import Rules, combined
from loadmgr.models.stats.downsample import merge, windows
from loadmgr.service.upkeep.reader import ReadAhead
from loadmgr.service.upkeep.writer import Writer

if TYPE_CHECKING:
    from loadmgr.models.documents.retention import RetentionPolicy
    from loadmgr.store import Store

Notify = Callable[[str], None]

LEASE_SEC = 300  # renewed every LEASE_SEC / 5 while pruning: a killed prune frees it soon
WINDOWS_PER_WRITE = 200  # merged windows written (then their originals deleted) per batch
RUN_FIELDS = ["id", "loadTestId", "status", "finishedAt", "startedAt", "createdAt", "intervalsKept"]


@dataclass
class Pruned:
    """What a prune did (or, `dryRun`, would do)."""

    dryRun: bool = False
    policies: int = 0
    runsExamined: int = 0
    runsDropped: int = 0
    runsWithIntervalsDropped: int = 0
    intervalsDropped: int = 0
    runsDownsampled: int = 0
    intervalsMerged: int = 0
    windowsWritten: int = 0
    leftoversFinished: int = 0  # intervals a killed prune had merged but not yet deleted
    seconds: float = 0.0
    intervalsPerSec: float | None = None
    droppedRunIds: list[str] = field(default_factory=list)


def prune_history(
    store: Store,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    notify: Notify = lambda _line: None,
) -> dict[str, Any]:
    """Apply every retention policy of the scope (see the module's docstring)."""
    began = time.monotonic()
    result = Pruned(dryRun=dry_run)
    policies = store.retention.all()
    result.policies = len(policies)
    if not policies:
        return asdict(result)
    now = now or store.server_now()
    with _lease(store, dry_run) as renew, Writer() as writer:
        members = _tag_members(store, policies)
        after: Any = None
        while True:
            page = store.runs.ended_page(after, RUN_FIELDS)
            if not page:
                break
            after = page[-1]["id"]
            marks: dict[int, list[str]] = {}  # runs downsampled to each step, marked at once
            todo: list[tuple[dict[str, Any], Rules]] = []
            for run in page:
                rules = combined(_matching(policies, run, members))
                if rules is not None and isinstance(run.get("id"), str):
                    todo.append((run, rules))
            ahead = [run["id"] for run, rules in todo if _downsample_step(run, rules, now)]
            with ReadAhead(store.metrics.iter_raw, ahead) as reader:
                for run, rules in todo:
                    renew()
                    result.runsExamined += 1
                    _apply(store, (writer, reader), run, rules, now, result, marks)
            if marks and not dry_run:
                writer.put(partial(_mark, store, marks, now))
        writer.drain()
    result.seconds = round(time.monotonic() - began, 3)
    handled = result.intervalsMerged + result.intervalsDropped
    if handled and result.seconds > 0:
        result.intervalsPerSec = round(handled / result.seconds, 1)
    return asdict(result)


def _matching(
    policies: list[RetentionPolicy], run: dict[str, Any], members: dict[str, set[str]]
) -> list[RetentionPolicy]:
    test_id = run.get("loadTestId")
    return [
        p
        for p in policies
        if (p.testId and p.testId == test_id)
        or (p.tag and test_id in members.get(p.tag, set()))
        or (not p.testId and not p.tag)
    ]


def _tag_members(store: Store, policies: list[RetentionPolicy]) -> dict[str, set[str]]:
    """The tests carrying each tag a policy names."""
    tags = {p.tag for p in policies if p.tag}
    return {tag: {d["id"] for d in store.tests.find_many(tags=[tag], limit=0)} for tag in tags}


def _age(run: dict[str, Any], now: datetime) -> float | None:
    ended = run.get("finishedAt") or run.get("startedAt") or run.get("createdAt")
    if not isinstance(ended, datetime):
        return None  # a run that never says when it ended is kept whole
    return (as_utc(now) - as_utc(ended)).total_seconds()


def _apply(
    store: Store,
    threads: tuple[Writer, ReadAhead],
    run: dict[str, Any],
    rules: Rules,
    now: datetime,
    result: Pruned,
    marks: dict[int, list[str]],
) -> None:
    age = _age(run, now)
    if age is None:
        return
    run_id = run["id"]
    dry = result.dryRun
    kept = run.get("intervalsKept") or {}
    if rules.drop_runs_after is not None and age >= rules.drop_runs_after:
        # Its intervals first: a run deleted first would leave them where none looks.
        result.intervalsDropped += (
            store.metrics.count_for_run(run_id) if dry else store.metrics.drop_own_for_run(run_id)
        )
        if dry or store.runs.delete_ended(run_id):
            result.runsDropped += 1
            result.droppedRunIds.append(run_id)
    elif rules.drop_intervals_after is not None and age >= rules.drop_intervals_after:
        if kept.get("state") == "dropped":
            return
        result.intervalsDropped += (
            store.metrics.count_for_run(run_id) if dry else store.metrics.drop_own_for_run(run_id)
        )
        result.runsWithIntervalsDropped += 1
        if not dry:
            store.runs.set_intervals_kept([run_id], {"state": "dropped", "at": now})
    else:
        step = _downsample_step(run, rules, now)
        if step is None:
            return
        merged, intervals = _downsample(store, threads, run_id, step, result)
        # Marked so the next prune skips it; a run without intervals is not: marking it
        # costs the server more than looking again (one indexed read).
        if merged or (intervals and not kept):
            result.runsDownsampled += 1
            marks.setdefault(step, []).append(run_id)


def _downsample_step(run: dict[str, Any], rules: Rules, now: datetime) -> int | None:
    """The step `run` is to be downsampled to now (`_apply`'s last branch), or None."""
    age = _age(run, now)
    if age is None or rules.downsample is None or age < rules.keep_detail:
        return None
    for drop_after in (rules.drop_runs_after, rules.drop_intervals_after):
        if drop_after is not None and age >= drop_after:
            return None  # `_apply`'s first two branches
    kept = run.get("intervalsKept") or {}
    if kept.get("state") == "downsampled" and (kept.get("resolutionSec") or 0) >= rules.downsample:
        return None
    return rules.downsample


def _mark(store: Store, marks: dict[int, list[str]], now: datetime) -> None:
    """Mark runs downsampled (after their windows: the writer's order), a write per step."""
    for step, run_ids in marks.items():
        done = {"state": "downsampled", "resolutionSec": step, "at": now}
        store.runs.set_intervals_kept(run_ids, done)


def _downsample(
    store: Store, threads: tuple[Writer, ReadAhead], run_id: str, step: int, result: Pruned
) -> tuple[bool, bool]:
    """Merge a run's intervals into windows of `step` seconds: whether any were, and
    whether the run has any intervals."""
    writer, reader = threads
    covered: list[tuple[int, int]] = []
    batch: list[dict[str, Any]] = []
    merged_any = False
    read_any = False

    def raw() -> Iterator[dict[str, Any]]:
        nonlocal read_any
        for interval in reader.intervals(run_id, covered):
            read_any = True
            yield interval

    for group in windows(raw(), step):
        batch.append(merge(group, step))
        result.intervalsMerged += len(group)
        merged_any = True
        if len(batch) >= WINDOWS_PER_WRITE:
            _write(store, writer, batch, result)
            batch = []
    _write(store, writer, batch, result)
    if covered and not result.dryRun:
        writer.put(lambda: _finish_leftovers(store, run_id, covered, result))
    return merged_any, read_any


def _finish_leftovers(
    store: Store, run_id: str, covered: list[tuple[int, int]], result: Pruned
) -> None:
    """Delete the originals a killed prune had not deleted yet (their window is there)."""
    for seq, through in covered:
        result.leftoversFinished += store.metrics.delete_covered(run_id, seq, through)


def _write(store: Store, writer: Writer, batch: list[dict[str, Any]], result: Pruned) -> None:
    result.windowsWritten += len(batch)
    if result.dryRun or not batch:
        return
    # Made compact here, not on the writer's thread: that thread is the prune's critical
    # path (the server's writes), and this CPU would keep it from the GIL between them.
    stored = [compact(window) for window in batch]
    # Every window before any of its originals goes (store/metrics.py, write_merged).
    writer.put(lambda: store.metrics.write_merged_windows(stored))


class _lease:
    """The scope's prune lease, held while pruning and renewed as it goes (a dry run
    writes nothing and needs none). Conflict (exit 5) while another prune holds it; a
    holder that was on this machine and is gone (killed) is taken over at once."""

    def __init__(self, store: Store, dry_run: bool) -> None:
        from loadmgr.service.runs.lease import process_here
        from loadmgr.store.upkeep.retention import lease_key

        self.store = store
        self.needed = not dry_run
        self.key = lease_key(store.scope.tenant, store.scope.env)
        # Who holds it, so a prune run after a killed one knows it can take over.
        self.token = json.dumps({**process_here(os.getpid()), "nonce": uuid.uuid4().hex})
        self.renewed = 0.0

    def __enter__(self) -> Callable[[], None]:
        if self.needed:
            if not self._acquire():
                raise Conflict(
                    "another 'db prune' is applying retention in this scope",
                    hint="it does the work; run again once it has finished",
                )
            self.renewed = time.monotonic()
        return self.renew

    def _acquire(self) -> bool:
        from loadmgr.service.runs.lease import collector_gone

        leases, now = self.store.leases, self.store.server_now()
        if leases.acquire(self.key, self.token, now, LEASE_SEC):
            return True
        holder = str((leases.holder(self.key) or {}).get("runId") or "")
        try:
            recorded = json.loads(holder)
        except ValueError:
            return False
        if not isinstance(recorded, dict) or not collector_gone(recorded):
            return False
        # Released only if still that holder's: of two prunes taking over, one wins.
        leases.release(self.key, holder)
        return leases.acquire(self.key, self.token, now, LEASE_SEC)

    def renew(self) -> None:
        if self.needed and time.monotonic() - self.renewed > LEASE_SEC / 5:
            if not self.store.leases.renew(
                self.key, self.token, self.store.server_now(), LEASE_SEC
            ):
                raise Conflict("the prune's lease was lost (stopped for too long?)")
            self.renewed = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        if self.needed:
            self.store.leases.release(self.key, self.token)


DAILY = timedelta(days=1)


def daily_prune(store: Store, now: datetime, notify: Notify) -> dict[str, Any] | None:
    """`schedules tick`'s prune: once a day per scope when there are policies, by the
    one tick that claims the day (compare-and-set), under the prune's lease; what it did,
    or None (no policies, not due, another prune running or failed: said in one line)."""
    if not store.retention.any() or not store.retention.claim_daily_prune(now, now - DAILY):
        return None
    try:
        result = prune_history(store, now=now)
    except Conflict:
        notify("retention: another 'db prune' is running: the daily prune is left to it")
        return None
    except LoadmgrError as exc:
        notify(f"retention: the daily prune failed: {exc.message}")
        return None
    notify(
        f"retention: merged {result['intervalsMerged']} intervals into "
        f"{result['windowsWritten']} windows, dropped {result['intervalsDropped']} intervals "
        f"and {result['runsDropped']} runs"
    )
    return result
