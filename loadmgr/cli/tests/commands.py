"""`loadmgr tests`: create, list, show, update, delete, baseline, trend."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.completion import TestRef, choices, complete_cluster, complete_run
from loadmgr.cli.context import app_context
from loadmgr.cli.groups import group_help
from loadmgr.cli.output import (
    Column,
    OutputOption,
    QuietOption,
    audit_line,
    field,
    id_field,
    notice,
)
from loadmgr.errors import ExitCode, ValidationFailed
from loadmgr.models.stats.catalog import TRENDED

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.output import Renderer
    from loadmgr.service.analysis.trends import Trend

app = typer.Typer(rich_markup_mode=None, help=group_help("tests"), no_args_is_help=True)

NameOpt = Annotated[str | None, typer.Option("--name", help="Unique name in the tenant/env.")]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target-url", help="http(s) URL the load is sent to (no user:password@ in it)."
    ),
]
LocustfileOpt = Annotated[
    str | None,
    typer.Option(
        "--locustfile",
        help="Path of the locustfile; its content and sha256 are stored with the test "
        "(it must compile; it is never run here).",
    ),
]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster", help="Locust cluster id (default: local).", autocompletion=complete_cluster
    ),
]
# For `update`, which applies no default: only a cluster given moves the test.
MoveClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster", help="Move the test to this Locust cluster.", autocompletion=complete_cluster
    ),
]
DescriptionOpt = Annotated[str | None, typer.Option("--description", help="Free text.")]
TagOpt = Annotated[
    list[str] | None, typer.Option("--tag", help="A tag (repeatable).", show_default=False)
]
USERS_HELP = "Default number of users (1 to 100000, or to --max-users)."
SPAWN_HELP = "Default users started per second (0.01 to 10000)."
# `--metric`: the catalog's trended metrics (the catalog imports no service).
TREND_METRICS = TRENDED
UsersOpt = Annotated[int | None, typer.Option("--users", help=USERS_HELP)]
SpawnOpt = Annotated[float | None, typer.Option("--spawn-rate", help=SPAWN_HELP)]
DurationOpt = Annotated[
    str | None, typer.Option("--duration", help="Default duration: 300, 300s, 5m, 1h30m.")
]
MaxDurationOpt = Annotated[
    str | None,
    typer.Option("--max-duration", help="Longest duration a run may ask for."),
]
WarmupOpt = Annotated[
    str | None,
    typer.Option(
        "--warmup",
        help="Left out of thresholds at the start of each run (30s, 2m; exact with the "
        "loadmgr plugin).",
    ),
]
MaxUsersOpt = Annotated[
    int | None,
    typer.Option(
        "--max-users",
        help="Most users a run of this test may ask for (default limit: 100000; "
        "at most 10000000).",
    ),
]
ScenarioOpt = Annotated[str | None, typer.Option("--scenario", help="Scenario id.")]
MetaOpt = Annotated[
    list[str] | None,
    typer.Option("--meta", help="KEY=VALUE metadata (repeatable).", show_default=False),
]
ThresholdOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="Pass/fail rule, e.g. 'p95<500ms', 'error_rate<1%', 'rps>=100', "
        "'GET /api:p95<300ms' (repeatable).",
        show_default=False,
    ),
]

LIST_COLUMNS = [
    id_field(),
    field("name", "NAME"),
    field("locustClusterId", "CLUSTER"),
    field("defaultUsers", "USERS", "right"),
    field("defaultSpawnRate", "RATE/S", "right"),
    Column("DURATION", lambda d: _duration(d.get("defaultDurationSec")), "right"),
    field("tags", "TAGS"),
    Column("UPDATED", lambda d: audit_line(d, "updated").split(" (")[0]),
]
# `-o csv` of every command printing tests (docs/output.md); the locustfile's content is
# only in JSON.
TEST_CSV = (
    "id",
    "name",
    "description",
    "tags",
    "tenantId",
    "envId",
    "locustClusterId",
    "targetUrl",
    "locustfile",
    "locustfileSha256",
    "scenarioId",
    "defaultUsers",
    "defaultSpawnRate",
    "defaultDurationSec",
    "maxDurationSec",
    "warmupSec",
    "maxUsers",
    "thresholds",
    "baselineRunId",
    "metadata",
    "version",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
)


def _duration(seconds: Any) -> str:
    from loadmgr.models import format_duration

    return format_duration(seconds) if isinstance(seconds, int | float) else "-"


def _seconds(option: str, text: str) -> int:
    from loadmgr.service.validation import duration_option

    return duration_option(option, text)


def _parse_meta(pairs: list[str]) -> dict[str, str]:
    from loadmgr.models import parse_meta

    try:
        return parse_meta(pairs)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def _given_fields(
    *,
    name: str | None,
    target_url: str | None,
    cluster: str | None,
    description: str | None,
    tags: list[str] | None,
    users: int | None,
    spawn_rate: float | None,
    duration: str | None,
    max_duration: str | None,
    max_users: int | None,
    scenario: str | None,
    meta: list[str] | None,
    thresholds: list[str] | None,
    warmup: str | None = None,
) -> dict[str, Any]:
    """The stored fields for the options that were given, parsed and checked."""
    from loadmgr.models import parse_threshold

    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if target_url is not None:
        fields["targetUrl"] = target_url
    if cluster is not None:
        fields["locustClusterId"] = cluster.strip()
    if description is not None:
        fields["description"] = description
    if tags:
        fields["tags"] = tags
    if users is not None:
        fields["defaultUsers"] = users
    if spawn_rate is not None:
        fields["defaultSpawnRate"] = spawn_rate
    if duration is not None:
        fields["defaultDurationSec"] = _seconds("--duration", duration)
    if max_duration is not None:
        fields["maxDurationSec"] = _seconds("--max-duration", max_duration)
    if warmup is not None:
        fields["warmupSec"] = _seconds("--warmup", warmup)
    if max_users is not None:
        fields["maxUsers"] = max_users
    if scenario is not None:
        fields["scenarioId"] = scenario
    if meta:
        fields["metadata"] = _parse_meta(meta)
    if thresholds:
        for expression in thresholds:
            try:
                parse_threshold(expression)
            except ValueError as exc:
                raise ValidationFailed(str(exc)) from None
        fields["thresholds"] = thresholds
    return fields


def test_view(data: dict[str, Any]) -> RenderableType:
    """A test for people: what it runs, with what load, who made and changed it."""
    from loadmgr.cli.output import key_value_view

    sha = data.get("locustfileSha256")
    shown = {
        "id": data.get("id"),
        "description": data.get("description") or "-",
        "target": data.get("targetUrl"),
        "cluster": data.get("locustClusterId"),
        "locustfile": f"{data.get('locustfile') or '-'}"
        + (f"  (sha256 {sha[:12]}…)" if sha else ""),
        "users": data.get("defaultUsers"),
        "max users": data.get("maxUsers") or "-",
        "spawn rate": f"{data.get('defaultSpawnRate')}/s",
        "duration": _duration(data.get("defaultDurationSec")),
        "max duration": _duration(data.get("maxDurationSec")),
        "warm-up": _duration(data.get("warmupSec")) if data.get("warmupSec") else "-",
        "tags": data.get("tags") or "-",
        "thresholds": data.get("thresholds") or "-",
        "baseline run": data.get("baselineRunId") or "-",
        "scenario": data.get("scenarioId") or "-",
        "metadata": data.get("metadata") or "-",
        "tenant / env": f"{data.get('tenantId') or '-'} / {data.get('envId') or '-'}",
        "created": audit_line(data, "created"),
        "updated": audit_line(data, "updated") + f", version {data.get('version')}",
    }
    return key_value_view(shown, title=f"test {data.get('name')}")


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameOpt = None,
    target_url: TargetOpt = None,
    locustfile: LocustfileOpt = None,
    cluster: ClusterOpt = None,
    description: DescriptionOpt = None,
    tag: TagOpt = None,
    users: Annotated[int, typer.Option("--users", help=USERS_HELP)] = 10,
    spawn_rate: Annotated[float, typer.Option("--spawn-rate", help=SPAWN_HELP)] = 10.0,
    duration: Annotated[
        str, typer.Option("--duration", help="Default duration: 300, 300s, 5m, 1h30m.")
    ] = "60s",
    max_duration: MaxDurationOpt = None,
    warmup: WarmupOpt = None,
    max_users: MaxUsersOpt = None,
    scenario: ScenarioOpt = None,
    meta: MetaOpt = None,
    threshold: ThresholdOpt = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Create a test definition and print it as stored."""
    from loadmgr.models import LOCAL_CLUSTER_ID
    from loadmgr.service.definitions.tests import create_test, locustfile_fields, read_locustfile

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    if name is None:
        raise ValidationFailed("missing --name", hint="e.g. --name checkout-api")
    if target_url is None:
        raise ValidationFailed(
            "missing --target-url", hint="e.g. --target-url https://staging.example.com"
        )
    fields = _given_fields(
        name=name,
        target_url=target_url,
        cluster=cluster,
        description=description,
        tags=tag,
        users=users,
        spawn_rate=spawn_rate,
        duration=duration,
        max_duration=max_duration,
        warmup=warmup,
        max_users=max_users,
        scenario=scenario,
        meta=meta,
        thresholds=threshold,
    )
    cluster_id = fields.get("locustClusterId", LOCAL_CLUSTER_ID)
    if locustfile is not None:
        fields.update(locustfile_fields(read_locustfile(locustfile, cluster_id)))
    elif cluster_id == LOCAL_CLUSTER_ID:
        raise ValidationFailed(
            "missing --locustfile", hint="the local cluster needs a locustfile to run"
        )
    test = create_test(context.store, context.settings.user, fields)
    renderer.one(test, test_view, csv_columns=TEST_CSV)


