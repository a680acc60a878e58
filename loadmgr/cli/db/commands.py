"""`loadmgr db`: the embedded MongoDB-wire store (SecantusDB) on this machine, and the
schema of the database in use (`migrate`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.context import app_context, renders
from loadmgr.cli.db import retention
from loadmgr.cli.groups import new_group
from loadmgr.cli.inputs import given
from loadmgr.cli.output import notice

if TYPE_CHECKING:
    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer

app = new_group("db")
app.add_typer(retention.app, name="retention")

# `-o csv` (docs/output.md): `db status`/`db start`, `db migrate` and `db migrate --dry-run`.
STATUS_CSV = (
    "running",
    "inUse",
    "pid",
    "port",
    "uri",
    "dataDir",
    "logFile",
    "runFolders",
    "runFoldersBytes",
    "runFoldersDir",
    "space.runBytes",
    "space.intervalBytes",
    "space.bytesPerRunHour",
)
PRUNE_CSV = (
    "removed",
    "freedBytes",
    "olderThanSec",
    "unfinished",
    "dryRun",
    "retention.runsDropped",
    "retention.intervalsDropped",
    "retention.intervalsMerged",
    "retention.windowsWritten",
)
_IMPORTED_CSV = (
    "goImport.tenantFrom",
    "goImport.converted",
    "goImport.collections.collection",
    "goImport.collections.examined",
    "goImport.collections.converted",
)
MIGRATE_CSV = (
    "fromVersion",
    "toVersion",
    "steps.version",
    "steps.examined",
    "steps.changed",
    *_IMPORTED_CSV,
    "compactIntervals.examined",
    "compactIntervals.changed",
)
MIGRATE_DRY_RUN_CSV = ("dryRun", "pendingSteps", *_IMPORTED_CSV, "compactIntervals.examined")


@app.command("status")
@renders
def status(context: AppContext, renderer: Renderer) -> None:
    """Whether the embedded store is running, where, and where its data lives; the
    local runs' folders (runs/RUN/: locustfile, Locust logs) with the space they take; and
    where the database's space goes: bytes per collection, per test and per run-hour."""
    _print_state(context, renderer, start=False)


@app.command("start")
@renders
def start(context: AppContext, renderer: Renderer) -> None:
    """Start the embedded store (a no-op when it is running)."""
    _print_state(context, renderer, start=True)


def _print_state(context: AppContext, renderer: Renderer, *, start: bool) -> None:
    from loadmgr.service.context import embedded_state

    state = embedded_state(context.settings, start=start)
    if not start:
        from loadmgr.service.upkeep.space import database_space

        state["space"], why = database_space(context.settings)
        if why:
            notice(f"space not measured: {why}")
    renderer.one(state, id_key="uri", csv_columns=STATUS_CSV)


