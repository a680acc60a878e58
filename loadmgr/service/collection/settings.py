"""How a collector behaves, what it shows, and who it is (for fencing and liveness)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loadmgr.errors import ClusterError, ValidationFailed
from loadmgr.models import LoadTestRun, LocustCluster, MetricSnapshot

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient
    from loadmgr.service.abort_judge import ThresholdState

INTERVAL_RANGE = (1, 60)  # whole seconds: an interval is a window of whole seconds
LOST_TIMEOUT_RANGE = (5.0, 600.0)  # seconds Locust may stay silent before the run fails
DEFAULT_INTERVAL = 5
DEFAULT_LOST_TIMEOUT = 30.0


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


def check_interval(value: float) -> int:
    """`--interval` as whole seconds within INTERVAL_RANGE; ValidationFailed otherwise."""
    low, high = INTERVAL_RANGE
    # `value == value` is false for NaN; the range check refuses infinities.
    in_range = isinstance(value, (int, float)) and value == value and low <= value <= high
    if not in_range or value != int(value):
        raise ValidationFailed(
            f"invalid --interval: {value:g} (whole seconds from {low} to {high})"
        )
    return int(value)


def check_lost_timeout(value: float) -> float:
    low, high = LOST_TIMEOUT_RANGE
    if not (value == value and low <= value <= high):
        raise ValidationFailed(f"invalid --lost-timeout: {value:g}s (from {low:g}s to {high:g}s)")
    return float(value)


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), to tell a reused pid; Linux only."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        # Field 22; the command name before it is parenthesised and may hold spaces.
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def process_gone(pid: int, start_ticks: int | None) -> bool:
    """Whether process `pid` (started at `start_ticks`) no longer runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return True
    except (OSError, IndexError):
        return False
    return start_ticks is not None and process_start_ticks(pid) not in (None, start_ticks)


def collector_gone(collector: dict[str, Any] | None) -> bool:
    """Whether a run's recorded collector was on this machine and its process is gone."""
    if not collector or collector.get("host") != socket.gethostname():
        return False
    pid = collector.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    start = collector.get("pidStart")
    return process_gone(pid, start if isinstance(start, int) else None)


@dataclass(frozen=True)
class CollectorSettings:
    """How a collector behaves; stored on the run so a take-over behaves the same."""

    interval: int = DEFAULT_INTERVAL
    lost_timeout: float = DEFAULT_LOST_TIMEOUT
    workers: int | None = None
    abort_on_fail: bool = False

    def to_document(self, **extra: Any) -> dict[str, Any]:
        from loadmgr.service.abort_judge import JudgeSettings

        pid = os.getpid()
        return {
            **JudgeSettings().to_document(),
            "interval": self.interval,
            "lostTimeout": self.lost_timeout,
            "workers": self.workers,
            "abortOnFail": self.abort_on_fail,
            "pid": pid,
            "pidStart": process_start_ticks(pid),
            "host": socket.gethostname(),
            **extra,
        }

    @classmethod
    def from_run(cls, run: LoadTestRun) -> CollectorSettings:
        data = run.collector or {}
        low, high = INTERVAL_RANGE
        try:
            interval = int(float(data.get("interval") or DEFAULT_INTERVAL))
            lost = float(data.get("lostTimeout") or DEFAULT_LOST_TIMEOUT)
        except (TypeError, ValueError, OverflowError):
            interval, lost = DEFAULT_INTERVAL, DEFAULT_LOST_TIMEOUT
        workers = data.get("workers")
        return cls(
            interval=min(high, max(low, interval)),
            lost_timeout=min(LOST_TIMEOUT_RANGE[1], max(LOST_TIMEOUT_RANGE[0], lost)),
            workers=workers if isinstance(workers, int) and not isinstance(workers, bool) else None,
            abort_on_fail=bool(data.get("abortOnFail")),
        )


def client_for(cluster: LocustCluster | None, base_url: str | None) -> LocustClient:
    from loadmgr.locust.client import LocustClient

    if cluster is not None:
        return LocustClient.from_cluster(cluster)
    if base_url is None:
        raise ClusterError("the run has no Locust address recorded")
    return LocustClient(base_url)
