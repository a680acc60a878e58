"""A locustfile's load shape (a `LoadTestShape` subclass), found without running it.

With a shape, Locust ignores `/swarm`'s users, spawn rate and run time: the shape's `tick()`
drives the load and ends the test. loadmgr reads the locustfile's syntax tree (it is never
imported or run here): the class, and its `stages` when they are written as a literal
(Locust's stages example). What Locust itself says at run time (`/swarm`'s answer, the
plugin's `shape`) is recorded too, so a shape defined in a way this misses is still seen.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable
from typing import Any

SHAPE_BASE = "LoadTestShape"
MAX_STAGES = 50  # stored with the test and every run: a literal longer than this is cut
MAX_STAGE_KEYS = 10


def find_shape(sources: Iterable[tuple[str, str]]) -> dict[str, Any] | None:
    """`{className, file, stages?}` of the first concrete shape class in `(path, text)`
    sources, in their order; None when there is none (or nothing parses)."""
    for path, text in sources:
        try:
            tree = ast.parse(text, filename=path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and _is_shape(node) and not _abstract(node):
                shape: dict[str, Any] = {"className": node.name, "file": path}
                stages = _stages(node)
                if stages is not None:
                    shape["stages"] = stages
                return shape
    return None


def describe_shape(shape: Any) -> str | None:
    """`Stages (3 stages, up to 10 users, 60s)` for people; None without a shape."""
    if not isinstance(shape, dict) or not shape.get("className"):
        return None
    name = str(shape["className"])
    stages = shape.get("stages")
    if not isinstance(stages, list) or not stages:
        return name
    users = [s.get("users") for s in stages if isinstance(s, dict)]
    times = [s.get("duration") for s in stages if isinstance(s, dict)]
    parts = [f"{len(stages)} stage{'s' if len(stages) != 1 else ''}"]
    numbers = [u for u in users if isinstance(u, int | float) and not isinstance(u, bool)]
    if numbers:
        parts.append(f"up to {max(numbers):g} users")
    ends = [t for t in times if isinstance(t, int | float) and not isinstance(t, bool)]
    if ends:
        parts.append(f"{max(ends):g}s")
    return f"{name} ({', '.join(parts)})"


def _is_shape(node: ast.ClassDef) -> bool:
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        if name == SHAPE_BASE:
            return True
    return False


def _abstract(node: ast.ClassDef) -> bool:
    """`abstract = True` in the class body: Locust does not pick such a class."""
    for item in node.body:
        if isinstance(item, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "abstract" for target in item.targets
        ):
            return isinstance(item.value, ast.Constant) and item.value.value is True
    return False


def _stages(node: ast.ClassDef) -> list[dict[str, Any]] | None:
    """The class's `stages = [...]` when it is a literal list of dicts of plain values."""
    for item in node.body:
        value: ast.expr | None = None
        if isinstance(item, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "stages" for target in item.targets
        ):
            value = item.value
        elif (
            isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and item.target.id == "stages"
        ):
            value = item.value
        if value is None:
            continue
        try:
            stages = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return None
        if not isinstance(stages, list | tuple):
            return None
        kept = [
            {
                str(key): entry[key]
                for key in list(entry)[:MAX_STAGE_KEYS]
                if _plain(entry[key])
            }
            for entry in list(stages)[:MAX_STAGES]
            if isinstance(entry, dict)
        ]
        return kept or None
    return None


def _plain(value: Any) -> bool:
    """A value any store and JSON take as it is (no infinity, no int past 2**53)."""
    if isinstance(value, str):
        return len(value) <= 200
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) < 2**53
    return isinstance(value, float) and math.isfinite(value)


# -- stepped load (`runs start --steps`): the plugin's own shape --------------------------

STEPS_SHAPE = "LoadmgrSteps"  # the class name the loadmgr plugin runs it under
MAX_STEPS = 50  # a run stores one window per step; more would be no capacity test
MAX_STEP_USERS = 1_000_000
DEFAULT_SETTLE_FRACTION = 0.1  # of each step, left out of its numbers by default


def parse_steps(text: str) -> list[int]:
    """`10,20,40,80` → [10, 20, 40, 80]: at least one user a step, at most MAX_STEPS steps;
    ValueError naming the option otherwise."""
    parts = [part.strip() for part in str(text).split(",")]
    if not parts or any(not part.isdigit() or not part.isascii() for part in parts):
        raise ValueError(
            f"invalid --steps: {text[:60]!r} (users per step as whole numbers, e.g. 10,20,40)"
        )
    users = [int(part) for part in parts]
    if len(users) > MAX_STEPS:
        raise ValueError(f"invalid --steps: {len(users)} steps (at most {MAX_STEPS})")
    if min(users) < 1 or max(users) > MAX_STEP_USERS:
        raise ValueError(f"invalid --steps: each step from 1 to {MAX_STEP_USERS:,} users")
    return users


def default_settle(step_sec: int) -> int:
    """Whole seconds left out at each step's start when none is named (10 %, at least 1)."""
    return max(1, math.ceil(step_sec * DEFAULT_SETTLE_FRACTION))


def steps_plan(users: list[int], step_sec: int, settle_sec: int | None) -> dict[str, Any]:
    """The run's stored `steps`: `{users, stepSec, settleSec}`; ValueError for a settle time
    that leaves nothing of a step."""
    if step_sec < 1:
        raise ValueError("invalid --step-duration: at least 1s")
    settle = default_settle(step_sec) if settle_sec is None else settle_sec
    if not 0 <= settle < step_sec:
        raise ValueError(
            f"invalid --step-settle: {settle}s must be shorter than a step ({step_sec}s)"
        )
    return {"users": list(users), "stepSec": step_sec, "settleSec": settle}


def steps_shape(steps: dict[str, Any]) -> dict[str, Any]:
    """The run's `shape` for its steps, written as Locust's stages example writes them
    (each stage's `duration` is when it ends), so every view describes it as any shape."""
    step_sec = int(steps["stepSec"])
    return {
        "className": STEPS_SHAPE,
        "file": "loadmgr_plugin.py",
        "stages": [
            {"duration": step_sec * (index + 1), "users": users}
            for index, users in enumerate(steps["users"])
        ],
    }
