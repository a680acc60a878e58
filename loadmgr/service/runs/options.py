"""What `runs start` (and a schedule's slot) may ask of a run, checked before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed

if TYPE_CHECKING:
    pass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


INTERVAL_RANGE = (1, 60)  # whole seconds: an interval is a window of whole seconds


LOST_TIMEOUT_RANGE = (5.0, 600.0)  # seconds Locust may stay silent before the run fails


DEFAULT_INTERVAL = 5


DEFAULT_LOST_TIMEOUT = 30.0


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


DEFAULT_INTERVAL_SEC = 5


BUSY_POLICIES = ("fail", "wait", "skip")


@dataclass(frozen=True)
class RunOptions:
    """What `runs start` may override, and how it behaves."""

    users: int | None = None
    spawn_rate: float | None = None
    duration: int | None = None
    name: str | None = None
    cluster: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    thresholds: list[str] = field(default_factory=list)
    interval: int = DEFAULT_INTERVAL_SEC
    if_busy: str = "fail"
    wait_timeout: float = 600.0
    lost_timeout: float = 30.0
    workers: int | None = None
    abort_on_fail: bool = False
    warmup: int | None = None
    # What started the run (a schedule's slot); None: the acting user.
    trigger: dict[str, Any] | None = None
    locustfile: str | None = None  # a path: run this file once instead of the stored copy
    strict_locustfile: bool = False  # a stored copy that differs from its file is an error
