"""How a collector behaves, what it shows, and who it is (for fencing and liveness)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from loadmgr.errors import ClusterError
from loadmgr.models import LoadTestRun, LocustCluster, MetricSnapshot
from loadmgr.service.runs.lease import process_here
from loadmgr.service.runs.local_master import check_local_master, check_loopback, master_of
from loadmgr.service.runs.options import (
    DEFAULT_INTERVAL_SEC,
    DEFAULT_LOST_TIMEOUT,
    INTERVAL_RANGE,
    LOST_TIMEOUT_RANGE,
)

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient
    from loadmgr.service.judging.abort_judge import ThresholdState


class RunObserver(Protocol):
    """What the CLI shows while a run goes on (a live view, or one line per interval)."""

    def message(self, text: str) -> None: ...

    def started(self, run: LoadTestRun) -> None: ...

    def interval(self, run: LoadTestRun, snapshot: MetricSnapshot) -> None: ...

    def finished(self, run: LoadTestRun) -> None: ...

    def thresholds(self, states: list[ThresholdState]) -> None: ...


class QuietObserver:
    """Shows nothing."""

    def message(self, text: str) -> None:
        pass

    def started(self, run: LoadTestRun) -> None:
        pass

    def interval(self, run: LoadTestRun, snapshot: MetricSnapshot) -> None:
        pass

    def finished(self, run: LoadTestRun) -> None:
        pass

    def thresholds(self, states: list[ThresholdState]) -> None:
        pass


class CompositeObserver:
    """Several observers as one (the live view, an exporter…), each told in turn."""

    def __init__(self, *observers: RunObserver) -> None:
        self.observers: tuple[RunObserver, ...] = observers

    def message(self, text: str) -> None:
        for observer in self.observers:
            observer.message(text)

    def started(self, run: LoadTestRun) -> None:
        for observer in self.observers:
            observer.started(run)

    def interval(self, run: LoadTestRun, snapshot: MetricSnapshot) -> None:
        for observer in self.observers:
            observer.interval(run, snapshot)

    def finished(self, run: LoadTestRun) -> None:
        for observer in self.observers:
            observer.finished(run)

    def thresholds(self, states: list[ThresholdState]) -> None:
        for observer in self.observers:
            observer.thresholds(states)


def observer_of(*observers: RunObserver | None) -> RunObserver:
    """One observer for those given (None left out): quiet, the one, or all in turn."""
    present = [observer for observer in observers if observer is not None]
    if not present:
        return QuietObserver()
    return present[0] if len(present) == 1 else CompositeObserver(*present)


# This process, among every collector that ever was: a pid and a host name repeat.
INSTANCE = uuid.uuid4().hex


@dataclass(frozen=True)
class CollectorSettings:
    """How a collector behaves; stored on the run so a take-over behaves the same."""

    interval: int = DEFAULT_INTERVAL_SEC
    lost_timeout: float = DEFAULT_LOST_TIMEOUT
    workers: int | None = None
    abort_on_fail: bool = False
    locust_config: str | None = None  # local cluster: the Locust config file asked for

    def to_document(self, **extra: Any) -> dict[str, Any]:
        from loadmgr.service.judging.abort_judge import JudgeSettings

        return {
            **JudgeSettings().to_document(),
            "interval": self.interval,
            "lostTimeout": self.lost_timeout,
            "workers": self.workers,
            "abortOnFail": self.abort_on_fail,
            **process_here(os.getpid()),  # pid, start, host, boot and pid namespace
            "instance": INSTANCE,  # this collector, whatever its pid and its machine
            "locustConfig": self.locust_config,
            **extra,
        }

    @classmethod
    def from_run(cls, run: LoadTestRun) -> CollectorSettings:
        data = run.collector or {}
        low, high = INTERVAL_RANGE
        try:
            interval = int(float(data.get("interval") or DEFAULT_INTERVAL_SEC))
            lost = float(data.get("lostTimeout") or DEFAULT_LOST_TIMEOUT)
        except (TypeError, ValueError, OverflowError):
            interval, lost = DEFAULT_INTERVAL_SEC, DEFAULT_LOST_TIMEOUT
        workers = data.get("workers")
        config = data.get("locustConfig")
        return cls(
            interval=min(high, max(low, interval)),
            lost_timeout=min(LOST_TIMEOUT_RANGE[1], max(LOST_TIMEOUT_RANGE[0], lost)),
            workers=workers if isinstance(workers, int) and not isinstance(workers, bool) else None,
            abort_on_fail=bool(data.get("abortOnFail")),
            locust_config=config if isinstance(config, str) and config else None,
        )


def recorded_client(
    cluster: LocustCluster | None,
    run: LoadTestRun,
    interrupt: threading.Event | None = None,
    **options: Any,
) -> LocustClient:
    """The client for the Locust a run's document names (`runs stop`, a take-over): a
    `local` run's address only once it is its recorded master's listening socket
    (`local_master.check_local_master`), since any writer of the database may have
    pointed it at another Locust on this machine."""
    if cluster is None and run.locustUrl is not None:
        url, master = run.locustUrl, master_of(run.collector)
        check_local_master(url, master)
        client = client_for(cluster, url, interrupt, **options)
        # And before every request: the master may die and its port go to another Locust.
        client.before_send = lambda: check_local_master(url, master)
        return client
    return client_for(cluster, run.locustUrl, interrupt, **options)


def client_for(
    cluster: LocustCluster | None,
    base_url: str | None,
    interrupt: threading.Event | None = None,
    **options: Any,
) -> LocustClient:
    """The run's Locust client; `interrupt` (a collector's stop event) cuts its requests
    short once set, so a signal ends the command within seconds, whatever Locust does."""
    from loadmgr.locust.client import LocustClient

    if cluster is not None:
        client = LocustClient.from_cluster(cluster, **options)
    elif base_url is None:
        raise ClusterError("the run has no Locust address recorded")
    else:
        check_loopback(base_url)  # a local cluster listens on loopback, nowhere else
        client = LocustClient(base_url, **options)
    client.interrupt = interrupt
    return client


def beating(
    client: LocustClient, beat: Callable[[], object], every: float, clock: Any = time.monotonic
) -> None:
    """Have `client` call `beat` before a request to Locust once `every` seconds have
    passed since it last did (its own check before each request kept). A collector beats
    between polls; a Locust answering each request just within its deadline, with a poll
    of several asks, held the beat for 20 s and more: past the 15 s after which another
    host takes the collector for dead. So no two beats are further apart than `every` and
    one request's deadline. Once the client is interrupted (a signal), no more: the command
    ends within seconds, whatever MongoDB does."""
    check, last = client.before_send, [clock()]

    def before_send() -> None:
        if check is not None:
            check()
        interrupted = client.interrupt is not None and client.interrupt.is_set()
        if not interrupted and clock() - last[0] >= every:
            last[0] = clock()
            beat()

    client.before_send = before_send