@app.command("list")
def list_(
    ctx: typer.Context,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Only tests with this tag (repeatable: all must match)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Only names containing this (any case).")
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Only on this cluster.", autocompletion=complete_cluster),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many; 0 for all.")] = 50,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """List tests, newest first."""
    from loadmgr.service.definitions.tests import list_tests

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    tests = list_tests(context.store, tags=tag, name_contains=name, cluster=cluster, limit=limit)
    renderer.many(tests, LIST_COLUMNS, empty="no tests found", csv_columns=TEST_CSV)


@app.command("show")
def show(
    ctx: typer.Context, test: TestRef, output: OutputOption = None, quiet: QuietOption = False
) -> None:
    """Show one test (by id or name)."""
    from loadmgr.service.definitions.tests import get_test

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    renderer.one(get_test(context.store, test), test_view, csv_columns=TEST_CSV)


@app.command("update")
def update(
    ctx: typer.Context,
    test: TestRef,
    name: NameOpt = None,
    target_url: TargetOpt = None,
    locustfile: LocustfileOpt = None,
    cluster: MoveClusterOpt = None,
    description: DescriptionOpt = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Replace the tags with these (repeatable)."),
    ] = None,
    users: UsersOpt = None,
    spawn_rate: SpawnOpt = None,
    duration: DurationOpt = None,
    max_duration: MaxDurationOpt = None,
    warmup: WarmupOpt = None,
    max_users: MaxUsersOpt = None,
    scenario: ScenarioOpt = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="KEY=VALUE to set in the metadata (repeatable)."),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="Replace the thresholds with these (repeatable)."),
    ] = None,
    clear_thresholds: Annotated[
        bool, typer.Option("--clear-thresholds", help="Remove every threshold.")
    ] = False,
    clear_tags: Annotated[bool, typer.Option("--clear-tags", help="Remove every tag.")] = False,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Change only the given fields of a test, and print it as stored."""
    from loadmgr.service.definitions.tests import (
        get_test,
        locustfile_fields,
        read_locustfile,
        update_test,
    )

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    if clear_thresholds and threshold:
        raise ValidationFailed("give --threshold or --clear-thresholds, not both")
    if clear_tags and tag:
        raise ValidationFailed("give --tag or --clear-tags, not both")
    changes = _given_fields(
        name=name,
        target_url=target_url,
        cluster=cluster,
        description=description,
        tags=tag,
        users=users,
        spawn_rate=spawn_rate,
        duration=duration,
        max_duration=max_duration,
        warmup=warmup,
        max_users=max_users,
        scenario=scenario,
        meta=None,
        thresholds=threshold,
    )
    if clear_thresholds:
        changes["thresholds"] = []
    if clear_tags:
        changes["tags"] = []
    metadata = _parse_meta(meta) if meta else None
    store = context.store
    if locustfile is not None:
        cluster_id = changes.get("locustClusterId") or get_test(store, test).locustClusterId
        changes.update(locustfile_fields(read_locustfile(locustfile, cluster_id)))
    updated = update_test(store, context.settings.user, test, changes, metadata=metadata)
    renderer.one(updated, test_view, csv_columns=TEST_CSV)


@app.command("delete")
def delete(
    ctx: typer.Context,
    test: TestRef,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also delete its runs and their metrics, and its schedules and their slots.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Delete a test; one with runs or schedules only with --force (exit 5 without)."""
    from loadmgr.service.definitions.tests import delete_test, get_test

    context = app_context(ctx)
    store = context.store
    if not yes and sys.stdin.isatty():
        found = get_test(store, test)
        runs = store.runs.count_for_test(found.id)
        schedules = len(store.schedules.find_many(test_id=found.id, limit=0))
        what = f"test {found.name!r} ({found.id})" + (
            f" and its {runs} run(s)" if runs and force else ""
        )
        what += f" and its {schedules} schedule(s)" if schedules and force else ""
        if not typer.confirm(f"Delete {what}?", err=True):
            raise typer.Abort()
    result = delete_test(store, test, force=force)
    if quiet:
        typer.echo(result.test.id)
    else:
        removed = [f"{result.runs_deleted} run(s)"] if result.runs_deleted else []
        if result.schedules_deleted:
            removed.append(f"{result.schedules_deleted} schedule(s)")
        extra = f" with {' and '.join(removed)}" if removed else ""
        notice(f"deleted test {result.test.name!r} ({result.test.id}){extra}")


