"""Stepped load in one run (issue 27): `--steps` parsed, planned and refused where it
cannot run; the plugin's LoadmgrSteps shape and its /swarm fields."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import mongomock
import pytest

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, Scope
from loadmgr.service.runs.options import RunOptions, parse_steps_option
from loadmgr.service.runs.plan import plan_run
from loadmgr.service.runs.steps import STEPS_END_GRACE_SEC, steps_form
from loadmgr.store import Store
from tests.unit.test_plugin_logic import StubEvents, load_plugin

SHAPED = """
from locust import HttpUser, LoadTestShape

class Web(HttpUser):
    pass

class Ramp(LoadTestShape):
    def tick(self):
        return None
"""


class StubShape:
    """Stands for locust.LoadTestShape (the real locust would gevent-patch this process)."""

    runner = None

    def reset_time(self) -> None: ...


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_plugin(monkeypatch, StubEvents())
    monkeypatch.setattr(sys.modules["locust"], "LoadTestShape", StubShape, raising=False)
    return module


@pytest.fixture
def store() -> Store:
    return Store(mongomock.MongoClient()["loadmgr"], Scope(), "mongodb://mock")


def _test(
    store: Store, name: str = "api", content: str = "from locust import HttpUser\n", **extra: object
) -> LoadTest:
    return store.tests.insert(
        LoadTest(
            name=name,
            targetUrl="http://127.0.0.1:1",
            locustfileContent=content,
            locustfileSha256="abc",
            defaultDurationSec=60,
            maxDurationSec=600,
            **extra,
        )
    )


def test_a_stepped_run_is_planned_with_its_shape_users_and_duration(store):
    _test(store)
    plan = plan_run(store, "api", RunOptions(steps=[10, 20, 40], step_duration=60), "ann")
    run = plan.run
    assert run.steps == {"users": [10, 20, 40], "stepSec": 60, "settleSec": 6}
    assert run.targetUsers == 40
    assert run.durationSeconds == 180 + STEPS_END_GRACE_SEC
    assert run.shape is not None and run.shape["className"] == "LoadmgrSteps"
    assert [s["users"] for s in run.shape["stages"]] == [10, 20, 40]
    assert steps_form(run.steps) == [("loadmgr_steps", "10,20,40"), ("loadmgr_step_sec", "60")]
    assert steps_form(None) == []


def test_a_test_s_stored_steps_run_unless_the_run_says_otherwise(store):
    _test(store, steps={"users": [1, 2], "stepSec": 5, "settleSec": 2})
    assert plan_run(store, "api", RunOptions(), "a").run.steps == {
        "users": [1, 2],
        "stepSec": 5,
        "settleSec": 2,
    }
    # A new step duration gets its own default settle time, not the stored one's.
    assert plan_run(store, "api", RunOptions(step_duration=20), "a").run.steps == {
        "users": [1, 2],
        "stepSec": 20,
        "settleSec": 2,
    }
    assert plan_run(store, "api", RunOptions(steps=[3], step_settle=0), "a").run.steps == {
        "users": [3],
        "stepSec": 5,
        "settleSec": 0,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RunOptions(steps=[10, 20]), "--steps needs --step-duration"),
        (RunOptions(step_duration=60), "need --steps"),
        (RunOptions(step_settle=5), "need --steps"),
        (RunOptions(steps=[10], step_duration=60, users=5), "--users cannot be given"),
        (RunOptions(steps=[10], step_duration=10, step_settle=10), "shorter than a step"),
        (RunOptions(steps=[10, 20], step_duration=60, duration=60), "steps lasting 2m"),
        (RunOptions(steps=[10] * 11, step_duration=60), "above the test's maximum"),
    ],
)
def test_impossible_steps_are_refused_before_anything_is_stored(store, options, message):
    _test(store)
    with pytest.raises(ValidationFailed, match=message):
        plan_run(store, "api", options, "ann")
    assert store.runs.collection.count_documents({}) == 0


def test_steps_over_a_locustfile_with_its_own_shape_are_refused(store):
    _test(store, content=SHAPED)
    with pytest.raises(ValidationFailed, match="its own load shape Ramp") as caught:
        plan_run(store, "api", RunOptions(steps=[1, 2], step_duration=5), "ann")
    assert caught.value.exit_code == 2
    assert store.runs.collection.count_documents({}) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "whole numbers"),
        ("10,,20", "whole numbers"),
        ("10,-5", "whole numbers"),
        ("1.5", "whole numbers"),
        ("0,10", "from 1"),
        ("١٠", "whole numbers"),
        (",".join(["1"] * 51), "at most 50"),
        ("2000000", "from 1"),
    ],
)
def test_bad_steps_are_refused(text, message):
    with pytest.raises(ValidationFailed, match=message):
        parse_steps_option(text)


def test_the_plugin_shape_steps_then_ends(plugin, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(plugin.time, "perf_counter", lambda: clock[0])
    shape = plugin.steps_shape([2, 4, 8], 10, 50.0)
    assert type(shape).__name__ == "LoadmgrSteps" and isinstance(shape, StubShape)
    seen = []
    for at in (0, 9.9, 10, 25, 29.9, 30, 31):
        clock[0] = 100.0 + at
        seen.append(shape.tick())
    assert seen == [(2, 50.0), (2, 50.0), (4, 50.0), (8, 50.0), (8, 50.0), None, None]
    assert type(plugin.steps_shape([1], 1, 1.0)) is type(shape)  # one class, made once


def test_the_plugin_file_declares_no_shape_locust_would_pick():
    from loadmgr.locust.plugin import plugin_path
    from loadmgr.models.shapes import find_shape

    assert find_shape([("loadmgr_plugin.py", plugin_path().read_text())]) is None


class _Runner(SimpleNamespace):
    state = "ready"


def _plugin_with(plugin: Any, shape: object) -> Any:
    p = plugin.LoadmgrPlugin(SimpleNamespace())
    p.runner = _Runner()
    p.environment = SimpleNamespace(shape_class=shape)
    return p


def test_a_swarm_with_steps_sets_the_shape_and_a_plain_one_forgets_it(plugin):
    p = _plugin_with(plugin, None)
    assert (
        p.prepare_steps({"loadmgr_steps": "1,2", "loadmgr_step_sec": "3", "spawn_rate": "5.0"})
        is None
    )
    shape = p.environment.shape_class
    assert isinstance(shape, plugin.StepsTicks) and shape.users == [1, 2]
    assert shape.step_sec == 3 and shape.spawn_rate == 5.0 and shape.runner is p.runner
    assert p.prepare_steps({"user_count": "5"}) is None
    assert p.environment.shape_class is None


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"loadmgr_steps": "1,x", "loadmgr_step_sec": "3"}, "user counts"),
        ({"loadmgr_steps": "0", "loadmgr_step_sec": "3"}, "at least 1 user"),
        ({"loadmgr_steps": "1", "loadmgr_step_sec": "0"}, "between 1 and"),
        ({"loadmgr_steps": "1", "loadmgr_step_sec": "3", "spawn_rate": "0"}, "above 0"),
    ],
)
def test_a_swarm_with_bad_steps_is_refused(plugin, form, message):
    p = _plugin_with(plugin, None)
    assert message in (p.prepare_steps(form) or "")
    assert p.environment.shape_class is None


def test_a_swarm_with_steps_over_the_locustfile_s_own_shape_is_refused(plugin):
    own = object()
    p = _plugin_with(plugin, own)
    refusal = p.prepare_steps({"loadmgr_steps": "1", "loadmgr_step_sec": "3"})
    assert refusal is not None and "its own load shape" in refusal
    assert p.environment.shape_class is own
    assert p.prepare_steps({"user_count": "1"}) is None  # a plain swarm leaves it alone
    assert p.environment.shape_class is own
