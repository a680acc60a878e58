"""Thresholds evaluated on a run's final stats, and the one verdict a run gets.

`decide_verdict` is the only place a verdict is decided: the collector calls it when a run
ends, `apply_baseline` when the run has been compared with its baseline, and
`recompute_verdict` (for `db migrate`) on what a stored run recorded. Every view reads the
stored `verdict` and `verdictReasons`, so they never disagree.

Precedence, highest first: `error` (the run could not complete) > `aborted` (stopped before
its duration by someone or something else) > `inconclusive` (a check failed while the load
generator was saturated or lost a worker: service/judging/generator.py) > `failed` (a check
did not hold) > `inconclusive` (none failed, but a comparison's change is not significant)
> `passed` (every check held) > null (nothing was checked, nothing went wrong).
An aborted or errored run is not judged `failed` even when a check failed on its partial
numbers: they cover part of the load only, so neither pass nor fail would be fair; the
checks that failed are still listed in `verdictReasons`, after the cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ExitCode, LoadmgrError, NotFound
from loadmgr.models import (
    LoadTestRun,
    ReasonKind,
    Regression,
    RunStatus,
    StopReason,
    ThresholdResult,
    Verdict,
    VerdictReason,
    parse_threshold,
    utcnow,
)
from loadmgr.models.formatting import (
    describe_exception,
    format_count,
    threshold_line,
    threshold_of,
    threshold_value,
)
from loadmgr.models.stats import metric_value
from loadmgr.models.verdicts import parse_reasons
from loadmgr.service.judging.generator import with_generator
from loadmgr.service.judging.stored_checks import (
    count_of,
    stored_checks,
    stored_results,
    stored_trend_checks,
)

if TYPE_CHECKING:
    from loadmgr.store import Store

# Where an error came from; the CLI maps `database` to exit 3 and the others to 6.
ERROR_SOURCES = ("locust", "database", "loadmgr")


class Breach(ThresholdResult):
    """A threshold broken while the run went on (`--abort-on-fail`), judged over a window."""

    windowIntervals: int | None = None
    windowRequests: int | None = None


def evaluate(expressions: list[str], final: dict[str, Any]) -> list[ThresholdResult]:
    """Each threshold's result on the final stats."""
    results = []
    for expression in expressions:
        threshold = parse_threshold(expression)
        actual = metric_value(final, threshold.metric, threshold.scope)
        results.append(ThresholdResult.of(threshold, actual))
    return results


def verdict_of(results: list[ThresholdResult]) -> Verdict | None:
    """Thresholds alone: passed, failed, or None without any. Prefer `decide_verdict`."""
    if not results:
        return None
    return Verdict.PASSED if all(r.passed for r in results) else Verdict.FAILED


# -- the verdict ---------------------------------------------------------------------------


def _status(value: RunStatus | str | None) -> str:
    raw = value.value if isinstance(value, RunStatus) else str(value or "")
    return raw.strip().lower()


def _stop_reason(value: StopReason | str | None) -> str | None:
    if value is None:
        return None
    raw = value.value if isinstance(value, StopReason) else str(value)
    return raw.strip().lower() or None


def _error_source(error: str | LoadmgrError | None, default: str | None) -> str:
    if default in ERROR_SOURCES:
        return str(default)
    if isinstance(error, LoadmgrError) and error.exit_code == ExitCode.DATABASE:
        return "database"
    return "locust"


