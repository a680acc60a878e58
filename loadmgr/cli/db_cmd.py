"""`loadmgr db`: the embedded MongoDB-wire store (SecantusDB) on this machine, and the
schema of the database in use (`migrate`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loadmgr.cli.context import app_context
from loadmgr.cli.groups import group_help
from loadmgr.cli.output import OutputOption, QuietOption, notice

app = typer.Typer(rich_markup_mode=None, help=group_help("db"), no_args_is_help=True)


def _state_document(ctx: typer.Context) -> dict[str, Any]:
    from loadmgr.store.embedded import EmbeddedServer

    context = app_context(ctx)
    state = EmbeddedServer(context.settings.home).status()
    return {
        "running": state.running,
        "pid": state.pid,
        "port": state.port,
        "uri": state.uri,
        "dataDir": str(state.data_dir),
        "logFile": str(state.log_file),
        "inUse": not context.settings.mongo_uri,
    }


@app.command("status")
def status(ctx: typer.Context, output: OutputOption = None, quiet: QuietOption = False) -> None:
    """Whether the embedded store is running, where, and where its data lives."""
    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    renderer.one(_state_document(ctx), id_key="uri")


@app.command("start")
def start(ctx: typer.Context, output: OutputOption = None, quiet: QuietOption = False) -> None:
    """Start the embedded store (a no-op when it is running)."""
    from loadmgr.store.embedded import EmbeddedServer

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    EmbeddedServer(context.settings.home).ensure_running()
    renderer.one(_state_document(ctx), id_key="uri")


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the embedded store; its data stays for the next start."""
    from loadmgr.store.embedded import EmbeddedServer

    context = app_context(ctx)
    if EmbeddedServer(context.settings.home).stop():
        notice("embedded store stopped")
    else:
        notice("embedded store was not running")


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    rerun: Annotated[
        bool,
        typer.Option("--rerun", help="Run every step again, not only the pending ones."),
    ] = False,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Bring the database's documents to this loadmgr's schema (safe to run again).

    Works on the configured database (the embedded store without a MongoDB URI), on all
    of it whatever --tenant/--env say: a database has one schema. Today's step recomputes
    every ended run's verdict and verdictReasons from what it recorded. A newer loadmgr
    also runs the pending steps by itself on its first use of an older database.
    """
    from loadmgr.service.migrations import migrate as run_migrations

    context = app_context(ctx)
    renderer = context.renderer(output, quiet)
    report = run_migrations(context.unmigrated_store(), context.settings.user, rerun=rerun)
    if not report.steps:
        notice(f"the database is already at schema {report.to_version}; nothing to do")
    for step in report.steps:
        notice(
            f"schema {step.version}: {step.description}: {step.examined} examined, "
            f"{step.changed} changed"
        )
    renderer.one(report.to_document(), id_key="toVersion")
