"""What follows a run's recorded end (the schedule's count, webhooks) is done exactly
once, and a collector killed between the end and those steps leaves a run that says so
(`runs show`) and that `runs follow` finishes (docs/reliability.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import CliResult, ok
from tests.metrics_data import make_test, store_all
from tests.trend_data import nightly_runs, stepped
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - the fixture

Cli = Callable[..., CliResult]


def test_a_run_whose_collector_died_before_its_end_steps_says_so_and_follow_does_them(
    cli: Cli, mock_store: Captured, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    told: list[str] = []
    monkeypatch.setattr(
        "loadmgr.service.notifications.subscriptions.notify_run_end",
        lambda _s, run, _m: told.append(run.id),
    )
    assert mock_store.client is not None
    db = mock_store.client["loadmgr"]
    test = make_test("checkout")
    runs = nightly_runs(test, stepped(40, 30, seed=3))
    store_all(db, test, runs)
    newest = runs[-1].id
    # As a collector leaves it when killed right after its final write: the verdict (with
    # any requested check) stored with the end, the webhooks and the schedule not told.
    db.load_test_runs.update_one({"id": newest}, {"$set": {"endSteps": "pending"}})
    stored = db.load_test_runs.find_one({"id": newest})
    shown = ok(cli("runs", "show", newest, "-o", "table")).stdout
    flat = " ".join(shown.replace("│", " ").split())  # wrapped at 100 columns when piped
    assert "NOT done" in flat and "runs follow" in flat

    followed = cli("runs", "follow", newest, "-o", "json")
    assert followed.exit_code == 0, followed.stderr
    assert "doing what follows it now" in followed.stderr
    run: dict[str, Any] = followed.json()  # type: ignore[assignment]
    assert run["verdict"] == stored.get("verdict")
    assert run["endSteps"] == "done" and told == [newest]
    assert "NOT done" not in ok(cli("runs", "show", newest, "-o", "table")).stdout

    again = cli("runs", "follow", newest, "-o", "json")  # nothing more to do: once only
    assert again.exit_code == 0 and "doing what follows" not in again.stderr
    assert told == [newest]


def ended_with_steps_pending(count: int) -> tuple[Any, Any]:
    """A store of `count` nightly runs of a test, and its newest run, recorded ended with
    its end steps still pending (as a collector killed right after its final write leaves it)."""
    import mongomock

    from loadmgr.models import Scope
    from loadmgr.store import Store

    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    store.ensure_indexes()
    test = make_test("checkout")
    runs = nightly_runs(test, stepped(count, 30, seed=3))
    store_all(store.db, test, runs)
    store.runs.update(runs[-1].id, {"endSteps": "pending"})
    run = store.runs.find_by_id(runs[-1].id)
    assert run is not None
    return store, run


def test_end_steps_are_done_once_whoever_asks(mock_store: Captured) -> None:  # noqa: F811
    from loadmgr.service.lifecycle.end import run_ended

    store, run = ended_with_steps_pending(40)
    told: list[str] = []
    import loadmgr.service.notifications.subscriptions as notifications

    original = notifications.notify_run_end
    notifications.notify_run_end = lambda _s, ended, _m: told.append(ended.id)  # type: ignore[assignment]
    try:
        first = run_ended(store, run, lambda _: None)
        assert first.endSteps == "done" and told == [run.id]
        second = run_ended(store, run, lambda _: None)  # a second collector racing to the end
        assert told == [run.id] and second.verdict == run.verdict
    finally:
        notifications.notify_run_end = original  # type: ignore[assignment]


def test_a_step_that_raises_is_one_message_and_the_others_still_run(
    mock_store: Captured,  # noqa: F811
) -> None:
    from loadmgr.errors import ClusterError
    from loadmgr.models import LoadTestRun
    from loadmgr.service.collection import EndStep, run_end_steps
    from loadmgr.service.collection.end_steps import fields_with_end
    from loadmgr.store import Store

    store, run = ended_with_steps_pending(3)
    done: list[str] = []

    class Broken(EndStep):
        name = "do the broken thing"

        def with_end(
            self, store: Store, run: LoadTestRun, changes: Any, message: Callable[[str], None]
        ) -> dict[str, Any]:
            raise ClusterError("no answer")

        def after_end(self, store: Store, run: LoadTestRun, message: Callable[[str], None]) -> None:
            raise KeyError("https://hooks.example/secret")

    class Counted(EndStep):
        name = "count"

        def with_end(
            self, store: Store, run: LoadTestRun, changes: Any, message: Callable[[str], None]
        ) -> dict[str, Any]:
            return {"seen": changes.get("status")}

        def after_end(self, store: Store, run: LoadTestRun, message: Callable[[str], None]) -> None:
            done.append(run.id)

    said: list[str] = []
    steps = (Broken(), Counted())
    assert fields_with_end(steps, store, run, {"status": "Finished"}, said.append) == {
        "seen": "Finished"
    }
    ended = run_end_steps(steps, store, run, said.append)
    assert said == [
        "could not do the broken thing: no answer",
        "could not do the broken thing: unexpected KeyError",
    ]
    assert done == [run.id] and ended.endSteps == "done"
    assert run_end_steps(steps, store, run, said.append) is run and done == [run.id]  # once


def test_every_collector_gets_the_same_default_end_steps() -> None:
    from loadmgr.service.lifecycle.end import end_plan

    names = [step.name for step in end_plan().steps]
    assert names == [
        "record the steps' windows",
        "judge the requested checks",
        "read the run's server metrics",
        "store the run's steady samples",
        "update the run's schedule",
        "send the run's notifications",
    ]
    assert end_plan().warmup_stats is not None


def test_observers_compose() -> None:
    from loadmgr.models import LoadTestRun
    from loadmgr.service.collection import CompositeObserver, QuietObserver
    from loadmgr.service.collection.settings import observer_of

    class Recorder(QuietObserver):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def message(self, text: str) -> None:
            self.seen.append(text)

        def finished(self, run: LoadTestRun) -> None:
            self.seen.append(f"finished {run.name}")

    first, second = Recorder(), Recorder()
    both = observer_of(first, None, second)
    assert isinstance(both, CompositeObserver)
    both.message("hello")
    both.finished(LoadTestRun(loadTestId="t", name="r", targetUsers=1, spawnRate=1.0,
                              durationSeconds=1))
    assert first.seen == second.seen == ["hello", "finished r"]
    assert observer_of(first) is first and isinstance(observer_of(), QuietObserver)
