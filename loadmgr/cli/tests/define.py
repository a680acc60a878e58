"""`loadmgr tests` create, list, show, update and delete: the test definitions."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.completion import TestRef, complete_cluster
from loadmgr.cli.context import removes, renders
from loadmgr.cli.inputs import given
from loadmgr.cli.options import (
    LimitOpt,
    MetaOpt,
    SaturationCpuOpt,
    StepDurationOpt,
    StepSettleOpt,
    StepsOpt,
)
from loadmgr.cli.output import (
    Column,
    audit_line,
    field,
    id_field,
    notice,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer


app = typer.Typer(rich_markup_mode=None)  # its commands join `loadmgr.cli.tests.app`

NameOpt = Annotated[str | None, typer.Option("--name", help="Unique name in the tenant/env.")]
TargetOpt = Annotated[
    str | None,
    typer.Option("--target-url", help="http(s) URL the load is sent to (no user:password@ in it)."),
]
LocustfileOpt = Annotated[
    str | None,
    typer.Option(
        "--locustfile",
        help="The locustfile as Locust's -f takes it: a file, a folder (a package, or "
        "modules with data files), or a.py,b.py. Stored whole with the test, with one "
        "sha256 (Python must compile; nothing is run here; a folder: at most 200 files, "
        "4 MB).",
    ),
]
LocustOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--locust-option",
        metavar="KEY=VALUE",
        help="One of Locust's own options for every run, e.g. tags=checkout,search, "
        "exclude-tags=slow, or a locustfile's custom argument; KEY alone: a flag "
        "(repeatable; those loadmgr sets, such as users or run-time, are refused).",
        show_default=False,
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
        help="Most users a run of this test may ask for (default limit: 100000; at most 10000000).",
    ),
]
ScenarioOpt = Annotated[str | None, typer.Option("--scenario", help="Scenario id.")]
ThresholdOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="Pass/fail rule, e.g. 'p95<500ms', 'error_rate<1%', 'rps>=100', "
        "'GET /api:p95<300ms' (repeatable).",
        show_default=False,
    ),
]

ServerMetricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--server-metric",
        metavar="NAME[:UNIT]=PROMQL",
        help="A server-side metric read from --source for every interval of its runs, "
        "e.g. 'cpu:cores=sum(rate(process_cpu_seconds_total[30s]))'; $interval in the "
        "query is the interval's window (repeatable; docs/server-metrics.md).",
        show_default=False,
    ),
]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="The source (loadmgr sources) --server-metric reads from."),
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
    "saturationCpuPct",
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


def _bundle_words(bundle: Any) -> str:
    files = bundle.get("files") if isinstance(bundle, dict) else None
    return f", {len(files)} files" if isinstance(files, list) else ""


def _locust_options(options: Any) -> str:
    if not isinstance(options, dict) or not options:
        return "-"
    return " ".join(f"{key}={value}" if value else str(key) for key, value in options.items())


def _steps(steps: Any) -> str:
    """`10, 20, 40 users, 1m each (6s settle)`; `-` for a test of one load."""
    if not isinstance(steps, dict) or not isinstance(steps.get("users"), list):
        return "-"
    users = ", ".join(str(u) for u in steps["users"])
    settle = steps.get("settleSec")
    return f"{users} users, {_duration(steps.get('stepSec'))} each ({_duration(settle)} settle)"


def _server_metrics(items: Any) -> str:
    if not isinstance(items, list) or not items:
        return "-"
    lines = []
    for item in items:
        if isinstance(item, dict):
            unit = f":{item.get('unit')}" if item.get("unit") else ""
            lines.append(f"{item.get('name')}{unit} = {item.get('query')} ({item.get('source')})")
    return "\n".join(lines) or "-"


def test_view(data: dict[str, Any]) -> RenderableType:
    """A test for people: what it runs, with what load, who made and changed it."""
    from loadmgr.cli.output import key_value_view
    from loadmgr.models.shapes import describe_shape

    sha = data.get("locustfileSha256")
    shown = {
        "id": data.get("id"),
        "description": data.get("description") or "-",
        "target": data.get("targetUrl"),
        "cluster": data.get("locustClusterId"),
        "locustfile": f"{data.get('locustfile') or '-'}"
        + (f"  (sha256 {sha[:12]}…)" if sha else "")
        + _bundle_words(data.get("locustfileBundle")),
        # With a load shape, the users and spawn rate below are not what runs.
        "load shape": describe_shape(data.get("shape")) or "-",
        "steps": _steps(data.get("steps")),
        "users": data.get("defaultUsers"),
        "max users": data.get("maxUsers") or "-",
        "spawn rate": f"{data.get('defaultSpawnRate')}/s",
        "duration": _duration(data.get("defaultDurationSec")),
        "max duration": _duration(data.get("maxDurationSec")),
        "warm-up": _duration(data.get("warmupSec")) if data.get("warmupSec") else "-",
        "saturation CPU": f"{data.get('saturationCpuPct') or 90:g}%",
        "tags": data.get("tags") or "-",
        "Locust options": _locust_options(data.get("locustOptions")),
        "thresholds": data.get("thresholds") or "-",
        "server metrics": _server_metrics(data.get("serverMetrics")),
        "baseline run": data.get("baselineRunId") or "-",
        "scenario": data.get("scenarioId") or "-",
        "metadata": data.get("metadata") or "-",
        "tenant / env": f"{data.get('tenantId') or '-'} / {data.get('envId') or '-'}",
        "created": audit_line(data, "created"),
        "updated": audit_line(data, "updated") + f", version {data.get('version')}",
    }
    return key_value_view(shown, title=f"test {data.get('name')}")


@app.command("create")
@renders
def create(
    context: AppContext,
    renderer: Renderer,
    name: NameOpt = None,
    target_url: TargetOpt = None,
    locustfile: LocustfileOpt = None,
    cluster: ClusterOpt = None,
    description: DescriptionOpt = None,
    tags: TagOpt = None,
    users: Annotated[int, typer.Option("--users", help=USERS_HELP)] = 10,
    spawn_rate: Annotated[float, typer.Option("--spawn-rate", help=SPAWN_HELP)] = 10.0,
    duration: Annotated[
        str, typer.Option("--duration", help="Default duration: 300, 300s, 5m, 1h30m.")
    ] = "60s",
    max_duration: MaxDurationOpt = None,
    warmup: WarmupOpt = None,
    saturation_cpu: SaturationCpuOpt = None,
    max_users: MaxUsersOpt = None,
    scenario: ScenarioOpt = None,
    meta: MetaOpt = None,
    thresholds: ThresholdOpt = None,
    locust_options: LocustOptionOpt = None,
    server_metrics: ServerMetricOpt = None,
    source: SourceOpt = None,
    steps: StepsOpt = None,
    step_duration: StepDurationOpt = None,
    step_settle: StepSettleOpt = None,
) -> None:
    """Create a test definition and print it as stored. With --steps its runs are stepped
    (runs start --users N: a plain run of N users)."""
    from loadmgr.service.definitions.tests import TestSpec, create_test

    spec = given(TestSpec, locals())
    test = create_test(context.store, context.settings.user, spec, notice)
    renderer.one(test, test_view, csv_columns=TEST_CSV)


@app.command("list")
@renders
def list_(
    context: AppContext,
    renderer: Renderer,
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
    limit: LimitOpt = 50,
) -> None:
    """List tests, newest first."""
    from loadmgr.service.definitions.tests import list_tests

    tests = list_tests(context.store, tags=tag, name_contains=name, cluster=cluster, limit=limit)
    renderer.many(tests, LIST_COLUMNS, empty="no tests found", csv_columns=TEST_CSV)


@app.command("show")
@renders
def show(context: AppContext, renderer: Renderer, test: TestRef) -> None:
    """Show one test (by id or name)."""
    from loadmgr.service.definitions.tests import get_test

    renderer.one(get_test(context.store, test), test_view, csv_columns=TEST_CSV)


@app.command("update")
@renders
def update(
    context: AppContext,
    renderer: Renderer,
    test: TestRef,
    name: NameOpt = None,
    target_url: TargetOpt = None,
    locustfile: LocustfileOpt = None,
    cluster: MoveClusterOpt = None,
    description: DescriptionOpt = None,
    tags: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Replace the tags with these (repeatable)."),
    ] = None,
    users: UsersOpt = None,
    spawn_rate: SpawnOpt = None,
    duration: DurationOpt = None,
    max_duration: MaxDurationOpt = None,
    warmup: WarmupOpt = None,
    saturation_cpu: SaturationCpuOpt = None,
    max_users: MaxUsersOpt = None,
    scenario: ScenarioOpt = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="KEY=VALUE to set in the metadata (repeatable)."),
    ] = None,
    thresholds: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="Replace the thresholds with these (repeatable)."),
    ] = None,
    clear_thresholds: Annotated[
        bool, typer.Option("--clear-thresholds", help="Remove every threshold.")
    ] = False,
    clear_tags: Annotated[bool, typer.Option("--clear-tags", help="Remove every tag.")] = False,
    locust_options: Annotated[
        list[str] | None,
        typer.Option(
            "--locust-option",
            metavar="KEY=VALUE",
            help="Replace the test's Locust options with these (repeatable; see tests create).",
            show_default=False,
        ),
    ] = None,
    clear_locust_options: Annotated[
        bool, typer.Option("--clear-locust-options", help="Remove every Locust option.")
    ] = False,
    server_metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--server-metric",
            metavar="NAME[:UNIT]=PROMQL",
            help="Replace the server metrics with these (repeatable; see tests create).",
            show_default=False,
        ),
    ] = None,
    source: SourceOpt = None,
    clear_server_metrics: Annotated[
        bool, typer.Option("--clear-server-metrics", help="Remove every server metric.")
    ] = False,
    steps: StepsOpt = None,
    step_duration: StepDurationOpt = None,
    step_settle: StepSettleOpt = None,
    clear_steps: Annotated[
        bool, typer.Option("--clear-steps", help="Remove the steps: runs of one load again.")
    ] = False,
) -> None:
    """Change only the given fields of a test, and print it as stored."""
    from loadmgr.service.definitions.tests import TestChanges, change_test

    changes = given(TestChanges, locals())
    updated = change_test(context.store, context.settings.user, test, changes, notice)
    renderer.one(updated, test_view, csv_columns=TEST_CSV)


@app.command("delete")
@removes
def delete(
    context: AppContext,
    test: TestRef,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also delete its runs and their metrics, and its schedules and their slots.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> tuple[str, str]:
    """Delete a test; one with runs or schedules only with --force (exit 5 without)."""
    from loadmgr.service.definitions.tests import delete_preview, delete_test

    store = context.store
    if not yes and sys.stdin.isatty():
        preview = delete_preview(store, test)
        found, runs, schedules = preview.test, preview.runs, preview.schedules
        what = f"test {found.name!r} ({found.id})" + (
            f" and its {runs} run(s)" if runs and force else ""
        )
        what += f" and its {schedules} schedule(s)" if schedules and force else ""
        if not typer.confirm(f"Delete {what}?", err=True):
            raise typer.Abort()
    result = delete_test(store, test, force=force)
    also = [f"{result.runs_deleted} run(s)"] if result.runs_deleted else []
    if result.schedules_deleted:
        also.append(f"{result.schedules_deleted} schedule(s)")
    extra = f" with {' and '.join(also)}" if also else ""
    return result.test.id, f"deleted test {result.test.name!r} ({result.test.id}){extra}"
