"""The end of a run: final stats, the last intervals, thresholds, verdict, the record.

A mixin of the Collector: it needs the collector's client, source, writer and run, and
is kept apart so each file reads in one sitting.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterError, DatabaseError, DatabaseRefused, LoadmgrError
from loadmgr.locust.seconds import InvalidPayload, LocustRestarted
from loadmgr.models import (
    LoadTestRun,
    MetricSnapshot,
    RunStatus,
    StopReason,
    ThresholdResult,
    utcnow,
)
from loadmgr.models.stats.generator import generator_stats, saturation_level
from loadmgr.service.collection.end_steps import (
    EndPlan,
    IntervalReader,
    fields_with_end,
    run_end_steps,
)
from loadmgr.service.collection.events import RESTARTED
from loadmgr.service.collection.fitting import (
    MAX_LIVE_REQUESTS,
    bounded_stats,
    busiest_positions,
    without_per_request,
)
from loadmgr.service.collection.settings import CollectorSettings, RunObserver
from loadmgr.service.collection.sources import PluginSource, StatsSource
from loadmgr.service.collection.spool import SpoolError
from loadmgr.service.collection.user_code import UserExceptions
from loadmgr.service.collection.writer import IntervalWriter
from loadmgr.service.judging.verdicts import decide_verdict, evaluate, verdict_changes

if TYPE_CHECKING:
    import threading

    from loadmgr.locust.client import LocustClient
    from loadmgr.store import Store

FINAL_STATS_TIMEOUT_SEC = 90.0
FINALIZE_RETRY_SEC = 120.0
# After a signal the end is retried through a MongoDB outage this long only: the command
# ends within seconds; the spool keeps the intervals and `runs follow` records the end.
SIGNALLED_FINALIZE_SEC = 5.0


class RunEnding:
    """How a collector records the end of its run."""

    store: Store
    run: LoadTestRun
    observer: RunObserver
    end: EndPlan
    writer: IntervalWriter
    stop_event: threading.Event
    interrupted: bool
    _client: LocustClient | None
    _source: PluginSource | StatsSource | None
    _breach: ThresholdResult | None
    _abort_note: str | None
    _last_stop_sent: float
    user_errors: UserExceptions
    reader: IntervalReader | None  # server metrics (issue 23), read on a thread of their own
    settings: CollectorSettings

    def _restarted(self, exc: LocustRestarted) -> LoadTestRun:
        """The master restarted: what it says now is not this run's. The run keeps the
        numbers collected before, the load the run started is stopped, the end says why."""
        self.observer.message(f"{exc.message}; stopping the load")
        self.writer.events.add(RESTARTED, exc.message)
        self._stop_locust()
        return self._finalize(
            StopReason.ERROR,
            error=f"{exc.message}: the run keeps the numbers collected before it",
            failed=True,
            trust_locust=False,
        )

    def _give_up(self, exc: ClusterError, silent: float) -> LoadTestRun:
        """Locust was silent, or talked nonsense, for the whole --lost-timeout."""
        # Worth a try, not a wait: a silent Locust gets an ordinary request's deadline.
        self._stop_locust(within=self._client.timeout if self._client else None)
        if isinstance(exc, InvalidPayload):
            return self._finalize(
                StopReason.ERROR,
                error=f"Locust kept answering nonsense for {silent:.0f}s: {exc.message}",
                failed=True,
                trust_locust=False,
            )
        return self._finalize(
            StopReason.LOST, error=f"Locust lost: no answer for {silent:.0f}s ({exc.message})"
        )

    def _stop_locust(self, every: float = 0.0, within: float | None = None) -> None:
        if self._client is None or time.monotonic() - self._last_stop_sent < every:
            return
        self._last_stop_sent = time.monotonic()
        try:
            self._client.stop(within)
        except ClusterError as exc:
            self.observer.message(f"could not stop Locust: {exc.message}")

    def _read_breach(self) -> ThresholdResult | None:
        """What the interval reader has to tell, and its breach (--abort-on-fail)."""
        if self.reader is None:
            return None
        messages, breach = self.reader.take()
        for message in messages:
            self.observer.message(message)
        if breach is not None and self._breach is None:
            self._breach = breach
        return self._breach

    def _finalize(
        self,
        reason: StopReason,
        *,
        error: str | LoadmgrError | None = None,
        note: str | None = None,
        failed: bool = False,
        trust_locust: bool = True,
    ) -> LoadTestRun:
        """Record final stats, thresholds, verdict and status; release the lease.

        Final stats come from Locust unless it was lost or answers nonsense. The interval
        reader is stopped first: what it did not read by then, the end's steps fill."""
        if self.reader is not None:
            self.reader.close(within=float(self.settings.interval))
            self._read_breach()
        final: dict[str, Any] | None = None
        if reason != StopReason.LOST and trust_locust and self._client is not None:
            try:
                last = self._last_windows()
                self._read_user_errors(last)
                expected = (
                    self._source.builder.total_requests
                    if isinstance(self._source, PluginSource)
                    else None
                )
                payload = self._client.wait_final_stats(
                    FINAL_STATS_TIMEOUT_SEC, poll_interval=0.25, expected_requests=expected
                )
                final = self._final_stats(payload, last)
            except ClusterError as exc:
                error = error or f"final stats unavailable: {exc.message}"
        status = RunStatus.FINISHED if final is not None and not failed else RunStatus.FAILED
        judged = self._judged_stats(final)
        generator = generator_stats(
            self.writer.generator.items,
            warmup_sec=float(self.run.warmupSec),
            saturation_pct=saturation_level(self.run),
        )
        results = evaluate(self.run.thresholds, judged) if judged is not None else []
        verdict, reasons = decide_verdict(
            status=status,
            stop_reason=reason,
            threshold_results=results,
            final_totals=(judged or {}).get("totals"),
            error=error,
            interrupted=self.interrupted,
            abort_breach=self._breach,
            abort_note=self._abort_note or note,
            user_errors=self.user_errors.total,
            first_user_error=self.user_errors.items[0] if self.user_errors.items else None,
            generator=generator,
        )
        changes: dict[str, Any] = {
            "status": status.value,
            "finishedAt": utcnow(),
            "stopReason": reason.value,
            **verdict_changes(verdict, reasons),
            "thresholdResults": [r.model_dump() for r in results],
            # Judged on everything above; stored within what a document may hold.
            "finalStats": bounded_stats(final),
            "generatorStats": generator,
            "error": (error.message if isinstance(error, LoadmgrError) else error) or note,
            "updatedAt": utcnow(),
        }
        if final is not None:
            changes["lastMetrics"] = ended_last_metrics(self.run.lastMetrics, final)
        if judged is not final and judged is not None:
            changes["judgedStats"] = bounded_stats(judged)
        if self.run.steps:
            self._flush_intervals()  # a stepped run's windows are read back at its end
        changes.update(
            fields_with_end(self.end.steps, self.store, self.run, changes, self.observer.message)
        )
        self.run = self._write_final(changes)
        self.observer.finished(self.run)
        return self.run

    def _read_user_errors(self, last: list[MetricSnapshot]) -> None:
        """The exceptions Locust holds at the end: stored with it; the last interval gets
        those first seen since the one before."""
        if self.user_errors.read(self._client, force=True):
            self._learn_user_errors()
        if last:
            last[-1].exceptionCount += self.user_errors.take_new()

    def _learn_user_errors(self) -> None:
        """Keep the exceptions on the run (the views show them) and store them."""
        self.run.exceptions = self.user_errors.items
        self.run.exceptionCount = self.user_errors.total
        self.writer.events.learn(self.user_errors.fields())

    def _judged_stats(self, final: dict[str, Any] | None) -> dict[str, Any] | None:
        """What thresholds judge: the whole run, or, with a warm-up, the part after it
        (exact from the intervals' histograms; without the plugin, the whole run)."""
        if final is None or not self.run.warmupSec:
            return final
        if not isinstance(self._source, PluginSource):
            self.observer.message(
                "the warm-up is not left out: it needs the loadmgr plugin's intervals"
            )
            return final
        if self.end.warmup_stats is None:
            return final  # a collector built without a plan (tests): the whole run
        try:
            self.writer.flush()
            return self.end.warmup_stats(self.store, self.run, float(self.run.warmupSec))
        except DatabaseError as exc:
            self.observer.message(f"the warm-up is not left out: {exc.message}")
            return final

    def _flush_intervals(self) -> None:
        try:
            self.writer.flush()
        except DatabaseError as exc:
            self.observer.message(f"the intervals are not all stored yet: {exc.message}")

    def _last_windows(self) -> list[MetricSnapshot]:
        """With the plugin, the windows of the run's last seconds, once all are in."""
        if not isinstance(self._source, PluginSource):
            return []
        try:
            return self._source.final()
        except LocustRestarted as exc:
            # Its final numbers would be another test's: the run keeps its own.
            self.writer.events.add(RESTARTED, exc.message)
            raise
        except ClusterError as exc:
            self.observer.message(f"the last seconds could not be read: {exc.message}")
            return []

    def _final_stats(self, payload: dict[str, Any], last: list[MetricSnapshot]) -> dict[str, Any]:
        from loadmgr.locust.stats import final_stats
        from loadmgr.locust.validation import check_stats

        assert self._client is not None
        check_stats(payload)
        try:
            rows = self._client.requests_csv()
        except ClusterError:
            rows = None  # p90 is a bonus; the JSON payload has everything else
        final = final_stats(payload, rows)
        if isinstance(self._source, PluginSource):
            self._check_sums(final)
        elif isinstance(self._source, StatsSource):
            last = self._source.final(payload)
        for snapshot in last:
            if snapshot.intervalRequests:  # requests the last poll had not seen yet
                self.observer.interval(self.run, snapshot)
            try:
                self.writer.keep(snapshot)
            except SpoolError:
                pass  # kept in memory: the end is near, and write_final stores it
            # The run's last seconds are its latest interval: `lastMetrics` would otherwise
            # keep an earlier one's rates beside the final totals, numbers that disagree.
            self.run.lastMetrics = metrics_with_peaks(self.run.lastMetrics, snapshot)
        return final

    def _check_sums(self, final: dict[str, Any]) -> None:
        """Say so if the intervals' requests do not add up to Locust's own total."""
        assert isinstance(self._source, PluginSource)
        builder = self._source.builder
        locust_total = int((final.get("totals") or {}).get("requests") or 0)
        if builder.total_requests != locust_total:
            final["intervalRequests"] = builder.total_requests
            self.observer.message(
                f"the intervals hold {builder.total_requests} requests, Locust counted "
                f"{locust_total} (lost seconds: {builder.lost_seconds})"
            )

    def _write_final(self, changes: dict[str, Any]) -> LoadTestRun:
        """Store the end of the run, retrying through a MongoDB outage for a while.

        A refusal (a document MongoDB will never take as it is) is not retried: the end
        is written without its per-request part, the reason told in `error`."""
        signalled = self.stop_event.is_set()
        deadline = time.monotonic() + (SIGNALLED_FINALIZE_SEC if signalled else FINALIZE_RETRY_SEC)
        slimmed = False
        while True:
            try:
                # Marked with the end itself, so a collector killed before the end's steps
                # leaves a run that says so (`runs show`), and `runs follow` does them.
                updated = self.writer.write_final({**changes, "endSteps": "pending"})
                if updated is None:  # someone else recorded the end first, or fenced us
                    fresh = self.store.runs.find_by_id(self.run.id)
                    return fresh or self.run
                break
            except DatabaseRefused as exc:
                if slimmed:
                    raise
                slimmed = True
                self.observer.message(
                    f"MongoDB refused the run's end ({exc.message}); "
                    "storing it without the per-request statistics"
                )
                changes = without_per_request(changes, f"MongoDB refused them ({exc.message})")
            except DatabaseError as exc:
                if time.monotonic() >= deadline:
                    raise
                self.observer.message(f"MongoDB unavailable ({exc.message}); retrying")
                time.sleep(2.0)
        # This collector recorded the end: it alone does the steps that follow it, once.
        return run_end_steps(self.end.steps, self.store, updated, self.observer.message)

    def record_start_failure(self, exc: LoadmgrError) -> LoadTestRun:
        """A run whose collector could not even be started (`runs start --detach`)."""
        self._record_failure(exc)
        return self.run

    def _record_failure(self, exc: LoadmgrError) -> None:
        """A run that could not start: `Failed` with the reason, the lease released."""
        interrupted = self.stop_event.is_set()
        verdict, reasons = decide_verdict(
            status=RunStatus.FAILED,
            stop_reason=StopReason.USER if interrupted else StopReason.ERROR,
            error=None if interrupted else exc,
            interrupted=interrupted,
        )
        try:
            self.run = self._write_final(
                {
                    "status": RunStatus.FAILED.value,
                    "finishedAt": utcnow(),
                    "stopReason": (StopReason.USER if interrupted else StopReason.ERROR).value,
                    "error": exc.message,
                    "updatedAt": utcnow(),
                    **verdict_changes(verdict, reasons),
                }
            )
            self.observer.finished(self.run)
        except DatabaseError:
            pass  # the original error is the one to report