def _threshold_reason(result: ThresholdResult) -> VerdictReason:
    details: dict[str, Any] = {
        "expression": result.expression,
        "metric": result.metric,
        "scope": result.scope,
        "op": result.op,
        "limit": result.limit,
        "actual": result.actual,
    }
    if isinstance(result, Breach):
        threshold = threshold_of(
            result.expression, result.metric, result.op, result.limit, result.scope
        )
        window = f"the last {result.windowIntervals} intervals" if result.windowIntervals else ""
        seen = (
            f", {format_count(result.windowRequests)} requests"
            if result.windowRequests is not None
            else ""
        )
        over = f" over {window}{seen}" if window else ""
        message = (
            f"{result.expression} broke while the run went on: "
            f"{threshold_value(threshold, result.actual)}{over}; the run was stopped"
        )
        details.update(
            midRun=True,
            windowIntervals=result.windowIntervals,
            windowRequests=result.windowRequests,
        )
    else:
        message = threshold_line(
            result.expression, result.metric, result.op, result.limit, result.scope, result.actual
        )
    return VerdictReason.model_validate(
        {"kind": ReasonKind.THRESHOLD, "message": message, **details}
    )


def _regression_reason(kind: ReasonKind, check: Regression) -> VerdictReason:
    return VerdictReason.model_validate(
        {"kind": kind, "message": check.describe(), **check.to_document()}
    )


def _no_success(totals: Mapping[str, Any] | None, ended_normally: bool) -> VerdictReason | None:
    """Every request failed, or (in a run that went its whole course) none was made."""
    if not isinstance(totals, Mapping):
        return None
    try:
        requests = int(totals.get("requests") or 0)
        failures = int(totals.get("failures") or 0)
    except (TypeError, ValueError):
        return None
    if requests > 0 and failures >= requests:
        message = f"every one of the {format_count(requests)} requests failed"
    elif requests == 0 and ended_normally:
        message = "no request was made"
    else:
        return None
    return VerdictReason.model_validate(
        {
            "kind": ReasonKind.NO_SUCCESS,
            "message": message,
            "requests": requests,
            "failures": failures,
        }
    )


def _requests(totals: Mapping[str, Any] | None) -> int:
    try:
        return int((totals or {}).get("requests") or 0)
    except (TypeError, ValueError):
        return 0


def _user_code_reason(count: int, first: Mapping[str, Any] | None) -> VerdictReason | None:
    """`the locustfile raised 38,790 exceptions; most often ValueError at …: boom (×38,790)`."""
    if not isinstance(count, int) or count <= 0:
        return None
    most = f"; most often {describe_exception(dict(first))}" if isinstance(first, Mapping) else ""
    plural = "exception" if count == 1 else "exceptions"
    return VerdictReason.model_validate(
        {
            "kind": ReasonKind.EXCEPTION,
            "message": f"the locustfile's users raised {format_count(count)} {plural}{most}",
            "count": count,
        }
    )


