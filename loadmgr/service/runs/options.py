"""What `runs start` (and a schedule's slot) may ask of a run, checked before anything is
stored; and the overrides `runs start` and `schedules add` both parse, parsed once here."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass, field
from typing import Any

from loadmgr.errors import ValidationFailed
from loadmgr.service.validation import duration_option

INTERVAL_RANGE = (1, 60)  # whole seconds: an interval is a window of whole seconds
LOST_TIMEOUT_RANGE = (5.0, 600.0)  # seconds Locust may stay silent before the run fails
DEFAULT_INTERVAL_SEC = 5  # one interval's window, when a run names none
DEFAULT_LOST_TIMEOUT = 30.0
BUSY_POLICIES = ("fail", "wait", "skip")


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


def optional_duration(option: str, text: str | None) -> int | None:
    """A duration option in seconds; None when it was not given."""
    return duration_option(option, text) if text is not None else None


def optional_saturation(value: float | None) -> float | None:
    """`--saturation-cpu PCT` (models/stats/generator.py); None when it was not given."""
    from loadmgr.models.stats.generator import check_saturation_cpu

    try:
        return check_saturation_cpu(value) if value is not None else None
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def check_count(option: str, items: Sized, limit: int) -> None:
    """Refuse more than `limit` of an option that is stored as a list or a map: every list
    of a test's or run's document is bounded so that the document fits 16 MiB."""
    if len(items) > limit:
        raise ValidationFailed(f"too many {option}: {len(items):,} (at most {limit})")


def parse_metadata(pairs: list[str] | None) -> dict[str, str]:
    """`--meta KEY=VALUE` options as a dict; ValidationFailed for a bad pair."""
    from loadmgr.models import parse_meta

    try:
        return parse_meta(pairs or [])
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def check_locust_options(pairs: list[str] | None) -> dict[str, str]:
    """`--locust-option KEY=VALUE` options as a dict; ValidationFailed for a bad pair or an
    option loadmgr owns (`users`, `run-time`, `master`, `headless`, ...)."""
    from loadmgr.models.locust_options import parse_locust_options

    try:
        return parse_locust_options(pairs or [])
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def check_thresholds(expressions: list[str] | None) -> list[str]:
    """`--threshold` expressions in the canonical form they are stored in (`p95 < 500` →
    `p95<500ms`); ValidationFailed now for a bad one or a direction against the metric."""
    from loadmgr.models.thresholds import THRESHOLDS_MAX, accept_threshold

    check_count("--threshold", expressions or [], THRESHOLDS_MAX)
    try:
        return [accept_threshold(expression).expression for expression in expressions or []]
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


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
    saturation_cpu: float | None = None  # `--saturation-cpu`: over the test's
    # What started the run (a schedule's slot); None: the acting user.
    trigger: dict[str, Any] | None = None
    locustfile: str | None = None  # a path: run this file once instead of the stored copy
    strict_locustfile: bool = False  # a stored copy that differs from its file is an error
    # Locust's own options for this run, over the test's (`--locust-option`).
    locust_options: dict[str, str] = field(default_factory=dict)
    locust_config: str | None = None  # local cluster: a Locust config file to read
    # `--server-metric` for this run only, as stored items (over the test's of the same name).
    server_metrics: list[dict[str, Any]] = field(default_factory=list)
    # `--commit/--branch/--build-url` as stored (service/runs/ci.py): over what is detected.
    ci: dict[str, str] = field(default_factory=dict)
    # Stepped load (`--steps 10,20,40 --step-duration 60s`): the users of each step, a
    # step's seconds and what is left out at its start; None: the test's, if any.
    steps: list[int] | None = None
    step_duration: int | None = None
    step_settle: int | None = None


def parse_steps_option(text: str | None) -> list[int] | None:
    """`--steps 10,20,40` as users per step; None when not given; ValidationFailed."""
    if text is None:
        return None
    from loadmgr.models.shapes import parse_steps

    try:
        return parse_steps(text)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def parse_step_options(
    steps: str | None, step_duration: str | None, step_settle: str | None
) -> tuple[list[int] | None, int | None, int | None]:
    """`--steps`, `--step-duration`, `--step-settle` as given (None: not given), parsed
    for `runs start` and `tests create/update` alike; ValidationFailed naming the option."""
    return (
        parse_steps_option(steps),
        optional_duration("--step-duration", step_duration),
        optional_duration("--step-settle", step_settle),
    )


def parse_overrides(
    *,
    users: int | None = None,
    spawn_rate: float | None = None,
    duration: str | None = None,
    cluster: str | None = None,
    workers: int | None = None,
    thresholds: list[str] | None = None,
    meta: list[str] | None = None,
    locust_options: list[str] | None = None,
    saturation_cpu: float | None = None,
) -> RunOptions:
    """The load `runs start` and `schedules add` may set instead of the test's, as given
    on the command line (`--duration 5m`, `--meta k=v`, `--locust-option tags=a`);
    ValidationFailed naming the option for a bad duration, pair or threshold (the
    thresholds in their canonical form, as `check_thresholds` gives them) or a Locust
    option loadmgr owns."""
    return RunOptions(
        users=users,
        spawn_rate=spawn_rate,
        duration=optional_duration("--duration", duration),
        cluster=cluster,
        workers=workers,
        metadata=parse_metadata(meta),
        thresholds=check_thresholds(thresholds),
        locust_options=check_locust_options(locust_options),
        saturation_cpu=optional_saturation(saturation_cpu),
    )