def last_metrics(snapshot: MetricSnapshot) -> dict[str, Any]:
    """The run's `lastMetrics`: the latest interval, with its per-request list shaped like
    `metrics_timeseries.requestStats[]` (where the Go control plane's API read them).

    Histograms stay out: they are the bulk of an interval and only windows need them.
    """
    # Written with every heartbeat and kept in the run's end: the busiest requests only,
    # chosen before the dump, so the others (400 of 500 names) are never dumped.
    items = snapshot.requestStats
    dropped: dict[int | str, Any] = {}
    if len(items) > MAX_LIVE_REQUESTS:
        kept = busiest_positions([item.numRequests for item in items], MAX_LIVE_REQUESTS)
        dropped = dict.fromkeys(set(range(len(items))).difference(kept), True)
    # (pydantic takes positions and "__all__" side by side; its type hint says one or other)
    leave_out: dict[str, Any] = {
        "loadTestRunId": True,
        "tenantId": True,
        "envId": True,
        "metadata": True,
        "hist": True,
        "requestStats": {**dropped, "__all__": {"hist"}},
    }
    metrics = snapshot.model_dump(mode="python", exclude=leave_out)
    if dropped:
        metrics["requestsOmitted"] = len(dropped)
    return bounded_stats(metrics, MAX_LIVE_REQUESTS) or metrics


