"""Schedules: add, list, show, pause, resume, remove, history; and counting their runs'
failures, which pauses a schedule that keeps failing.

A tick (starting the slots that are due) is in `loadmgr.service.lifecycle.tick`.
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, RunStatus, Verdict, utcnow
from loadmgr.models.schedules import (
    DEFAULT_FAILURE_LIMIT,
    DEFAULT_GRACE_SEC,
    Schedule,
    ScheduleOverrides,
    check_cron,
    check_timezone,
    occurrences_after,
)
from loadmgr.service.documents import by_id_or_name, stamp_for
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.validation import check_list_limit, validation_failed

if TYPE_CHECKING:
    from loadmgr.store import Store

SHOWN_OCCURRENCES = 5
CRON_HINT = (
    'minute hour day-of-month month day-of-week: "0 3 * * *" (03:00 daily), '
    '"*/15 * * * *", "0 6 * * MON-FRI", or @hourly, @daily, @weekly'
)
# Verdicts of a scheduled run that count as one more failure in a row. `aborted` (someone
# stopped it) neither counts nor resets the count: it says nothing about the test.
FAILING_VERDICTS = (Verdict.FAILED, Verdict.ERROR)
# `inconclusive` (a check failed while the load generator was saturated) is no failure of
# the service either, but this many in a row say the generator is too small: a warning.
INCONCLUSIVE_WARN_AFTER = 3


@dataclass(frozen=True)
class ScheduleRequest:
    """What `schedules add` was given."""

    test: str  # its id or name
    cron: str
    timezone: str = "UTC"
    name: str | None = None
    overrides: RunOptions = field(default_factory=RunOptions)  # the load overrides only
    grace_sec: int = DEFAULT_GRACE_SEC
    failure_limit: int = DEFAULT_FAILURE_LIMIT
    stored: ScheduleOverrides = field(init=False, default_factory=ScheduleOverrides)

    def __post_init__(self) -> None:
        # Checked when made, as `schedules add` parses its options: before any database.
        object.__setattr__(self, "stored", stored_overrides(self.overrides))


def add_schedule(store: Store, request: ScheduleRequest, user: str) -> Schedule:
    """Store a schedule whose first slot is the first one due after now.

    The overrides are checked as `runs start` would check them (exit 2 for an impossible
    one, 4 for an unknown test or cluster) before anything is stored.
    """
    schedule = prepare_schedule(store, request, user)
    store.ensure_schedule_indexes()
    store.schedules.insert(schedule)
    # `tests delete` removes the test, then looks for its schedules; adding does the
    # reverse. Whichever comes second sees the other's write: no schedule outlives its test.
    if store.tests.find_by_id(schedule.loadTestId) is None:
        store.schedules.delete(schedule.id)
        raise NotFound(f"test {request.test!r} not found{store.scope.describe()}")
    return schedule


def prepare_schedule(
    store: Store, request: ScheduleRequest, user: str, test: LoadTest | None = None
) -> Schedule:
    """The schedule `request` describes, checked as `add_schedule` checks it, not stored;
    `test`: its test as it will be stored (`apply` checks a schedule of a test it has not
    created yet), else `request.test` is looked up."""
    from loadmgr.service.runs.plan import plan_run

    overrides = request.stored
    try:
        cron = check_cron(request.cron)
    except ValueError as exc:
        raise ValidationFailed(str(exc), hint=CRON_HINT) from None
    try:
        zone = check_timezone(request.timezone)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    test = plan_run(store, test or request.test, run_options(overrides), user).test
    now = store.server_now()
    try:
        schedule = Schedule(
            name=request.name if request.name is not None else test.name,
            loadTestId=test.id,
            testName=test.name,
            cron=cron,
            timezone=zone,
            overrides=overrides,
            graceSec=request.grace_sec,
            failureLimit=request.failure_limit,
            nextSlotAt=occurrences_after(cron, zone, now)[0],
            **stamp_for(test, user, now),
        )
    except ValidationError as exc:
        raise validation_failed(exc) from None
    return schedule


# A run's overrides as `RunOptions` fields and as a schedule stores them.
_STORED_AS = {
    "users": "users",
    "spawn_rate": "spawnRate",
    "duration": "durationSeconds",
    "cluster": "cluster",
    "workers": "workers",
    "thresholds": "thresholds",
    "metadata": "metadata",
    "locust_options": "locustOptions",
    "saturation_cpu": "saturationCpuPct",
}


def stored_overrides(options: RunOptions) -> ScheduleOverrides:
    """The load overrides of `options` as a schedule stores them; ValidationFailed naming
    the option for an impossible one."""
    given = {stored: copy(getattr(options, name)) for name, stored in _STORED_AS.items()}
    try:
        return ScheduleOverrides.model_validate(given)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def run_options(overrides: ScheduleOverrides, **extra: Any) -> RunOptions:
    """The `runs start` options a slot of this schedule runs with."""
    given = {name: copy(getattr(overrides, stored)) for name, stored in _STORED_AS.items()}
    return RunOptions(**given, **extra)


def get_schedule(store: Store, ref: str) -> Schedule:
    """A schedule by id, or name, or unique id prefix (8+ characters)."""
    cleaned = ref.strip()
    schedules = store.schedules
    try:
        return by_id_or_name(
            store,
            ref,
            "schedule",
            lambda _: schedules.find_by_id(cleaned) if cleaned else None,
            lambda _: schedules.find_by_name(cleaned) if cleaned else [],
        )
    except NotFound:
        by_prefix = schedules.find_by_prefix(cleaned) if len(cleaned) >= 8 else []
        if len(by_prefix) > 1:
            raise ValidationFailed(f"schedule id prefix {ref!r} is ambiguous") from None
        if not by_prefix:
            raise
        return by_prefix[0]


def list_schedules(
    store: Store, *, test_ref: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    check_list_limit(limit)
    from loadmgr.service.definitions.tests import get_test

    test_id = get_test(store, test_ref).id if test_ref is not None else None
    return store.schedules.find_many(test_id=test_id, limit=limit)


def next_occurrences(schedule: Schedule, count: int = SHOWN_OCCURRENCES) -> list[datetime]:
    """The slots a tick will handle next, from the stored next slot on."""
    later = occurrences_after(schedule.cron, schedule.timezone, schedule.nextSlotAt, count - 1)
    return [schedule.nextSlotAt, *later]


def pause_schedule(store: Store, ref: str, user: str, reason: str | None = None) -> Schedule:
    schedule = get_schedule(store, ref)
    now = utcnow()
    updated = store.schedules.update(
        schedule.id,
        {
            "paused": True,
            "pausedReason": reason or f"paused by {user}",
            "pausedAt": now,
            "updatedAt": now,
            "updatedBy": user,
        },
    )
    return _found(updated, ref, store)


def resume_schedule(store: Store, ref: str, user: str) -> Schedule:
    """Unpause; its next slot is the first due after now (paused slots are not caught up)
    and its failures in a row start again from 0."""
    schedule = get_schedule(store, ref)
    now = utcnow()
    updated = store.schedules.update(
        schedule.id,
        {
            "paused": False,
            "pausedReason": None,
            "pausedAt": None,
            "consecutiveFailures": 0,
            "nextSlotAt": occurrences_after(schedule.cron, schedule.timezone, store.server_now())[
                0
            ],
            "updatedAt": now,
            "updatedBy": user,
        },
    )
    return _found(updated, ref, store)


def remove_schedule(store: Store, ref: str) -> Schedule:
    """Delete the schedule and its slots' history; runs it started are kept."""
    schedule = get_schedule(store, ref)
    if not store.schedules.delete(schedule.id):
        raise NotFound(f"schedule {ref!r} not found{store.scope.describe()}")
    store.schedule_slots.delete_all(schedule.id)
    return schedule


