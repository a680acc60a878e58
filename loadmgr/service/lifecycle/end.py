"""What follows a run's recorded end, wherever it was collected.

The collector that records a run's end (in the foreground or in the background, or one
that took the run over) judges the checks the run asked for at its start
(`requestedChecks`) with `judged_checks` and stores them with the end, in one write, so a
detached run is judged like a foreground one and nobody reads a verdict that is about to
change. Then, once the end is stored (with `endSteps: pending`), it calls `run_ended`, and
those who want to know are told (schedules, webhooks), once: whoever claims the steps does
them, and `runs follow` finishes them for a collector that died in between. Nothing here
may fail the run: a step that cannot be done is one message, and the run stays as
recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loadmgr.errors import LoadmgrError, ValidationFailed
from loadmgr.models import LoadTestRun, RunStatus

if TYPE_CHECKING:
    from loadmgr.store import Store

Message = Callable[[str], None]


def judged_checks(store: Store, ended: LoadTestRun, message: Message) -> dict[str, Any]:
    """The checks a finished run asked for (`requestedChecks`: baseline, trend), with the
    verdict they make: the fields to store with the run's end, in the same write, so no
    reader ever sees its verdict without them. Empty when it asked for none, or did not
    finish. A check that cannot be done is one message, and the verdict stands without it.
    """
    from loadmgr.models.verdicts import ReasonKind, parse_reasons
    from loadmgr.service.judging.verdicts import with_verdict

    if ended.status != RunStatus.FINISHED:
        return {}
    changes: dict[str, Any] = {}
    allowed = ended.requestedChecks.get("baseline")
    if isinstance(allowed, dict):
        from loadmgr.service.analysis.compare import baseline_changes

        changes.update(
            _check(
                lambda: baseline_changes(store, ended, _limits(allowed)), "the baseline", message
            )
        )
    trend = ended.requestedChecks.get("trend")
    if isinstance(trend, dict):
        from loadmgr.service.analysis.trends import trend_changes

        changes.update(_check(lambda: trend_changes(store, ended, trend), "its trend", message))
    if not changes:
        return {}
    changes = with_verdict(ended, changes)
    reasons = parse_reasons(changes["verdictReasons"])
    for kind, reference, field in (
        (ReasonKind.BASELINE, "the baseline", "baselineChecks"),
        (ReasonKind.TREND, "its trend", "trendChecks"),
    ):
        if field not in changes:
            continue
        regressions = [r for r in reasons if r.kind == kind]
        for reason in regressions:
            message(f"regression: {reason.message}")
        if not regressions:
            message(f"no regression against {reference}")
    return changes


def _check(
    judge: Callable[[], dict[str, Any]], reference: str, message: Message
) -> dict[str, Any]:
    try:
        return judge()
    except Exception as exc:  # a check that cannot be done leaves the verdict as decided
        message(f"not compared with {reference}: {_why(exc)}")
        return {}


def run_ended(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """Tell who wants to know that the run ended, with its final verdict.

    Returns the run as stored afterwards. Done once: the caller that moves the run's
    `endSteps` from `pending` to `running` does them (another finds nothing to do).
    """
    try:
        if not store.runs.claim_end_steps(run.id):
            return run  # another collector, or `runs follow`, has done or is doing them
    except LoadmgrError as exc:  # MongoDB unavailable: try the steps all the same
        message(f"the run's end steps could not be claimed: {exc.message}")
    _tell_schedule(store, run, message)
    from loadmgr.service.notifications.subscriptions import notify_run_end

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
    from loadmgr.service.scheduling.schedules import schedule_run_ended

    try:
        schedule_run_ended(store, run)
    except Exception as exc:  # the run's end is recorded: nothing here may undo or crash it
        message(f"could not update the run's schedule: {_why(exc)}")


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