def decide_verdict(
    *,
    status: RunStatus | str | None,
    stop_reason: StopReason | str | None,
    threshold_results: Sequence[ThresholdResult] = (),
    baseline_checks: Sequence[Regression] = (),
    trend_checks: Sequence[Regression] = (),
    final_totals: Mapping[str, Any] | None = None,
    error: str | LoadmgrError | None = None,
    error_source: str | None = None,
    interrupted: bool = False,
    abort_breach: ThresholdResult | None = None,
    abort_note: str | None = None,
    user_errors: int = 0,
    first_user_error: Mapping[str, Any] | None = None,
    generator: Mapping[str, Any] | None = None,
) -> tuple[Verdict | None, list[VerdictReason]]:
    """The verdict of a run that ended, and its reasons (most decisive first).

    - `status`, `stop_reason`: as recorded; an active status gives (None, []). `Failed`
      is an error unless the run was stopped early (`user`, `interrupted`) without one.
    - `threshold_results`: the thresholds judged on the final stats (`evaluate`).
    - `baseline_checks`, `trend_checks`: every metric compared (inconclusive ones last).
    - `final_totals`: `finalStats.totals`, for the no-successful-request check.
    - `error`: why the run could not complete (a failed start, Locust lost, no final
      stats); a message or the exception. `error_source` (`locust`, `database`,
      `loadmgr`) overrides what the exception says; a message alone counts as `locust`.
    - `interrupted`: this process was interrupted (Ctrl-C, SIGTERM) and stopped the run.
    - `abort_breach`: the threshold (an AbortJudge breach) that made the collector stop
      the run (`stop_reason` threshold); it may pass on the final numbers, and the run
      is failed all the same.
    - `abort_note`: why the run was stopped early, when known ("Locust was stopped
      outside loadmgr", "stopped by alice with runs stop").
    - `user_errors`: how many exceptions the locustfile's users raised (Locust's
      /exceptions), `first_user_error` the most frequent (`run.exceptions[0]`). User code
      that raised is no passed run: `error` when nothing could be measured (no request),
      else `failed` with the reason; after the cause of an aborted or errored run.
    - `generator`: the run's `generatorStats`: failed checks with a saturated generator
      (or a worker lost) make it `inconclusive`; beside any other verdict, a warning.
    """
    state = _status(status)
    if state in {s.value.lower() for s in RunStatus if s.is_active}:
        return None, []
    reason = _stop_reason(stop_reason)
    causes: list[VerdictReason] = []
    verdict: Verdict | None = None
    stopped_early = interrupted or reason == "user"
    # A run recorded Failed because a signal stopped it before it could swarm was stopped,
    # not broken: without an error of its own, it is aborted.
    if (
        error is not None
        or reason in ("error", "lost")
        or (state == "failed" and not stopped_early)
    ):
        source = "locust" if reason == "lost" else _error_source(error, error_source)
        text = str(error.message if isinstance(error, LoadmgrError) else error or "")
        if not text:
            text = "Locust was lost" if reason == "lost" else "the run could not complete"
        causes.append(
            VerdictReason.model_validate(
                {
                    "kind": ReasonKind.ERROR,
                    "message": text,
                    "stopReason": reason,
                    "source": source,
                }
            )
        )
        verdict = Verdict.ERROR
    # "stopped" is the Go control plane's status of a run stopped early.
    elif stopped_early or state == "stopped":
        if abort_note:
            text = abort_note
        elif interrupted:
            text = "interrupted (Ctrl-C or SIGTERM) before the end of its duration"
        else:
            text = "stopped before the end of its duration (runs stop, or Locust stopped outside)"
        causes.append(
            VerdictReason.model_validate(
                {
                    "kind": ReasonKind.ABORTED,
                    "message": text,
                    "stopReason": reason,
                    "interrupted": interrupted,
                }
            )
        )
        verdict = Verdict.ABORTED

    failures: list[VerdictReason] = []
    if abort_breach is not None:
        failures.append(_threshold_reason(abort_breach))
    failures.extend(_threshold_reason(r) for r in threshold_results if not r.passed)
    if reason == "threshold" and not failures:
        # An older collector stopped it for a threshold and kept no record of which.
        failures.append(
            VerdictReason.model_validate(
                {
                    "kind": ReasonKind.THRESHOLD,
                    "message": "a threshold broke while the run went on; the run was stopped",
                    "midRun": True,
                }
            )
        )
    compared = ((ReasonKind.BASELINE, baseline_checks), (ReasonKind.TREND, trend_checks))
    failures.extend(_regression_reason(k, c) for k, cs in compared for c in cs if c.regressed)
    doubts = [_regression_reason(k, c) for k, cs in compared for c in cs if c.inconclusive]
    raised = _user_code_reason(user_errors, first_user_error)
    if raised is not None and verdict is None and _requests(final_totals) == 0:
        causes.append(raised)  # the users crashed: nothing could be measured
        verdict = Verdict.ERROR
    elif raised is not None:
        failures.insert(0, raised)
    empty = _no_success(final_totals, ended_normally=verdict is None)
    if empty is not None:
        failures.append(empty)

    if verdict is None:
        checked = bool(threshold_results or baseline_checks or trend_checks)
        if failures:
            verdict = Verdict.FAILED
        elif doubts:
            verdict = Verdict.INCONCLUSIVE
        elif checked:
            verdict = Verdict.PASSED
    return with_generator(verdict, causes + failures + doubts, generator)


