"""`loadmgr runs` follow, stop, list and show: the runs there are, and acting on one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.completion import RunRef, complete_test
from loadmgr.cli.context import renders
from loadmgr.cli.options import LimitOpt
from loadmgr.cli.output import Renderer, jsonable, notice
from loadmgr.cli.runs.views import RUN_CSV, list_columns, run_exit_code, run_view
from loadmgr.errors import ExitCode

if TYPE_CHECKING:
    from loadmgr.cli.context import AppContext
    from loadmgr.cli.runs.live import PlainObserver
    from loadmgr.models import LoadTestRun

app = typer.Typer(rich_markup_mode=None)  # its commands join `loadmgr.cli.runs.app`

# RunStatus and the verdict filters, as text: this module stays light to import (a unit
# test checks they match the models).
STATUSES = ("Pending", "Running", "Stopping", "Finished", "Failed", "Stopped")
VERDICTS = ("passed", "failed", "inconclusive", "aborted", "error", "none")


def _finish(renderer: Renderer, run: LoadTestRun, interrupted: bool) -> None:
    """Print the run and exit with its code."""
    renderer.one(run, run_view, csv_columns=RUN_CSV)
    raise typer.Exit(run_exit_code(run, interrupted))


@app.command("follow")
@renders
def follow(context: AppContext, renderer: Renderer, run_id: RunRef) -> None:
    """Watch a run live; take over collecting if its collector died.

    Exits like `start`, with the run's verdict: 0 passed, 1 failed, 8 inconclusive,
    7 aborted, 6 error
    (3 when MongoDB failed); 130 when Ctrl-C stops the watching (the run goes on).
    """
    from loadmgr.service.lifecycle.control import follow_run
    from loadmgr.service.runs.lookup import get_run

    observers: list[PlainObserver] = []

    def observer() -> PlainObserver:
        from loadmgr.cli.runs.live import make_observer

        observers.append(make_observer(renderer.quiet, context.store.server_now))
        return observers[-1]

    followed = follow_run(
        context.store,
        get_run(context.store, run_id),
        home=context.settings.home,
        observer=observer,
        notify=notice,
    )
    if followed.stopped_watching:
        observers[-1].close()
        notice("stopped watching; the run goes on")
        raise typer.Exit(ExitCode.INTERRUPTED)
    _finish(renderer, followed.run, followed.interrupted)


@app.command("stop")
@renders
def stop(context: AppContext, renderer: Renderer, run_id: RunRef) -> None:
    """Stop a run: the load stops, the run is recorded `Finished` (stopReason user).

    Its verdict is `aborted`; this command exits 0 once it is stopped, while the `runs
    start` or `runs follow` that was following it exits 7.
    """
    from loadmgr.service.lifecycle.control import stop_run
    from loadmgr.service.runs.lookup import get_run

    run = get_run(context.store, run_id)
    if not run.status.is_active:
        notice(f"run {run.id} is already {run.status.value}")
    else:
        run = stop_run(
            context.store,
            run,
            user=context.settings.user,
            home=context.settings.home,
            notify=notice,
        )
    renderer.one(run, run_view, csv_columns=RUN_CSV)


@app.command("list")
@renders
def list_(
    context: AppContext,
    renderer: Renderer,
    test: Annotated[
        str | None,
        typer.Option("--test", help="Only runs of this test.", autocompletion=complete_test),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only with this status (repeatable).", **choices(STATUSES)),
    ] = None,
    verdict: Annotated[
        list[str] | None,
        typer.Option(
            "--verdict",
            help="Only with this verdict; none: without one (repeatable).",
            **choices(VERDICTS),
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only created since: 2h, 7d, or an ISO date."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", help="Only runs of tests with this tag (repeatable: all must match)."
        ),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option("--branch", help="Only runs that measured this branch (their CI context)."),
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option("--commit", help="Only runs of the commit starting so (7+ hex digits)."),
    ] = None,
    absolute_time: Annotated[
        bool,
        typer.Option(
            "--absolute-time",
            help="Table: when each run started as an ISO-8601 UTC date, not '3 h ago'.",
        ),
    ] = False,
    limit: LimitOpt = 50,
) -> None:
    """List runs, newest first; a run whose collector died is shown as stale."""
    from loadmgr.service.runs.lookup import list_runs, since_cutoff

    cutoff = since_cutoff(since) if since else None
    runs = list_runs(
        context.store,
        test_ref=test,
        statuses=status,
        verdicts=verdict,
        since=cutoff,
        limit=limit,
        tags=tag,
        branch=branch,
        commit=commit,
    )
    columns = list_columns(absolute_time=absolute_time)
    renderer.many(runs, columns, empty="no runs found", csv_columns=RUN_CSV)


@app.command("show")
@renders
def show(context: AppContext, renderer: Renderer, run_id: RunRef) -> None:
    """Show one run, with a summary of its metrics and thresholds."""
    from loadmgr.service.runs.lease import is_stale
    from loadmgr.service.runs.lookup import get_run

    run = get_run(context.store, run_id)
    data = jsonable(run)
    if renderer.is_table:
        data["stale"] = is_stale(run, context.store.server_now())
    renderer.one(run if not renderer.is_table else data, run_view, csv_columns=RUN_CSV)
