"""`schedules tick`: start every due slot once, whichever machines tick at the same time.

Cron (or a systemd timer) calls it every minute on one machine or many. One indexed query
finds the unpaused schedules whose next slot has come; for each, the tick claims the slot
by moving `nextSlotAt` on from the value it read (compare-and-set: one winner, the others
match nothing), then starts the run detached and returns without waiting for the load.

A slot no tick saw at its minute is still started within the schedule's grace; older
ones are recorded `missed`, and of several due at once only the newest is started (never
a burst of catch-up runs).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from loadmgr.errors import ClusterBusy, DatabaseError, LoadmgrError
from loadmgr.models import utcnow
from loadmgr.models.formatting import format_timestamp
from loadmgr.models.schedules import (
    Schedule,
    ScheduleSlot,
    SlotOutcome,
    occurrences_after,
    slots_due,
    trigger_of,
)
from loadmgr.service.documents import stamp_for
from loadmgr.service.scheduling.schedules import count_result, run_options

if TYPE_CHECKING:
    from loadmgr.config import Settings
    from loadmgr.store import Store

# At most this many missed slots are recorded per schedule and tick (a `* * * * *`
# schedule left a month without ticks would otherwise write 40,000 records at once).
MISSED_RECORD_MAX = 100
# Due schedules one tick handles, the longest due first (each may start a collector, a
# process of its own): any writer of the database may store any number. The next tick,
# a minute later, takes the rest.
MAX_SCHEDULES_PER_TICK = 50

Notify = Callable[[str], None]
# How long a tick asks a remote Locust whether it is busy before starting a slot there.


def tick(
    store: Store, settings: Settings, notify: Notify, now: datetime | None = None
) -> list[ScheduleSlot]:
    """Handle every due slot in scope; the slots this tick recorded (none: nothing due).

    `now` defaults to the database server's clock, the same for every ticking machine.
    """
    now = now or store.server_now()
    handled: list[ScheduleSlot] = []
    due, unreadable = store.schedules.find_due(now, limit=MAX_SCHEDULES_PER_TICK + 1)
    for message in unreadable:
        notify(f"skipped: {message}")
    if len(due) + len(unreadable) > MAX_SCHEDULES_PER_TICK:
        left = store.schedules.count_due(now) - MAX_SCHEDULES_PER_TICK
        notify(f"{left} more due schedules are left for the next tick (a tick handles at "
               f"most {MAX_SCHEDULES_PER_TICK})")  # fmt: skip
    for schedule in due[: MAX_SCHEDULES_PER_TICK - len(unreadable)]:
        handled.extend(_tick_schedule(store, settings, schedule, now, notify))
    # Retention, once a day when policies exist (after the slots: they start on time).
    from loadmgr.service.upkeep.prune import daily_prune

    daily_prune(store, now, notify)
    return handled


def _tick_schedule(
    store: Store, settings: Settings, schedule: Schedule, now: datetime, notify: Notify
) -> list[ScheduleSlot]:
    due = slots_due(
        schedule.cron, schedule.timezone, schedule.nextSlotAt, now, MISSED_RECORD_MAX + 1
    )
    refusal = _local_code_refused(store, schedule)
    if refusal is not None:
        # Not claimed: a machine that allows it may start the slot (else it is missed).
        notify(f"schedule {schedule.name!r}: not started here: {refusal}")
        return []
    following = occurrences_after(schedule.cron, schedule.timezone, now)[0]
    ticker = f"tick@{socket.gethostname()}"
    newest = due[-1] if due else None
    late = newest is None or now - newest > timedelta(seconds=schedule.graceSec)
    changes: dict[str, object] = {
        "nextSlotAt": following,
        "updatedAt": utcnow(),
        "updatedBy": ticker,
    }
    if newest is not None:  # none: a stored second pass of a fixed time, which never runs
        changes["lastSlotAt"] = newest
        changes["lastOutcome"] = (SlotOutcome.MISSED if late else SlotOutcome.STARTING).value
    claimed = store.schedules.claim(schedule.id, schedule.nextSlotAt, changes)
    if not claimed:
        return []  # another machine's tick has it
    grace = f"more than {schedule.graceSec}s late (the schedule's grace) when a tick saw it"
    missed = [
        _slot(schedule, slot, SlotOutcome.MISSED, ticker, reason=grace)
        for slot in (due if late else due[:-1])
    ]
    store.schedule_slots.record_many(missed)
    for record in missed:
        notify(f"schedule {schedule.name!r}: slot {format_timestamp(record.slot)} missed")
    if late or newest is None:
        return missed
    claim = _slot(schedule, newest, SlotOutcome.STARTING, ticker)
    if not store.schedule_slots.record(claim):
        return missed  # already recorded: never start a slot twice
    started = _start_slot(store, settings, schedule, claim, notify)
    changes = {
        "outcome": started.outcome.value,
        "runId": started.runId,
        "reason": started.reason,
        "updatedAt": utcnow(),
    }
    store.schedule_slots.update(schedule.id, newest, changes)
    store.schedules.update(
        schedule.id, {"lastOutcome": started.outcome.value, "lastRunId": started.runId}
    )
    if started.outcome == SlotOutcome.ERROR:
        count_result(store, schedule.id, True, f"slot {format_timestamp(newest)}: {started.reason}")
    return [*missed, started]


def _start_slot(
    store: Store, settings: Settings, schedule: Schedule, claim: ScheduleSlot, notify: Notify
) -> ScheduleSlot:
    """Start the slot's run as `runs start --detach` would, without waiting for its load."""
    from loadmgr.service.collection import QuietObserver
    from loadmgr.service.lifecycle.start import start_run

    # The run and its background collector act as the schedule, so `createdBy` says so.
    acting = replace(settings, user=f"schedule:{schedule.name}")
    options = run_options(
        schedule.overrides, if_busy="fail", trigger=trigger_of(schedule.id, claim.slot)
    )
    name = f"schedule {schedule.name!r}: slot {format_timestamp(claim.slot)}"
    busy = _busy_outside_loadmgr(store, schedule)
    if busy is not None:
        notify(f"{name} skipped: {busy}")
        return claim.model_copy(update={"outcome": SlotOutcome.SKIPPED, "reason": busy})
    try:
        outcome = start_run(
            store,
            acting,
            schedule.loadTestId,
            options,
            observer=QuietObserver(),
            notify=notify,
            detach=True,
            wait_started=False,
        )
    except ClusterBusy as exc:
        notify(f"{name} skipped: {exc.message}")
        return claim.model_copy(update={"outcome": SlotOutcome.SKIPPED, "reason": exc.message})
    except DatabaseError:
        raise  # nothing more can be recorded; the slot stays `starting`
    except LoadmgrError as exc:
        notify(f"{name} could not start: {exc.message}")
        return claim.model_copy(update={"outcome": SlotOutcome.ERROR, "reason": exc.message})
    assert outcome.run is not None  # --if-busy fail never skips
    notify(f"{name} started run {outcome.run.id}")
    return claim.model_copy(update={"outcome": SlotOutcome.STARTED, "runId": outcome.run.id})


