"""`loadmgr schedules`: add, list, show, pause, resume, remove, history, tick, install."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.completion import TestRef
from loadmgr.cli.context import app_context, removes, renders
from loadmgr.cli.groups import new_group
from loadmgr.cli.inputs import given
from loadmgr.cli.options import (
    ClusterOpt,
    LimitOpt,
    SaturationCpuOpt,
    SpawnRateOpt,
    UsersOpt,
    WorkersOpt,
)
from loadmgr.cli.output import (
    OF_A_TEST_CSV,
    Column,
    audit_line,
    field,
    iso,
    jsonable,
    notice,
)
from loadmgr.errors import ValidationFailed
from loadmgr.models.formatting import Lines

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer

app = new_group("schedules")

ScheduleRef = Annotated[
    str, typer.Argument(help="The schedule's id, id prefix or name.", show_default=False)
]

LIST_COLUMNS = [
    Column("ID", lambda d: (d.get("id") or "")[:8]),
    field("name", "NAME"),
    field("testName", "TEST"),
    field("cron", "CRON"),
    field("timezone", "TZ"),
    Column("NEXT SLOT", lambda d: "paused" if d.get("paused") else d.get("nextSlotAt")),
    Column("LAST", lambda d: _last(d)),
    Column("FAILS", lambda d: f"{d.get('consecutiveFailures', 0)}/{d.get('failureLimit')}"),
]
HISTORY_COLUMNS = [
    field("slot", "SLOT"),
    field("outcome", "OUTCOME"),
    field("runId", "RUN"),
    field("verdict", "VERDICT"),
    field("reason", "WHY"),
]
# `-o csv` (docs/output.md): of the schedules (`nextOccurrences`: `show` only), and of
# their slots (`history`, `tick`).
SCHEDULE_CSV = (
    *OF_A_TEST_CSV,
    "cron",
    "timezone",
    "overrides.users",
    "overrides.spawnRate",
    "overrides.durationSeconds",
    "overrides.cluster",
    "overrides.workers",
    "overrides.thresholds",
    "overrides.metadata",
    "overrides.locustOptions",
    "overrides.saturationCpuPct",
    "graceSec",
    "failureLimit",
    "consecutiveFailures",
    "consecutiveInconclusive",
    "warning",
    "paused",
    "pausedReason",
    "pausedAt",
    "nextSlotAt",
    "nextOccurrences",
    "lastSlotAt",
    "lastOutcome",
    "lastRunId",
    "metadata",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
)
SLOT_CSV = (
    "id",
    "scheduleId",
    "slot",
    "outcome",
    "runId",
    "verdict",
    "reason",
    "tenantId",
    "envId",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
)


def _last(data: dict[str, Any]) -> str:
    outcome = data.get("lastOutcome")
    if not outcome:
        return "-"
    return f"{outcome} {data.get('lastSlotAt') or ''}".strip()


def _with_local_time(slot: str | None, zone: str | None) -> str:
    """`2026-12-03T01:30:00.000Z (02:30 Europe/Paris)`: the slot as its cron reads it."""
    if not slot or not zone or zone == "UTC":
        return slot or "-"
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(slot.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return f"{slot} ({moment:%a %H:%M} {zone})"


def schedule_view(data: dict[str, Any]) -> RenderableType:
    """A schedule for people: what it runs, when, and how it has fared."""
    from loadmgr.cli.output import key_value_view

    overrides = {k: v for k, v in (data.get("overrides") or {}).items() if v not in (None, [], {})}
    summary: dict[str, Any] = {
        "id": data.get("id"),
        "test": f"{data.get('testName') or '?'} ({data.get('loadTestId')})",
        "cron": f"{data.get('cron')} ({data.get('timezone')})",
        "overrides": overrides or "-",
        "paused": f"yes: {data.get('pausedReason')}" if data.get("paused") else "no",
        "failures in a row": f"{data.get('consecutiveFailures', 0)} "
        f"(pauses at {data.get('failureLimit')})",
        "warning": data.get("warning") or "-",
        "grace": f"{data.get('graceSec')}s",
        "last slot": _last(data),
        "last run": data.get("lastRunId") or "-",
        "next slots": Lines(
            _with_local_time(slot, data.get("timezone"))
            for slot in data.get("nextOccurrences") or [data.get("nextSlotAt")]
        ),
        "created": audit_line(data, "created"),
        "updated": audit_line(data, "updated"),
    }
    return key_value_view(summary, title=f"schedule {data.get('name')}")


@app.command("add")
@renders
def add(
    context: AppContext,
    renderer: Renderer,
    test: TestRef,
    cron: Annotated[
        str,
        typer.Option(
            "--cron",
            help='When: a 5-field cron expression ("0 3 * * *": 03:00 every day) or @daily, '
            "@hourly …",
            show_default=False,
        ),
    ],
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone the cron is read in.")
    ] = "UTC",
    name: Annotated[
        str | None,
        typer.Option("--name", help="Unique name in the tenant/env (default: the test's)."),
    ] = None,
    users: UsersOpt = None,
    spawn_rate: SpawnRateOpt = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="How long: 300, 5m, 1h30m.")
    ] = None,
    cluster: ClusterOpt = None,
    workers: WorkersOpt = None,
    thresholds: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="Add or override a threshold (repeatable)."),
    ] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="KEY=VALUE run metadata (repeatable).")
    ] = None,
    locust_options: Annotated[
        list[str] | None,
        typer.Option(
            "--locust-option",
            metavar="KEY=VALUE",
            help="One of Locust's own options for its runs, over the test's (e.g. "
            "tags=checkout; repeatable; those loadmgr sets are refused).",
            show_default=False,
        ),
    ] = None,
    saturation_cpu: SaturationCpuOpt = None,
    grace: Annotated[
        str,
        typer.Option(
            "--grace", help="A slot no tick saw in time is still started this late; else missed."
        ),
    ] = "15m",
    failure_limit: Annotated[
        int,
        typer.Option("--failure-limit", help="Pause after this many failed runs in a row."),
    ] = 3,
) -> None:
    """Start TEST at every slot of a cron expression (ticked by `schedules tick`).

    The first slot is the first one after now. Overrides are checked as `runs start`
    checks them. Exit 2 for a bad cron, time zone or override, 4 for an unknown test or
    cluster, 5 for a duplicate name.
    """
    from loadmgr.service.runs.options import parse_overrides
    from loadmgr.service.scheduling.schedules import ScheduleRequest, add_schedule, next_occurrences
    from loadmgr.service.validation import duration_option

    grace_sec = duration_option("--grace", grace)
    overrides = given(parse_overrides, locals())
    request = given(ScheduleRequest, locals())
    schedule = add_schedule(context.store, request, context.settings.user)
    renderer.one(schedule, schedule_view, csv_columns=SCHEDULE_CSV)
    if not renderer.quiet:
        upcoming = ", ".join(iso(slot) for slot in next_occurrences(schedule, 3))
        notice(f"next slots: {upcoming}")


@app.command("list")
@renders
def list_(
    context: AppContext,
    renderer: Renderer,
    test: Annotated[str | None, typer.Option("--test", help="Only schedules of this test.")] = None,
    limit: LimitOpt = 50,
) -> None:
    """List schedules with their next slot and last outcome."""
    from loadmgr.service.scheduling.schedules import list_schedules

    schedules = list_schedules(context.store, test_ref=test, limit=limit)
    renderer.many(schedules, LIST_COLUMNS, empty="no schedules found", csv_columns=SCHEDULE_CSV)


@app.command("show")
@renders
def show(context: AppContext, renderer: Renderer, schedule: ScheduleRef) -> None:
    """Show a schedule and its next 5 slots (`nextOccurrences`, computed, not stored)."""
    from loadmgr.service.scheduling.schedules import get_schedule, next_occurrences

    found = get_schedule(context.store, schedule)
    data = jsonable(found)
    if not found.paused:
        data["nextOccurrences"] = [iso(slot) for slot in next_occurrences(found)]
    renderer.one(data, schedule_view, csv_columns=SCHEDULE_CSV)


@app.command("pause")
@renders
def pause(
    context: AppContext,
    renderer: Renderer,
    schedule: ScheduleRef,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown by show).")] = None,
) -> None:
    """Pause a schedule: ticks leave it alone until `resume`."""
    from loadmgr.service.scheduling.schedules import pause_schedule

    paused = pause_schedule(context.store, schedule, context.settings.user, reason)
    renderer.one(paused, schedule_view, csv_columns=SCHEDULE_CSV)


@app.command("resume")
@renders
def resume(context: AppContext, renderer: Renderer, schedule: ScheduleRef) -> None:
    """Resume a schedule from its next slot after now (paused slots are not caught up)."""
    from loadmgr.service.scheduling.schedules import resume_schedule

    resumed = resume_schedule(context.store, schedule, context.settings.user)
    renderer.one(resumed, schedule_view, csv_columns=SCHEDULE_CSV)


@app.command("remove")
@removes
def remove(context: AppContext, schedule: ScheduleRef) -> tuple[str, str]:
    """Remove a schedule and its slots' history (the runs it started are kept)."""
    from loadmgr.service.scheduling.schedules import remove_schedule

    gone = remove_schedule(context.store, schedule)
    return gone.id, f"removed schedule {gone.name!r} ({gone.id})"


