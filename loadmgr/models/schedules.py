"""Schedules (collection `schedules`) and their slots (collection `schedule_slots`).

A schedule starts a test at the times its cron expression names, read in its time zone.
Each such time is a *slot*; every slot a tick handled is recorded once, with its outcome.
Cron expressions are read by croniter (imported on use: it costs start-up time).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from enum import Enum
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loadmgr.models.documents import (
    LOCAL_WORKERS_MAX,
    Document,
    Name,
    Named,
    Thresholds,
    UtcDatetime,
    as_utc,
    new_id,
    utcnow,
)

DEFAULT_FAILURE_LIMIT = 3
FAILURE_LIMIT_MAX = 100
# A slot no tick saw at its minute (the machine was down, cron was late) is still started
# this long after; older, it is recorded `missed`.
DEFAULT_GRACE_SEC = 15 * 60
GRACE_MAX_SEC = 24 * 3600
CRON_MAX = 200


class SlotOutcome(str, Enum):
    """What a tick did with a slot."""

    STARTING = "starting"  # claimed; the tick that claimed it has not said more (yet)
    STARTED = "started"
    SKIPPED = "skipped"  # the cluster was busy (Azure's skip-if-running)
    MISSED = "missed"  # no tick saw it within the grace
    ERROR = "error"  # it could not be started (test deleted, override no longer valid …)


def check_cron(expression: str) -> str:
    """The expression, trimmed, if croniter reads it as five fields (or @daily and the
    like); ValueError saying what is wrong otherwise."""
    from croniter import croniter

    cleaned = " ".join(expression.split())
    if not cleaned:
        raise ValueError('empty cron expression (e.g. "0 3 * * *": 03:00 every day)')
    if len(cleaned) > CRON_MAX:
        raise ValueError(f"cron expression longer than {CRON_MAX} characters")
    if not cleaned.startswith("@") and len(cleaned.split(" ")) != 5:
        # croniter also takes a seconds and a year field; a tick runs once a minute.
        raise ValueError(
            f"cron expression {cleaned!r} must have 5 fields: minute hour day-of-month "
            "month day-of-week"
        )
    try:
        iterator = croniter(cleaned, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
        raise ValueError(f"invalid cron expression {cleaned!r}: {exc}") from None
    try:
        iterator.get_next(datetime)
    except ValueError:  # `0 3 31 2 *`: croniter finds no such date
        raise ValueError(f"cron expression {cleaned!r} names no date that exists") from None
    return cleaned


def check_timezone(name: str) -> str:
    """An IANA time zone name (`Europe/Paris`, `UTC`); ValueError for one zoneinfo lacks."""
    cleaned = name.strip()
    try:
        if not cleaned or cleaned.startswith(("/", ".")) or ".." in cleaned:
            raise ValueError
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as UTC or Europe/Paris)"
        ) from None
    return cleaned


# Cron fields that make a job run by elapsed time rather than at fixed wall-clock times.
_ELAPSED_TIME_ALIASES = ("@hourly",)


def runs_by_elapsed_time(cron: str) -> bool:
    """Whether the expression's minute or hour field starts with `*` (`*/15 * * * *`,
    `0 * * * *`, @hourly): Vixie cron's test for a job that is not at a fixed time of day.

    Such a job runs through a repeated hour as real time passes; a fixed-time one (`30 2
    * * *`, `0,30 1-3 * * *`, @daily) runs each wall-clock time once (docs/schedules.md).
    """
    if cron.startswith("@"):
        return cron.lower() in _ELAPSED_TIME_ALIASES
    fields = cron.split()
    return len(fields) >= 2 and (fields[0].startswith("*") or fields[1].startswith("*"))


def _repeated_wall_time(slot: datetime, zone: ZoneInfo) -> bool:
    """The slot is the second pass of its wall-clock time (the repeated hour at a fall-back)."""
    local = slot.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _slots(cron: str, zone_name: str, start: datetime, backwards: bool) -> Iterator[datetime]:
    """The schedule's slots from `start` (excluded) on, as UTC datetimes, either way.

    Read in the zone: at a daylight-saving gap a slot in the skipped hour falls on the
    first minute after it (02:30 → 03:00, croniter's behaviour); at an overlap a fixed-time
    slot in the repeated hour comes once, in its first pass (croniter yields both).
    """
    from croniter import croniter

    zone = ZoneInfo(zone_name)
    once_a_wall_time = not runs_by_elapsed_time(cron)
    iterator = croniter(cron, as_utc(start).astimezone(zone))
    step = iterator.get_prev if backwards else iterator.get_next
    while True:
        slot: datetime = step(datetime)
        if once_a_wall_time and _repeated_wall_time(slot, zone):
            continue
        yield slot.astimezone(timezone.utc).replace(microsecond=0)


def occurrences_after(cron: str, zone: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next `count` slots strictly after `after`, as UTC datetimes."""
    return list(islice(_slots(cron, zone, after, backwards=False), count))


def slots_due(cron: str, zone: str, first: datetime, now: datetime, limit: int) -> list[datetime]:
    """The slots from `first` (included: it is the stored next slot) to `now`, oldest
    first, at most the newest `limit` of them."""
    first, now = as_utc(first), as_utc(now)
    if first > now:
        return []
    # Walk back from now: a schedule left alone for a year is not walked minute by minute.
    found: list[datetime] = []
    for slot in _slots(cron, zone, now + timedelta(microseconds=1), backwards=True):
        if slot < first or len(found) >= limit:
            break
        found.append(slot)
    return found[::-1]


class ScheduleOverrides(BaseModel):
    """What a scheduled run uses instead of the test's defaults (None: the test's)."""

    model_config = ConfigDict(extra="allow")

    users: int | None = Field(default=None, ge=1)
    spawnRate: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    durationSeconds: int | None = Field(default=None, gt=0)
    cluster: str | None = None
    workers: int | None = Field(default=None, ge=0, le=LOCAL_WORKERS_MAX)  # 0: standalone
    thresholds: Thresholds = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    # Locust's own options for its runs, over the test's (`--locust-option`; checked as
    # `runs start` checks them). Schedules stored before have none.
    locustOptions: dict[str, str] = Field(default_factory=dict)
    # `--saturation-cpu PCT` for its runs, over the test's (null: the test's, else 90).
    saturationCpuPct: float | None = Field(default=None, ge=10, le=100, allow_inf_nan=False)


class Schedule(Named):
    """A test started at every slot of a cron expression (collection `schedules`)."""

    name: Name
    loadTestId: str
    testName: str | None = None
    cron: str
    timezone: str = "UTC"
    overrides: ScheduleOverrides = Field(default_factory=ScheduleOverrides)
    graceSec: int = Field(default=DEFAULT_GRACE_SEC, ge=0, le=GRACE_MAX_SEC)
    failureLimit: int = Field(default=DEFAULT_FAILURE_LIMIT, ge=1, le=FAILURE_LIMIT_MAX)
    consecutiveFailures: int = 0
    # Scheduled runs in a row whose verdict was `inconclusive` (a saturated generator): no
    # service failure, but at INCONCLUSIVE_WARN_AFTER in a row `warning` says so.
    consecutiveInconclusive: int = 0
    warning: str | None = None
    paused: bool = False
    pausedReason: str | None = None
    pausedAt: UtcDatetime | None = None
    # The next slot a tick will handle; a tick claims it by moving it on (compare-and-set).
    nextSlotAt: UtcDatetime
    lastSlotAt: UtcDatetime | None = None
    lastOutcome: SlotOutcome | None = None
    lastRunId: str | None = None
    managedBy: str | None = None  # the file whose `loadmgr apply` made it (LoadTest's)

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return check_timezone(value)


class ScheduleSlot(Document):
    """One slot of a schedule and what became of it (collection `schedule_slots`)."""

    id: str = Field(default_factory=new_id)
    scheduleId: str
    slot: UtcDatetime
    outcome: SlotOutcome
    runId: str | None = None
    reason: str | None = None
    verdict: str | None = None  # the run's, once it ended
    tenantId: str | None = None
    envId: str | None = None
    createdAt: UtcDatetime = Field(default_factory=utcnow)
    createdBy: str = ""
    updatedAt: UtcDatetime = Field(default_factory=utcnow)
    updatedBy: str = ""

def trigger_of(schedule_id: str, slot: datetime) -> dict[str, Any]:
    """What a scheduled run records as its `trigger`."""
    return {"schedule": schedule_id, "slot": slot}