def metrics_with_peaks(previous: dict[str, Any], snapshot: MetricSnapshot) -> dict[str, Any]:
    """`lastMetrics` for a new interval, with the run's peaks and mean rate so far (so a
    summary never has to scan every interval).

    Its totals are cumulative, and so is `errorRate` (the run's failure ratio so far, as
    in the Go control plane): the interval's own ratio is `intervalErrorRate`, beside its
    other rates (`totalRPS`, `failuresPerSec`), which are the latest interval's.

    `meanRPS`, `maxRPS` and `maxUsers` are over the same intervals by one rule (docs/
    metrics.md, "Rates of a run or a window"): the intervals' requests over their seconds,
    the highest interval rate, the highest interval users; so the mean is never above the
    max. `sumIntervalRequests` and `sumIntervalSec` carry the mean on (a take-over too)."""
    seconds = float(previous.get("sumIntervalSec") or 0.0)
    requests = int(previous.get("sumIntervalRequests") or 0)
    if snapshot.intervalSec > 0:  # an interval without length has no rate to add
        seconds += snapshot.intervalSec
        requests += snapshot.intervalRequests
    return {
        **last_metrics(snapshot),
        **_run_error_rate(snapshot.totalRequests, snapshot.totalFailures),
        "intervalErrorRate": snapshot.errorRate,
        "maxRPS": max(float(previous.get("maxRPS") or 0.0), snapshot.totalRPS),
        "maxUsers": max(int(previous.get("maxUsers") or 0), snapshot.currentUsers),
        "sumIntervalRequests": requests,
        "sumIntervalSec": seconds,
        "meanRPS": requests / seconds if seconds > 0 else 0.0,
    }


def ended_last_metrics(previous: dict[str, Any], final: dict[str, Any]) -> dict[str, Any]:
    """`lastMetrics` once the run ended: Locust's final totals, and the error rate of
    those same totals (never the last interval's beside them)."""
    totals = final.get("totals") or {}
    requests, failures = totals.get("requests"), totals.get("failures")
    return {
        **previous,
        "totalRequests": requests,
        "totalFailures": failures,
        **_run_error_rate(requests, failures),
        "currentUsers": final.get("userCount", 0),
        "state": final.get("state"),
    }


def _run_error_rate(requests: Any, failures: Any) -> dict[str, float]:
    requests, failures = int(requests or 0), int(failures or 0)
    return {"errorRate": failures / requests if requests > 0 else 0.0}
