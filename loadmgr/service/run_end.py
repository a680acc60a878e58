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
from typing import TYPE_CHECKING, Any

from loadmgr.errors import LoadmgrError, ValidationFailed
from loadmgr.models import LoadTestRun, RunStatus

if TYPE_CHECKING:
    from loadmgr.models.verdicts import ReasonKind
    from loadmgr.store import Store

Message = Callable[[str], None]


def run_ended(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """Apply the run's requested checks to its verdict, then tell who wants to know.

    Returns the run as stored afterwards. Done once: the caller that moves the run's
    `endSteps` from `pending` to `running` does them (another finds nothing to do).
    """
    try:
        if not store.runs.claim_end_steps(run.id):
            return run  # another collector, or `runs follow`, has done or is doing them
    except LoadmgrError as exc:  # MongoDB unavailable: try the steps all the same
        message(f"the run's end steps could not be claimed: {exc.message}")
    run = _checked(store, run, message)
    _tell_schedule(store, run, message)
    from loadmgr.service.notifications import notify_run_end

    notify_run_end(store, run, message)  # last: it tells the verdict as final
    try:
        store.runs.end_steps_done(run.id)
        run.endSteps = "done"
    except LoadmgrError as exc:
        message(f"the run's end steps could not be marked done: {exc.message}")
    return run


def finish_end_steps(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """A run whose collector recorded its end and died before what follows it (`endSteps`
    still `pending`): do that now (`runs follow`). Otherwise the run as it is."""
    if run.status.is_active or run.endSteps != "pending":
        return run
    message("its collector stopped right after recording the end: doing what follows it now")
    return run_ended(store, run, message)


def _tell_schedule(store: Store, run: LoadTestRun, message: Message) -> None:
    """A schedule's run: its slot gets the verdict; its failures in a row are counted."""
    from loadmgr.service.schedules import schedule_run_ended

    try:
        schedule_run_ended(store, run)
    except Exception as exc:  # the run's end is recorded: nothing here may undo or crash it
        message(f"could not update the run's schedule: {_why(exc)}")


def _checked(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """The run with its baseline and trend checks applied, when it asked for them."""
    from loadmgr.models.verdicts import ReasonKind

    if run.status != RunStatus.FINISHED:
        return run
    allowed = run.requestedChecks.get("baseline")
    if isinstance(allowed, dict):
        from loadmgr.service.compare import apply_baseline

        run = _applied(
            run,
            lambda ended: apply_baseline(store, ended, _limits(allowed)),
            ReasonKind.BASELINE,
            "the baseline",
            message,
        )
    trend = run.requestedChecks.get("trend")
    if isinstance(trend, dict):
        from loadmgr.service.trends import apply_trend

        run = _applied(
            run, lambda ended: apply_trend(store, ended, trend), ReasonKind.TREND, "its trend",
            message,
        )
    return run


def _applied(
    run: LoadTestRun,
    apply: Callable[[LoadTestRun], LoadTestRun],
    kind: ReasonKind,
    reference: str,
    message: Message,
) -> LoadTestRun:
    """`apply(run)`, its regressions told; a check that cannot be done is one message."""
    try:
        run = apply(run)
    except Exception as exc:  # a check that cannot be done leaves the verdict as recorded
        message(f"not compared with {reference}: {_why(exc)}")
        return run
    regressions = [r for r in run.verdictReasons if r.kind == kind]
    for reason in regressions:
        message(f"regression: {reason.message}")
    if not regressions:
        message(f"no regression against {reference}")
    return run


def _limits(allowed: dict[Any, Any]) -> dict[str, float]:
    """`requestedChecks.baseline` as limits; a stored value that is no number is refused."""
    limits: dict[str, float] = {}
    for metric, value in allowed.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationFailed(f"the stored limit of {metric!r} is not a number")
        limits[str(metric)] = float(value)
    return limits


def _why(exc: Exception) -> str:
    """A failure in our words: a LoadmgrError's message, else the exception's kind only
    (its text may quote anything, a webhook URL included)."""
    return exc.message if isinstance(exc, LoadmgrError) else f"unexpected {type(exc).__name__}"