@app.command("prune")
@renders
def prune(
    context: AppContext,
    renderer: Renderer,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Remove run folders unchanged for this long: 7d, 12h, 0s (default: "
            "LOADMGR_RUN_FILES_KEEP, else 7d).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what retention would merge and drop; change nothing."),
    ] = False,
) -> None:
    """Remove old local run folders (runs/RUN/: the locustfile and Locust logs of a run on
    the local cluster), and apply the retention policies (`db retention`) to the runs that
    ended: merge old intervals into longer windows, drop what a policy says. A live run is
    never touched. Local runs remove old folders too, briefly, as they start."""
    from loadmgr.service.runs.folders import prune_old
    from loadmgr.service.upkeep.prune import prune_history

    store = context.store
    result: dict[str, Any] = {"removed": [], "freedBytes": 0, "olderThanSec": None}
    if not dry_run:
        result = prune_old(store, context.settings.home, older_than)
    result["dryRun"] = dry_run
    result["retention"] = prune_history(store, dry_run=dry_run)
    renderer.one(result, id_key="removed", csv_columns=PRUNE_CSV)


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the embedded store; its data stays for the next start."""
    from loadmgr.service.context import stop_embedded

    if stop_embedded(app_context(ctx).settings):
        notice("embedded store stopped")
    else:
        notice("embedded store was not running")


@app.command("migrate")
@renders
def migrate(
    context: AppContext,
    renderer: Renderer,
    rerun: Annotated[
        bool,
        typer.Option("--rerun", help="Run every step again, not only the pending ones."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would change; change nothing."),
    ] = False,
    tenant_from: Annotated[
        str,
        typer.Option(
            "--tenant-from",
            help="Which Go control plane id becomes a converted document's tenant.",
            **choices(("account", "org", "project")),
        ),
    ] = "account",
    to_database: Annotated[
        str | None,
        typer.Option(
            "--to-database",
            help="Copy every document into this new database (same server) and migrate "
            "the copy; the database in use is left as it is.",
        ),
    ] = None,
) -> None:
    """Bring the database's documents to this loadmgr's schema (safe to run again).

    Works on the configured database (the embedded store without a MongoDB URI), on all
    of it whatever --tenant/--env say: a database has one schema. Its steps recompute
    every ended run's verdict and replace outdated indexes; a newer loadmgr also runs
    them by itself on its first use of an older database. Only this command converts
    the Go control plane's tests, runs and metrics to loadmgr's documents (README,
    "Coming from the Go control plane").
    """
    from loadmgr.service.migration.database import MigrateOptions, migrate_database

    options = given(MigrateOptions, locals())
    store, user = context.unmigrated_store(), context.settings.user
    with _progress_bar(renderer.quiet or dry_run) as (each, progress):
        migrated = migrate_database(
            store, user, options, notify=notice, each=each, progress=progress
        )
    _summary(migrated["goImport"])
    compacted = migrated["compactIntervals"]
    if dry_run:
        notice(f"metrics_timeseries: would make {compacted['examined']} intervals compact")
    elif compacted["examined"]:
        notice(
            f"metrics_timeseries: {compacted['examined']} plain or older-form intervals examined, "
            f"{compacted['changed']} made compact"
        )
    if dry_run:
        renderer.one(migrated, id_key="dryRun", csv_columns=MIGRATE_DRY_RUN_CSV)
    else:
        renderer.one(migrated, id_key="toVersion", csv_columns=MIGRATE_CSV)


@contextmanager
def _progress_bar(
    quiet: bool,
) -> Iterator[tuple[Callable[[str], None], Callable[[str, int, int], None]]]:
    """On a terminal, a bar per collection instead of a line per document (the summary
    follows either way); elsewhere (cron, pipes) the lines, which logs keep. The bar
    shows from the first collection on, so the schema steps' lines come before it."""
    if quiet or not sys.stderr.isatty():
        yield notice, lambda _name, _done, _total: None
        return
    from rich.progress import Progress

    from loadmgr.cli.output import stderr_console

    bars: dict[str, Any] = {}
    with ExitStack() as stack:
        shown: list[Progress] = []

        def progress(name: str, done: int, total: int) -> None:
            if not shown:
                bar = Progress(console=stderr_console(), transient=True)
                shown.append(stack.enter_context(bar))
            if name not in bars:
                bars[name] = shown[0].add_task(f"converting {name}", total=max(total, 1))
            shown[0].update(bars[name], completed=done if total else 1)

        yield (lambda _line: None), progress


def _summary(imported: dict[str, Any]) -> None:
    """One line per collection of what the Go import did, and why anything was skipped."""
    verb = "would convert" if imported["dryRun"] else "converted"
    for item in imported["collections"]:
        if item["collection"] == "script_revisions":
            if item["examined"]:
                notice(
                    f"script_revisions: {item['examined']} kept as they are (each test's "
                    "latest becomes its stored locustfile)"
                )
            continue
        notice(
            f"{item['collection']}: {item['examined']} Go documents, {verb} "
            f"{item['converted']}, skipped {len(item['skipped'])}"
        )
        for skipped in item["skipped"]:
            notice(f"  skipped {skipped['id']}: {skipped['reason']}")