def verdict_changes(verdict: Verdict | None, reasons: Sequence[VerdictReason]) -> dict[str, Any]:
    """The fields to `$set` on the run for a verdict (BSON-ready)."""
    return {
        "verdict": verdict.value if verdict else None,
        "verdictReasons": [r.model_dump(mode="json") for r in reasons],
    }


# -- recomputing a stored run's verdict ----------------------------------------------------


def _recorded_breach(reasons: list[VerdictReason]) -> Breach | None:
    """The mid-run breach an earlier decision recorded: a fact, not a judgment to redo."""
    for reason in reasons:
        if reason.kind != ReasonKind.THRESHOLD or not reason.detail("midRun"):
            continue
        data = {**(reason.model_extra or {}), "passed": False}
        try:
            return Breach.model_validate(data)
        except ValueError:
            return None  # the older collector's record, without the threshold
    return None


def recompute_verdict(doc: Mapping[str, Any]) -> tuple[Verdict | None, list[VerdictReason]]:
    """The verdict of a stored run, from what it recorded (for `db migrate`).

    Reads a raw document, of any age or origin: what is missing or malformed counts as
    not recorded. What happened (an error and where it came from, why it was stopped, a
    threshold that broke mid-run) is taken from the run's earlier reasons when it has
    them; what was judged (thresholds, baseline, trend, requests) is judged again.
    """
    earlier = parse_reasons(doc.get("verdictReasons"))
    status = doc.get("status")
    reason = doc.get("stopReason")
    stop = _stop_reason(reason if isinstance(reason, str) else None)
    failed = _status(status if isinstance(status, str) else None) == "failed"
    stored_error = doc.get("error") if isinstance(doc.get("error"), str) else None
    error: str | None = None
    source: str | None = None
    note: str | None = None
    interrupted = False
    for item in earlier:
        if item.kind == ReasonKind.ERROR:
            error, source = item.message, item.detail("source")
        elif item.kind == ReasonKind.ABORTED:
            note, interrupted = item.message, bool(item.detail("interrupted"))
    if stop in ("error", "lost") or (failed and stop != "user"):
        error = error or stored_error
    elif stop == "user":
        # The collector has kept its note on an early stop in `error`.
        note = note or stored_error
    final = doc.get("finalStats")
    totals = final.get("totals") if isinstance(final, Mapping) else None
    raised = doc.get("exceptions")
    return decide_verdict(
        status=status if isinstance(status, str) else None,
        stop_reason=stop,
        threshold_results=stored_results(doc.get("thresholdResults")),
        baseline_checks=stored_checks(doc.get("baselineChecks"), "the baseline"),
        trend_checks=stored_trend_checks(doc.get("trendChecks"), earlier),
        final_totals=totals if isinstance(totals, Mapping) else None,
        error=error,
        error_source=source,
        interrupted=interrupted,
        abort_breach=_recorded_breach(earlier),
        abort_note=note,
        user_errors=count_of(doc.get("exceptionCount")),
        first_user_error=raised[0] if isinstance(raised, list) and raised else None,
        generator=generator if isinstance(generator := doc.get("generatorStats"), dict) else None,
    )


def with_verdict(run: LoadTestRun, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` (new checks) with the verdict and reasons of `run` plus them.

    Judged with `recompute_verdict`, the same function `db migrate` uses, so the verdict
    reads the same whichever wrote it."""
    verdict, reasons = recompute_verdict({**run.model_dump(mode="python"), **changes})
    return {**changes, **verdict_changes(verdict, reasons)}


def store_with_verdict(store: Store, run: LoadTestRun, changes: dict[str, Any]) -> LoadTestRun:
    """`$set` `changes` (new checks) on a run with its verdict decided again, in one update."""
    updated = store.runs.update(run.id, {**with_verdict(run, changes), "updatedAt": utcnow()})
    if updated is None:
        raise NotFound(f"run {run.id} no longer exists")
    return updated