@app.command("baseline")
def baseline(
    ctx: typer.Context,
    test: TestRef,
    run: Annotated[
        str | None,
        typer.Argument(
            help="The finished run to compare later runs with (its id or a unique prefix).",
            show_default=False,
            autocompletion=complete_run,
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the baseline.")] = False,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Mark a finished run as the test's baseline (`runs start --compare-baseline`)."""
    from loadmgr.service.analysis.compare import clear_baseline, set_baseline

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    if clear == (run is not None):
        raise ValidationFailed("give a RUN to set the baseline, or --clear to remove it")
    store, user = context.store, context.settings.user
    updated = (
        clear_baseline(store, test, user) if run is None else set_baseline(store, test, run, user)
    )
    renderer.one(updated, test_view, csv_columns=TEST_CSV)


@app.command("trend")
def trend(
    ctx: typer.Context,
    test: TestRef,
    last: Annotated[
        int, typer.Option("--last", help="The newest N finished runs (1 to 100000).")
    ] = 30,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only runs created since: 30d, 12h, or an ISO date."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="A metric to show (repeatable) [default: p95, rps, error_rate].",
            show_default=False,
            **choices(TREND_METRICS),
        ),
    ] = None,
    request: Annotated[
        str | None,
        typer.Option("--request", help="One request's numbers, e.g. 'GET /api/items'."),
    ] = None,
    sensitivity: Annotated[
        str,
        typer.Option(
            "--sensitivity",
            help="low, medium, high, or a number (medium is 1; higher finds smaller shifts).",
        ),
    ] = "medium",
    p_value: Annotated[
        str,
        typer.Option("--p-value", help="A change point's Welch t-test must be below this."),
    ] = "0.01",
    min_change: Annotated[
        str,
        typer.Option(
            "--min-change", help="Smallest change kept, relative to the regime before it."
        ),
    ] = "5%",
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when the newest run is in a regime that a regression started.",
        ),
    ] = False,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            help="Also write the trend as a self-contained HTML page here ('-': stdout only).",
        ),
    ] = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """A test's recent runs per metric, and where each series shifted for good.

    One point per finished run (its numbers after the warm-up when one was set), oldest
    first. Change points are found by ruptures (PELT, mean-shift cost) and kept when the
    regimes on either side differ significantly (--p-value) and by --min-change; runs of
    another load than the newest are shown but not searched. -o json|jsonl|csv: one row
    per run and metric. Needs the optional extra: pip install 'loadmgr[trend]'.
    """
    from loadmgr.cli.tests.trend_views import newest_line
    from loadmgr.service.analysis.trends import trend_of, trend_options
    from loadmgr.service.runs.lookup import since_cutoff

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    options = trend_options(
        metrics=metric,
        request=request,
        last=last,
        since=since_cutoff(since) if since is not None else None,
        sensitivity=sensitivity,
        p_value=p_value,
        min_change=min_change,
    )
    found = trend_of(context.store, test, options)
    if html:
        from loadmgr.cli.metrics.commands import _write
        from loadmgr.service.reports.trend_html import render_trend_html

        _write(html, render_trend_html(found).encode("utf-8"))
    if found.incomparable:
        notice(
            f"{found.incomparable} of {len(found.runs)} runs had another load than the newest "
            "(users, spawn rate, duration or cluster): shown, but left out of the search"
        )
    if html != "-":  # with '-' the page is the output
        _print_trend(renderer, found)
    if fail_on_regression and found.regressions_now():
        if not renderer.is_table:
            notice(newest_line(found))
        raise typer.Exit(ExitCode.THRESHOLD_FAILED)


def _print_trend(renderer: Renderer, found: Trend) -> None:
    """The runs' ids (-q), the rows (json, jsonl, csv), or the charts and table."""
    if renderer.quiet:
        renderer.many([{"id": run.id} for run in found.runs], [])
    elif renderer.is_table:
        from loadmgr.cli.output import stdout_console
        from loadmgr.cli.tests.trend_views import trend_view

        console = stdout_console()
        width = min(console.width, 120) if sys.stdout.isatty() else 80
        console.print(trend_view(found, width))
    else:
        from loadmgr.cli.tests.trend_views import TREND_CSV

        renderer.many(found.rows(), [], csv_columns=TREND_CSV)