def schedule_history(store: Store, ref: str, limit: int = 50) -> list[dict[str, Any]]:
    """The schedule's slots, newest first, each with its outcome."""
    check_list_limit(limit)
    return store.schedule_slots.find_many(get_schedule(store, ref).id, limit)


def _found(schedule: Schedule | None, ref: str, store: Store) -> Schedule:
    if schedule is None:  # removed between the look-up and the change
        raise NotFound(f"schedule {ref!r} not found{store.scope.describe()}")
    return schedule


def schedule_run_ended(store: Store, run: LoadTestRun) -> None:
    """A run ended: if a schedule started it, note its verdict on the slot and count it.

    Called once per run end, after the verdict is final. A failed or errored run is one
    more failure in a row; a passed one (or one with nothing to check) resets the count;
    an aborted one changes nothing. At the schedule's limit it pauses itself. An
    inconclusive one neither counts nor resets the failures; INCONCLUSIVE_WARN_AFTER of
    them in a row set the schedule's `warning` (any other verdict clears it).
    """
    trigger = run.trigger or {}
    schedule_id = trigger.get("schedule")
    if not isinstance(schedule_id, str):
        return  # started by hand: never counts
    slot = trigger.get("slot")
    verdict = run.verdict
    now = utcnow()
    if isinstance(slot, datetime):
        store.schedule_slots.update(
            schedule_id,
            slot,
            {"verdict": verdict.value if verdict else None, "updatedAt": now},
        )
    if verdict == Verdict.ABORTED:
        return
    if count_inconclusive(store, schedule_id, verdict == Verdict.INCONCLUSIVE):
        return
    failed = verdict in FAILING_VERDICTS or run.status == RunStatus.FAILED
    what = f"run {run.id} ended {verdict.value if verdict else run.status.value}"
    count_result(store, schedule_id, failed, what)


def count_inconclusive(store: Store, schedule_id: str, inconclusive: bool) -> bool:
    """Count an inconclusive run in a row (or reset the count); whether it was one."""
    schedule = store.schedules.count_inconclusive(
        schedule_id, inconclusive, {"updatedAt": utcnow()}
    )
    if inconclusive and schedule is not None:
        streak = schedule.consecutiveInconclusive
        if streak >= INCONCLUSIVE_WARN_AFTER:
            store.schedules.update(
                schedule_id,
                {
                    "warning": f"{streak} inconclusive runs in a row: the load generator was "
                    "saturated or lost workers (add workers, or lower the load)"
                },
            )
    return inconclusive


def count_result(store: Store, schedule_id: str, failed: bool, what: str) -> None:
    """Count one result of a schedule's slot; pause it at its limit of failures in a row."""
    now = utcnow()
    schedule = store.schedules.count_result(schedule_id, failed, {"updatedAt": now})
    if schedule is None or not failed or schedule.paused:
        return
    if schedule.consecutiveFailures >= schedule.failureLimit:
        store.schedules.pause_if_failing(
            schedule_id,
            schedule.failureLimit,
            {
                "pausedReason": (
                    f"{_failures(schedule.consecutiveFailures)} in a row (last: {what})"
                ),
                "pausedAt": now,
                "updatedAt": now,
                "updatedBy": "loadmgr",
            },
        )


def _failures(count: int) -> str:
    return "1 failure" if count == 1 else f"{count} failures"
