"""Bounds on the load a test or a run may ask for: a typo must not swarm ten million users.

Users: 1 to DEFAULT_MAX_USERS, or to the test's own `maxUsers` (`tests create/update
--max-users`, at most MAX_USERS_CEILING) for a cluster built for more. Spawn rate:
MIN_SPAWN_RATE to MAX_SPAWN_RATE users per second; below it a run would never reach its
users, above it Locust only queues them.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest
from loadmgr.models.documents import MAX_USERS_CEILING

__all__ = ["DEFAULT_MAX_USERS", "MAX_SPAWN_RATE", "MAX_USERS_CEILING", "MIN_SPAWN_RATE"]

DEFAULT_MAX_USERS = 100_000
MIN_SPAWN_RATE = 0.01
MAX_SPAWN_RATE = 10_000.0


def users_limit(test: LoadTest) -> int:
    """The most users a run of `test` may ask for."""
    return test.maxUsers if test.maxUsers is not None else DEFAULT_MAX_USERS


def check_users(users: int, limit: int) -> None:
    if not 1 <= users <= limit:
        raise ValidationFailed(
            f"invalid --users: {users} (1 to {limit:,})",
            hint=None
            if users < 1
            else f"a test may allow more with 'tests update TEST --max-users N' "
            f"(up to {MAX_USERS_CEILING:,})",
        )


def check_spawn_rate(rate: float) -> None:
    if not (math.isfinite(rate) and MIN_SPAWN_RATE <= rate <= MAX_SPAWN_RATE):
        raise ValidationFailed(
            f"invalid --spawn-rate: {rate:g} users/s ({MIN_SPAWN_RATE:g} to {MAX_SPAWN_RATE:g})"
        )


def check_test_load(test: LoadTest, changed: Collection[str]) -> None:
    """Refuse a test whose changed load fields are out of bounds (all of them at creation).

    Only what changes is judged, so a test stored before these bounds can still be edited.
    """
    if "maxUsers" in changed and test.maxUsers is not None and test.defaultUsers > test.maxUsers:
        raise ValidationFailed(
            f"invalid --max-users: {test.maxUsers:,} is below the test's default of "
            f"{test.defaultUsers:,} users (--users)",
            hint="give a larger --max-users, or a smaller --users",
        )
    if "defaultUsers" in changed:
        check_users(test.defaultUsers, users_limit(test))
    if "defaultSpawnRate" in changed:
        check_spawn_rate(test.defaultSpawnRate)
    if test.steps and {"steps", "maxUsers", "maxDurationSec"} & set(changed):
        _check_test_steps(test)


def _check_test_steps(test: LoadTest) -> None:
    """A test's stored steps must be runnable as they are: within its users and duration
    limits (else every run of it would be refused at its start)."""
    from loadmgr.models import format_duration
    from loadmgr.service.runs.steps import steps_duration

    steps = test.steps or {}
    users, step_sec = steps.get("users"), steps.get("stepSec")
    if not (isinstance(users, list) and users and isinstance(step_sec, int)):
        return  # written by anything else: its runs refuse it (service/runs/steps.py)
    if not all(isinstance(u, int) for u in users):
        return
    most, limit = max(users), users_limit(test)
    if most > limit:
        raise ValidationFailed(
            f"invalid --steps: {most:,} users is above the test's maximum of {limit:,}",
            hint="give smaller steps, or a larger --max-users",
        )
    duration = steps_duration(steps, None)
    if test.maxDurationSec is not None and duration > test.maxDurationSec:
        raise ValidationFailed(
            f"invalid --steps: they last {format_duration(duration)}, above the test's "
            f"maximum duration of {format_duration(test.maxDurationSec)}",
            hint="give fewer or shorter steps, or a longer --max-duration",
        )


def check_run_load(test: LoadTest, users: int | None, spawn_rate: float | None) -> None:
    """Refuse `runs start` overrides beyond the bounds (the test's own load is not judged)."""
    if users is not None:
        check_users(users, users_limit(test))
    if spawn_rate is not None:
        check_spawn_rate(spawn_rate)
