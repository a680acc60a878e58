"""`loadmgr db`: the embedded MongoDB-wire store (SecantusDB) on this machine."""

from __future__ import annotations

from typing import Any

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
