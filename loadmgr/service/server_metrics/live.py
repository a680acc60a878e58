"""Server metrics read for each interval while a run goes on, on a thread of their own.

The collector hands each interval over (`interval`: a put on a queue, no I/O) after it
has spooled it: the interval's own write never waits for Prometheus. The thread asks
Prometheus for each metric at the window's end (`expression_for`: `$interval` is the
window) and sets the values on the stored interval, or marks each missing with the
reason. A slow or absent Prometheus only makes values missing, which the end's range
query fills (`at_end`). With `--abort-on-fail`, a value that breaks its threshold is a
breach the collector stops the run for (`take`).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadmgr.errors import LoadmgrError
from loadmgr.models import LoadTestRun, MetricSnapshot, ThresholdResult, parse_threshold
from loadmgr.service.server_metrics.definitions import expression_for

if TYPE_CHECKING:
    from loadmgr.models import ServerMetric, Threshold
    from loadmgr.prometheus.client import PrometheusClient, Reading
    from loadmgr.store import Store

# Windows waiting past this are marked missing unread: the end's range query reads them,
# and a slow Prometheus never builds an ever-longer queue.
BACKLOG_MAX = 3


@dataclass(frozen=True)
class Window:
    seq: int
    end: float  # unix seconds
    seconds: float


class LiveServerMetrics:
    """The background reader of one run's server metrics."""

    def __init__(self, store: Store, run: LoadTestRun, abort_on_fail: bool) -> None:
        self.store = store
        self.run = run
        self.metrics: list[ServerMetric] = list(run.serverMetrics)
        self.thresholds: list[Threshold] = []
        if abort_on_fail:
            self.thresholds = [
                t
                for t in (parse_threshold(e) for e in run.thresholds)
                if t.metric.startswith("server.")
            ]
        self._queue: queue.Queue[Window | None] = queue.Queue()
        self._lock = threading.Lock()
        self._messages: list[str] = []
        self._said: set[str] = set()
        self._breach: ThresholdResult | None = None
        self._clients: dict[str, PrometheusClient | str] = {}
        self._unstored: list[tuple[int, dict[str, float], dict[str, str]]] = []
        self._thread: threading.Thread | None = None

    # -- the collector's side (never waits) ------------------------------------------------

    def interval(self, snapshot: MetricSnapshot) -> None:
        if snapshot.windowEnd is None or snapshot.intervalSec <= 0:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="loadmgr-server-metrics", daemon=True
            )
            self._thread.start()
        end = snapshot.windowEnd.timestamp()
        self._queue.put(Window(snapshot.seq, end, snapshot.intervalSec))

    def take(self) -> tuple[list[str], ThresholdResult | None]:
        """What to tell since the last call, and a breach (once found, kept)."""
        with self._lock:
            messages, self._messages = self._messages, []
            return messages, self._breach

    def close(self, within: float) -> None:
        """Stop reading: what is not read by then is the end's to fill."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(within)

    # -- the thread ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            window = self._queue.get()
            if window is None:
                return
            if self._queue.qsize() >= BACKLOG_MAX:
                reason = "Prometheus was too slow to read it live"
                self._store(window.seq, {}, {m.name: reason for m in self.metrics})
                continue
            try:
                self._read(window)
            except Exception as exc:  # never let the thread die silently
                self._say(f"server metrics: {exc}")

    def _read(self, window: Window) -> None:
        values: dict[str, float] = {}
        missing: dict[str, str] = {}
        for metric in self.metrics:
            reading = self._query(metric, window)
            if reading.value is None:
                missing[metric.name] = reading.reason or "no value"
                self._say(f"server metric {metric.name!r}: {missing[metric.name]}")
            else:
                values[metric.name] = reading.value
        self._store(window.seq, values, missing)
        self._judge(values)

    def _query(self, metric: ServerMetric, window: Window) -> Reading:
        from loadmgr.prometheus.client import Reading

        client = self._client(metric.source)
        if isinstance(client, str):
            return Reading(None, client)
        try:
            return client.query(expression_for(metric, window.seconds), at=window.end)
        except LoadmgrError as exc:
            return Reading(None, exc.message)

    def _client(self, name: str) -> PrometheusClient | str:
        """The source's client (or why there is none), looked up once."""
        if name not in self._clients:
            from loadmgr.service.server_metrics.sources import client_for, get_source

            try:
                source = get_source(self.store, name)
                # Never longer than an interval: the next window is due by then.
                timeout = min(source.timeoutSec, max(1.0, self._interval()))
                self._clients[name] = client_for(source, timeout)
            except LoadmgrError as exc:
                return exc.message  # asked again next time: the database may be back
        return self._clients[name]

    def _interval(self) -> float:
        collector = self.run.collector or {}
        interval = collector.get("interval")
        return float(interval) if isinstance(interval, int | float) else 10.0

    def _store(self, seq: int, values: dict[str, float], missing: dict[str, str]) -> None:
        """Set the interval's values; one not stored yet (MongoDB away, the spool
        draining) is tried again with the next."""
        self._unstored.append((seq, values, missing))
        kept = []
        for item in self._unstored:
            try:
                with self.store.bounded(2.0):
                    stored = self.store.server_values.set_values(self.run.id, *item)
            except LoadmgrError:
                stored = False
            if not stored:
                kept.append(item)
        self._unstored = kept[-20:]  # the end's range query fills anything older

    def _judge(self, values: dict[str, float]) -> None:
        for threshold in self.thresholds:
            name = threshold.metric.removeprefix("server.")
            if name in values and not threshold.passes(values[name]):
                with self._lock:
                    if self._breach is None:
                        self._breach = ThresholdResult.of(threshold, values[name])

    def _say(self, message: str) -> None:
        """Each distinct problem once (a Prometheus that is down says so once)."""
        with self._lock:
            if message not in self._said:
                self._said.add(message)
                self._messages.append(message)


def live_reader(store: Store, run: LoadTestRun, abort_on_fail: bool) -> LiveServerMetrics | None:
    """The reader of `run`'s server metrics, or None when it reads none."""
    if not run.serverMetrics:
        return None
    return LiveServerMetrics(store, run, abort_on_fail)
