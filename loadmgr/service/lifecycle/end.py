"""What follows a run's recorded end, wherever it was collected: the default end steps.

The collector that records a run's end (in the foreground or in the background, or one
that took the run over) is handed `end_plan()`, the same ordered list of steps wherever a
collector is built (service/collection/end_steps.py runs them). Before its write, the
checks the run asked for at its start (`requestedChecks`) are judged with `judged_checks`
and stored with the end, in one write, so a detached run is judged like a foreground one
and nobody reads a verdict that is about to change. Once the end is stored (with
`endSteps: pending`), those who want to know are told (the schedule, then webhooks), once:
whoever claims the steps does them, and `runs follow` finishes them for a collector that
died in between. Nothing here may fail the run: a step that cannot be done is one message,
and the run stays as recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTestRun, RunStatus
from loadmgr.service.collection.end_steps import EndPlan, EndStep, run_end_steps, why

if TYPE_CHECKING:
    from loadmgr.store import Store

Message = Callable[[str], None]


def end_plan() -> EndPlan:
    """What every collector does at its run's end, in order: the requested checks with
    the end's write; then the server metrics, the run's steady samples, the schedule's
    bookkeeping, then notifications (last: they tell the verdict as final)."""
    from loadmgr.service.server_metrics.at_end import ServerMetricsAtEnd
    from loadmgr.service.server_metrics.live import live_reader

    return EndPlan(
        # Server metrics first: the schedule and the webhooks are told the verdict they make.
        steps=(
            StepWindows(),
            RequestedChecks(),
            ServerMetricsAtEnd(),
            SteadySamples(),
            ScheduleBookkeeping(),
            Notifications(),
        ),
        warmup_stats=_stats_after_warmup,
        interval_reader=live_reader,
    )


class StepWindows(EndStep):
    """A stepped run's steps, each as its own window (`stepWindows`), with its end."""

    name = "record the steps' windows"

    def with_end(
        self, store: Store, run: LoadTestRun, changes: Mapping[str, Any], message: Message
    ) -> dict[str, Any]:
        if not run.steps:
            return {}
        from loadmgr.service.capacity.step_windows import step_windows

        return {"stepWindows": step_windows(store, run)}


class RequestedChecks(EndStep):
    """The baseline and trend checks the run asked for, judged on the run as it is about
    to be stored, with the verdict they make."""

    name = "judge the requested checks"

    def with_end(
        self, store: Store, run: LoadTestRun, changes: Mapping[str, Any], message: Message
    ) -> dict[str, Any]:
        if not run.requestedChecks:
            return {}  # most runs: no need to build the ended run to judge nothing
        try:
            ended = LoadTestRun.model_validate({**run.model_dump(mode="python"), **changes})
        except ValueError as exc:  # cannot happen with our own fields; never lose the end
            message(f"the requested checks were not judged: {exc}")
            return {}
        return judged_checks(store, ended, message)


class SteadySamples(EndStep):
    """The run's steady samples stored on it (`samples`), so a comparison with it reads
    no interval. After the end's write: every interval is stored by then."""

    name = "store the run's steady samples"

    def after_end(self, store: Store, run: LoadTestRun, message: Message) -> None:
        from loadmgr.service.analysis.run_samples import samples_at_end

        samples = samples_at_end(store, run)
        if samples is not None:
            store.runs.set_samples(run.id, samples)


class ScheduleBookkeeping(EndStep):
    """A schedule's run: its slot gets the verdict; its failures in a row are counted."""

    name = "update the run's schedule"

    def after_end(self, store: Store, run: LoadTestRun, message: Message) -> None:
        from loadmgr.service.scheduling.schedules import schedule_run_ended

        schedule_run_ended(store, run)


class Notifications(EndStep):
    """The webhooks subscribed to the run's end (they record how each delivery went)."""

    name = "send the run's notifications"

    def after_end(self, store: Store, run: LoadTestRun, message: Message) -> None:
        from loadmgr.service.notifications.subscriptions import notify_run_end

        notify_run_end(store, run, message)


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
        from loadmgr.service.analysis.trend_gate import trend_changes

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


def _check(judge: Callable[[], dict[str, Any]], reference: str, message: Message) -> dict[str, Any]:
    try:
        return judge()
    except Exception as exc:  # a check that cannot be done leaves the verdict as decided
        message(f"not compared with {reference}: {why(exc)}")
        return {}


def run_ended(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """Do the default end steps of a run whose end is stored, once (see `run_end_steps`).

    Returns the run as stored afterwards."""
    return run_end_steps(end_plan().steps, store, run, message)


def finish_end_steps(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """A run whose collector recorded its end and died before what follows it (`endSteps`
    still `pending`): do that now (`runs follow`). Otherwise the run as it is."""
    if run.status.is_active or run.endSteps != "pending":
        return run
    message("its collector stopped right after recording the end: doing what follows it now")
    return run_ended(store, run, message)


def _stats_after_warmup(store: Store, run: LoadTestRun, start: float) -> dict[str, Any]:
    """The run's stats after its warm-up, exact from its intervals' histograms."""
    from loadmgr.service.analysis.windows import Window, window_stats

    return window_stats(store, run, Window(start=start))


def _limits(allowed: dict[Any, Any]) -> dict[str, float]:
    """`requestedChecks.baseline` as limits; a stored value that is no number is refused."""
    limits: dict[str, float] = {}
    for metric, value in allowed.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationFailed(f"the stored limit of {metric!r} is not a number")
        limits[str(metric)] = float(value)
    return limits
