"""A stepped run (`runs start --steps 10,20,40 --step-duration 60s`, or a test's stored
steps): resolved against its test, refused where it cannot run, and sent with /swarm.

The steps run as a load shape the loadmgr plugin ships (`LoadmgrSteps`): /swarm carries
the steps as two more form fields, which the plugin reads before Locust handles the
swarm. A locustfile with a shape of its own drives its own load, so steps are refused
there (exit 2, nothing stored) rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, format_duration
from loadmgr.models.shapes import describe_shape, steps_plan
from loadmgr.service.runs.options import RunOptions

STEPS_FIELD = "loadmgr_steps"  # /swarm form fields the plugin reads (docs/plugin.md)
STEP_SEC_FIELD = "loadmgr_step_sec"
# A stepped run's duration is a cap a little past its last step, so that the plugin's shape
# ends the run (`stopReason: shape`) rather than the cap racing it.
STEPS_END_GRACE_SEC = 3


def planned_steps(test: LoadTest, options: RunOptions) -> dict[str, Any] | None:
    """The run's `steps` (`{users, stepSec, settleSec}`): the options', else the test's;
    None for a run of one load. A test's stored steps make its runs stepped, except a run
    asking for `--users` alone: that is a plain run of those users (the steps are the
    test's default load, as `defaultUsers` is). ValidationFailed for an incomplete or
    contradicting ask."""
    stored = test.steps if isinstance(test.steps, dict) else None
    if options.users is not None and options.steps is None:
        if options.step_duration is not None or options.step_settle is not None:
            raise ValidationFailed("--step-duration and --step-settle need --steps")
        return None  # --users asks for a plain run, whatever the test stores
    if options.users is not None:
        raise ValidationFailed(
            "--users cannot be given with steps: each step says its users",
            hint="give the users as --steps 10,20,40",
        )
    return resolved_steps(options.steps, options.step_duration, options.step_settle, stored)


def steps_from_options(
    steps: str | None, step_duration: str | None, step_settle: str | None, stored: Any
) -> dict[str, Any] | None:
    """`resolved_steps` of the options as typed (`10,20,40`, `60s`, `6s`)."""
    from loadmgr.service.runs.options import parse_step_options

    return resolved_steps(*parse_step_options(steps, step_duration, step_settle), stored)


def resolved_steps(
    users: list[int] | None,
    step_sec: int | None,
    settle: int | None,
    stored: Any,
) -> dict[str, Any] | None:
    """`--steps/--step-duration/--step-settle` over `stored` steps (a test's): what is
    given wins, the rest is the stored one's (a new step duration gets its own default
    settle time); None when there are no steps. `runs start`, `tests create` and `tests
    update` resolve them here. ValidationFailed for an incomplete or impossible ask."""
    stored = stored if isinstance(stored, dict) else None
    if users is None:
        users = _stored_users(stored)
    if users is None:
        if step_sec is not None or settle is not None:
            raise ValidationFailed("--step-duration and --step-settle need --steps")
        return None
    given_sec = step_sec
    if step_sec is None and stored is not None:
        step_sec = _whole(stored.get("stepSec"))
    if step_sec is None:
        raise ValidationFailed("--steps needs --step-duration (how long each step lasts)")
    if settle is None and stored is not None and given_sec is None:
        settle = _whole(stored.get("settleSec"))
    try:
        return steps_plan(users, step_sec, settle)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def steps_duration(steps: dict[str, Any], duration: int | None) -> int:
    """A stepped run lasts its steps (its duration, the cap, a moment past them); a
    --duration that says otherwise is refused."""
    total = len(steps["users"]) * int(steps["stepSec"])
    if duration is not None and duration != total:
        raise ValidationFailed(
            f"invalid --duration: {format_duration(duration)} with steps lasting "
            f"{format_duration(total)} in all",
            hint="leave --duration out: a stepped run lasts its steps",
        )
    return total + STEPS_END_GRACE_SEC


def refuse_steps_with_shape(shape: dict[str, Any] | None) -> None:
    """A locustfile's own shape drives its load: steps cannot run over it."""
    if shape:
        raise ValidationFailed(
            f"--steps cannot run: the locustfile has its own load shape "
            f"{describe_shape(shape)}, which drives the load",
            hint="run it without --steps, or use a locustfile without a LoadTestShape",
        )


def steps_form(steps: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The /swarm fields that start the plugin's step shape (none for a run of one load)."""
    if not steps:
        return []
    users = ",".join(str(int(u)) for u in steps["users"])
    return [(STEPS_FIELD, users), (STEP_SEC_FIELD, str(int(steps["stepSec"])))]


def _stored_users(stored: dict[str, Any] | None) -> list[int] | None:
    if stored is None:
        return None
    users = stored.get("users")
    if not isinstance(users, list) or not users:
        return None
    if not all(isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in users):
        raise ValidationFailed("the test's stored steps are not whole user counts")
    return list(users)


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