@app.command("history")
@renders
def history(
    context: AppContext,
    renderer: Renderer,
    schedule: ScheduleRef,
    limit: LimitOpt = 50,
) -> None:
    """The schedule's slots, newest first: started (with the run), skipped or missed."""
    from loadmgr.service.scheduling.schedules import schedule_history

    slots = schedule_history(context.store, schedule, limit)
    renderer.many(slots, HISTORY_COLUMNS, empty="no slots yet", csv_columns=SLOT_CSV)


def _parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    from datetime import timezone

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"invalid --now {text!r} (an ISO date)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@app.command("tick")
@renders
def tick(
    context: AppContext,
    renderer: Renderer,
    now: Annotated[
        str | None, typer.Option("--now", hidden=True, help="Tests only: tick as at this ISO date.")
    ] = None,
) -> None:
    """Start every due slot once (call it every minute, on any number of machines).

    Each run starts detached, as `runs start --detach`; the tick does not wait for its
    load. Prints the slots it handled (nothing when nothing was due). Exits 0 whatever
    became of them (`schedules history` says), 3 when MongoDB failed. Slots on the
    `local` cluster run code from the database here: only with LOADMGR_TICK_LOCAL=1.
    """
    from loadmgr.service.lifecycle.tick import tick as tick_schedules

    handled = tick_schedules(context.store, context.settings, notice, now=_parse_now(now))
    if handled or not renderer.is_table:
        renderer.many(
            handled, [field("scheduleId", "SCHEDULE"), *HISTORY_COLUMNS], csv_columns=SLOT_CSV
        )


@app.command("install")
def install(
    ctx: typer.Context,
    systemd: Annotated[
        bool,
        typer.Option("--systemd", help="A systemd timer and service instead of a crontab line."),
    ] = False,
) -> None:
    """Print what makes this machine tick every minute (a crontab line); installs nothing.

    The variables the schedules' notifications read their webhooks from are named (never
    their values) for you to fill in. Exit 3 when MongoDB failed.
    """
    from loadmgr.service.scheduling.install import (
        crontab_text,
        notification_variables,
        systemd_text,
    )

    context = app_context(ctx)
    settings = context.settings
    needed = notification_variables(context.store)
    text, notes = systemd_text(settings, needed) if systemd else crontab_text(settings, needed)
    for note in notes:
        notice(f"note: {note}")
    typer.echo(text, nl=False)
