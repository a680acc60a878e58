"""What a collector does around its run's recorded end, handed to it rather than imported.

The collector records a run's end; what follows (the checks the run asked for, the
schedule's bookkeeping, notifications) belongs to higher floors of the service. They are
composed by `service/lifecycle/` into an `EndPlan` and given to each collector, so this
package never imports them. Each `EndStep` has two moments: `with_end` (fields stored with
the end, in the same write, so no reader sees a verdict that is about to change) and
`after_end` (done once the end is stored, by whoever claims the run's `endSteps`; `runs
follow` finishes them for a collector killed in between). A step that raises is one
message; the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from loadmgr.errors import LoadmgrError
from loadmgr.models import LoadTestRun, MetricSnapshot, ThresholdResult

if TYPE_CHECKING:
    from loadmgr.store import Store

Message = Callable[[str], None]
# The stats thresholds judge for a run with a warm-up: those after its first `start` seconds.
WarmupStats = Callable[["Store", LoadTestRun, float], dict[str, Any]]


class IntervalReader(Protocol):
    """Reads more for each interval on a thread of its own (server metrics, issue 23):
    handed each spooled interval without waiting, asked what to tell and whether a
    threshold broke at each poll, closed before the run's end is recorded."""

    def interval(self, snapshot: MetricSnapshot) -> None: ...

    def take(self) -> tuple[list[str], ThresholdResult | None]: ...

    def close(self, within: float) -> None: ...


# The reader of a run (its store, the run, --abort-on-fail); None when it reads nothing.
ReaderFactory = Callable[["Store", LoadTestRun, bool], "IntervalReader | None"]


class EndStep(Protocol):
    """One step of a run's end. `name` completes "could not …" when the step raises.

    Subclass it to inherit the defaults: a step usually acts in one of the two moments."""

    name: str
    # Its `after_end` may store new fields on the run (a verdict decided again): the steps
    # after it, and the caller, are given the run as stored then.
    changes_run: bool = False

    def with_end(
        self, store: Store, run: LoadTestRun, changes: Mapping[str, Any], message: Message
    ) -> dict[str, Any]:
        """Fields to store with the end (`run` as it was, `changes` the end's own fields)."""
        return {}

    def after_end(self, store: Store, run: LoadTestRun, message: Message) -> None:
        """Done once the end is stored, by the one that claimed the run's end steps."""
        return None


@dataclass(frozen=True)
class EndPlan:
    """The steps of a run's end, in order, and how a warm-up is left out of its stats."""

    steps: Sequence[EndStep] = ()
    warmup_stats: WarmupStats | None = None
    interval_reader: ReaderFactory | None = None


def fields_with_end(
    steps: Sequence[EndStep],
    store: Store,
    run: LoadTestRun,
    changes: Mapping[str, Any],
    message: Message,
) -> dict[str, Any]:
    """What every step adds to the end's write, in order (a later step sees the earlier's)."""
    added: dict[str, Any] = {}
    for step in steps:
        try:
            added.update(step.with_end(store, run, {**changes, **added}, message))
        except Exception as exc:  # the end is recorded as decided without this step
            message(f"could not {step.name}: {why(exc)}")
    return added


def run_end_steps(
    steps: Sequence[EndStep], store: Store, run: LoadTestRun, message: Message
) -> LoadTestRun:
    """Do the steps that follow the run's stored end, once: the caller that moves its
    `endSteps` from `pending` to `running` does them (another finds nothing to do).

    Returns the run as stored afterwards. Nothing here may fail the run."""
    try:
        if not store.runs.claim_end_steps(run.id):
            return run  # another collector, or `runs follow`, has done or is doing them
    except LoadmgrError as exc:  # MongoDB unavailable: try the steps all the same
        message(f"the run's end steps could not be claimed: {exc.message}")
    for step in steps:
        try:
            step.after_end(store, run, message)
            if getattr(step, "changes_run", False):
                run = store.runs.find_by_id(run.id) or run
        except Exception as exc:  # the run's end is recorded: nothing may undo or crash it
            message(f"could not {step.name}: {why(exc)}")
    try:
        store.runs.end_steps_done(run.id)
        run.endSteps = "done"
    except LoadmgrError as exc:
        message(f"the run's end steps could not be marked done: {exc.message}")
    return run


def why(exc: Exception) -> str:
    """A failure in our words: a LoadmgrError's message, else the exception's kind only
    (its text may quote anything, a webhook URL included)."""
    return exc.message if isinstance(exc, LoadmgrError) else f"unexpected {type(exc).__name__}"
