"""What follows a run's recorded end, wherever it was collected.

The collector that recorded a run's end (in the foreground or in the background, or one
that took the run over) calls `run_ended` exactly once, after the end is stored: the checks
the run asked for at its start (`requestedChecks`) join its verdict here, so a detached
run is judged like a foreground one, and only then is anyone told (schedules, webhooks),
so they hear the final verdict. Nothing here may fail the run: a step that cannot be done
is one message, and the run stays as recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from loadmgr.errors import LoadmgrError
from loadmgr.models import LoadTestRun, RunStatus

if TYPE_CHECKING:
    from loadmgr.store import Store

Message = Callable[[str], None]


def run_ended(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """Apply the run's requested checks to its verdict, then tell who wants to know.

    Returns the run as stored afterwards."""
    run = _checked(store, run, message)
    from loadmgr.service.notifications import notify_run_end

    notify_run_end(store, run, message)  # last: it tells the verdict as final
    return run


def _checked(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """The run with its baseline (and trend) checks applied, when it asked for them."""
    if run.status != RunStatus.FINISHED:
        return run
    allowed = run.requestedChecks.get("baseline")
    if isinstance(allowed, dict):
        run = _with_baseline(store, run, allowed, message)
    return run


def _with_baseline(
    store: Store, run: LoadTestRun, allowed: dict[str, float], message: Message
) -> LoadTestRun:
    from loadmgr.models.verdicts import ReasonKind
    from loadmgr.service.compare import apply_baseline

    try:
        run = apply_baseline(store, run, {str(k): float(v) for k, v in allowed.items()})
    except LoadmgrError as exc:
        message(f"not compared with the baseline: {exc.message}")
        return run
    regressions = [r for r in run.verdictReasons if r.kind == ReasonKind.BASELINE]
    for reason in regressions:
        message(f"regression: {reason.message}")
    if not regressions:
        message("no regression against the baseline")
    return run