def _cluster_of(store: Store, schedule: Schedule) -> str | None:
    """The cluster a slot of the schedule runs on (its override, else its test's)."""
    if schedule.overrides.cluster:
        return schedule.overrides.cluster
    test = store.tests.find_by_id(schedule.loadTestId)
    return test.locustClusterId if test else None


def _local_code_refused(store: Store, schedule: Schedule) -> str | None:
    """Why this machine will not start the schedule's slot on a `local` cluster, else None.

    Any writer of the database can schedule a `local` run: its locustfile would run here, as
    this machine's user, with its environment. The machine must allow that itself.
    """
    from loadmgr.models import LOCAL_CLUSTER_ID
    from loadmgr.secret_refs import TICK_LOCAL_VAR, tick_runs_local_code

    if tick_runs_local_code() or _cluster_of(store, schedule) != LOCAL_CLUSTER_ID:
        return None
    return (
        "it runs its locustfile (code from the database) on this machine's `local` cluster; "
        f"set {TICK_LOCAL_VAR}=1 in the tick's environment where that is wanted"
    )


def _busy_outside_loadmgr(store: Store, schedule: Schedule) -> str | None:
    """Why the schedule's remote Locust is busy with a test no loadmgr lease covers
    (another tool's, another database's), else None.

    A detached run's collector would find it too, but only after the tick returned, and
    record the run Failed: a busy cluster is a skip, not a failure of the schedule. A
    held lease, an unreachable Locust or a missing test are left to `start_run`, which
    says what they are.
    """
    from loadmgr.models import LOCAL_CLUSTER_ID
    from loadmgr.service.definitions.clusters import busy_outside_loadmgr
    from loadmgr.service.runs.lease import lease_id

    cluster_id = _cluster_of(store, schedule)
    if cluster_id is None or cluster_id == LOCAL_CLUSTER_ID:
        return None  # a local cluster is started for the run: only its lease can be busy
    cluster = store.clusters.find_by_id(cluster_id)
    holder = store.leases.holder(lease_id(cluster_id)) or {}
    if cluster is None or holder.get("runId"):
        return None
    return busy_outside_loadmgr(cluster)


def _slot(
    schedule: Schedule,
    slot: datetime,
    outcome: SlotOutcome,
    ticker: str,
    reason: str | None = None,
) -> ScheduleSlot:
    return ScheduleSlot(
        scheduleId=schedule.id,
        slot=slot,
        outcome=outcome,
        reason=reason,
        **stamp_for(schedule, ticker),
    )
