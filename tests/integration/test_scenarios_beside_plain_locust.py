"""Issue 22, "How it is tested": each scenario of the issue run through loadmgr on `local`
AND on a remote master with two workers (started with the same locustfile), each beside
plain `locust --headless` on the same file against the same loopback target.

The scenarios: a listener raising RescheduleTask on 20 % of responses; a user raising on
start (and a task raising now and then); a stages shape shorter and longer than
--duration; a shape waiting for a user count; a locustfile package importing a sibling
module and reading a CSV beside it; a custom argument and @tag tasks.

What must agree:
- loadmgr's summed intervals with the totals of ITS OWN Locust, exactly (the plugin sees
  every request Locust counts, whatever the locustfile does);
- loadmgr's counts with plain Locust's: exactly where every user does a fixed number of
  requests and stops (the counts do not depend on timing), within `TIMED_TOLERANCE` where a
  shape paces the load over time;
- the exceptions (type and count), the users the shape reached, and the end reason
  (plain Locust's log says "Shape test stopping" or "--run-time limit reached", or
  `stop_when_done`'s line).

A scenario of fixed counts ends when its users have made their requests (`stop_when_done`),
its duration only a deadline: a 3-s run once ended before plain Locust's users had made
them on a busy machine (26 of 30).

Plain Locust runs in the background while loadmgr's first run of the same scenario runs,
and its result is kept for the second (`_plain`), so the module stays under two minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ok
from tests.integration.test_locustfile_bundles import write_package
from tests.locust_servers import running_locust, running_target
from tests.shape_locustfiles import DONE_LINE, stages, stop_when_done, waiting

pytestmark = pytest.mark.integration

# Shaped scenarios pace each user (constant_pacing): their counts depend on when users
# start and stop, which differs by a spawn or a report cycle between two runs.
TIMED_TOLERANCE = 0.35
PACED = "constant_pacing(0.25)"
ITERATIONS = 10  # requests each user of a fixed-iteration scenario makes, then idles
DEADLINE = 60  # seconds: the duration of a fixed-count scenario, which ends itself sooner
# IDLE: a user that has made its requests sleeps instead of raising StopUser. When every
# user of a master stops by itself, Locust's master turns `stopped` at once; if that comes
# before loadmgr saw the test running, the run waits 60 s and ends in error (a finding
# of this module, not yet handled: see the report of issue 22's last part).

LISTENER = """
import itertools

import gevent
from locust import HttpUser, constant, events, task
from locust.exception import RescheduleTask

PATHS = ["/api/items"] * 4 + ["/missing"]  # one request in five fails (404)


@events.init.add_listener
def validations(environment, **_kwargs):
    seen = itertools.count(1)

    def reschedule_a_fifth(name, **_kwargs):
        if next(seen) % 5 == 0:
            raise RescheduleTask()  # Locust's response_validations example, on 20 %

    environment.events.request.add_listener(reschedule_a_fifth)


class Walker(HttpUser):
    wait_time = constant(0.02)

    def on_start(self):
        self.done = 0

    @task
    def walk(self):
        if self.done >= ITERATIONS:
            gevent.sleep(3600)  # done: idle until the run stops (see IDLE)
            return
        path = PATHS[self.done % len(PATHS)]
        self.done += 1  # before the request: a rescheduled task still counts it
        self.client.get(path)
"""

RAISING = """
import gevent
from locust import HttpUser, constant, task
from locust.exception import StopUser


class Crasher(HttpUser):
    fixed_count = 1  # one user of the 5, on whichever worker runs it
    wait_time = constant(1)

    def on_start(self):
        raise ValueError("cannot log in")

    @task
    def never(self):
        raise StopUser()


class Walker(HttpUser):
    wait_time = constant(0.02)

    def on_start(self):
        self.done = 0

    @task
    def walk(self):
        if self.done >= ITERATIONS:
            gevent.sleep(3600)  # done: idle until the run stops (see IDLE)
            return
        self.done += 1
        self.client.get("/api/items")
        if self.done % 5 == 0:
            raise KeyError("token")  # twice per user, after its request
"""

TAGGED = """
import gevent
from locust import HttpUser, constant, events, tag, task


@events.init_command_line_parser.add_listener
def _arguments(parser):
    parser.add_argument("--item-path", default="/missing")


class TaggedUser(HttpUser):
    wait_time = constant(0.02)

    def on_start(self):
        self.done = 0

    @tag("items")
    @task
    def items(self):
        if self.done >= ITERATIONS:
            gevent.sleep(3600)  # done: idle until the run stops (see IDLE)
            return
        self.done += 1
        self.client.get(self.environment.parsed_options.item_path, name="items")

    @tag("home")
    @task
    def home(self):
        self.client.get("/", name="home")
"""

# Added to plain Locust's -f only: what it does not print (the users it reached, its
# exceptions), written as JSON where PLAIN_PROBE says when it quits.
PROBE = """
import json
import os

import gevent
from locust import events

_peak = {"users": 0}
_raised_kinds = {}


@events.init.add_listener
def _sample(environment, **_kwargs):
    def sample():
        while True:
            _peak["users"] = max(_peak["users"], environment.runner.user_count)
            gevent.sleep(0.05)

    gevent.spawn(sample)


@events.user_error.add_listener
def _raised(exception, **_kwargs):
    kind = type(exception).__name__
    _raised_kinds[kind] = _raised_kinds.get(kind, 0) + 1


@events.quitting.add_listener
def _write(environment, **_kwargs):
    with open(os.environ["PLAIN_PROBE"], "w") as file:
        json.dump({"maxUsers": _peak["users"], "exceptions": _raised_kinds}, file)
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    write: Callable[[Path], Path]  # writes the locustfile under a folder, returns -f's path
    users: int
    duration: int  # seconds: loadmgr's --duration, plain Locust's -t
    stop_reason: str  # loadmgr's stopReason; plain Locust's log says the same
    fixed: bool = True  # a fixed number of requests per user: counts agree exactly
    shape_users: int | None = None  # the users the shape reached
    options: tuple[str, ...] = ()  # --locust-option of the test (both clusters)
    local_options: tuple[str, ...] = ()  # --locust-option of a local run only
    locust_args: tuple[str, ...] = ()  # on the remote cluster's command line
    expected: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (req, fail)
    exceptions: dict[str, int] = field(default_factory=dict)
    # Where plain Locust cannot do what loadmgr does: the file it runs instead, its end.
    plain_write: Callable[[Path], Path] | None = None
    plain_stop_reason: str | None = None


def _file(text: str) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "scenario.py"
        path.write_text(text.replace("ITERATIONS", str(ITERATIONS)), encoding="utf-8")
        return path

    return write


def _stopping(write: Callable[[Path], Path], total: int) -> Callable[[Path], Path]:
    """`write`, its locustfile (a file, or a package's locustfile.py) ending the test
    once `total` requests are counted."""

    def write_stopping(folder: Path) -> Path:
        path = write(folder)
        main = path / "locustfile.py" if path.is_dir() else path
        with main.open("a", encoding="utf-8") as file:
            file.write(stop_when_done(total))
        return path

    return write_stopping


def _fixed(name: str, write: Callable[[Path], Path], users: int, **kwargs: Any) -> Scenario:
    """A scenario whose users make a fixed number of requests: ended by its locustfile once
    they are made, within `DEADLINE`."""
    total = sum(requests for requests, _failures in kwargs["expected"].values())
    return Scenario(name, _stopping(write, total), users, DEADLINE, "locustfile", **kwargs)


SCENARIOS = [
    _fixed("listener", _file(LISTENER), 4,
           expected={"/api/items": (32, 0), "/missing": (8, 8)}),
    _fixed("raising", _file(RAISING), 5,
           expected={"/api/items": (40, 0)}, exceptions={"ValueError": 1, "KeyError": 8}),
    Scenario("shape-short", _file(stages(5, PACED)), 3, 30, "shape",
             fixed=False, shape_users=6),
    # Plain Locust 2.47 --headless never applies -t to a shape (it joins the shape's
    # greenlet before it arms the run-time timer): its reference is the same stages cut at
    # the duration, ended by the shape.
    Scenario("shape-long", _file(stages(60, PACED)), 3, 4, "duration",
             fixed=False, shape_users=6, plain_write=_file(stages(4, PACED)),
             plain_stop_reason="shape"),
    Scenario("shape-waiting", _file(waiting(PACED)), 3, 30, "shape", fixed=False, shape_users=5),
    _fixed("package", lambda folder: write_package(folder / "pkg"), 2,
           expected={"items": (10, 0), "home": (6, 0), "missing": (4, 4)}),
    _fixed("tagged", _file(TAGGED), 3, options=("item-path=/api/items",),
           local_options=("tags=items",), locust_args=("--tags", "items"),
           expected={"items": (30, 0)}),
]  # fmt: skip


@dataclass
class Plain:
    """One plain `locust --headless` run, started in the background."""

    process: subprocess.Popen[str]
    probe: Path
    result: dict[str, Any] | None = None

    def wait(self) -> dict[str, Any]:
        if self.result is None:
            out, err = self.process.communicate(timeout=90)
            assert self.process.returncode in (0, 1), err[-3000:]
            stats = json.loads(out)
            if "--run-time limit reached" in err:
                reason = "duration"
            elif "Shape test stopping" in err:
                reason = "shape"
            elif DONE_LINE in err:
                reason = "locustfile"
            else:
                reason = "unknown"
            self.result = {
                "counts": {e["name"]: (e["num_requests"], e["num_failures"]) for e in stats},
                "stopReason": reason,
                "exitCode": self.process.returncode,
                **json.loads(self.probe.read_text(encoding="utf-8")),
            }
        return self.result


@pytest.fixture(scope="module")
def target() -> Iterator[Any]:
    """One demo target for every run of the module: loadmgr's and plain Locust's."""
    with running_target() as server:
        yield server


@pytest.fixture(scope="module")
def plain_runs() -> Iterator[dict[str, Plain]]:
    """Plain Locust's runs by scenario, shared by its local and remote tests."""
    runs: dict[str, Plain] = {}
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
        run.process.communicate()


def _start_plain(scenario: Scenario, locustfile: Path, target: Any, folder: Path) -> Plain:
    probe = folder / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    command = [
        sys.executable, "-m", "locust", "--headless", "-f", f"{locustfile},{probe}",
        "-u", str(scenario.users), "-r", str(scenario.users), "-t", f"{scenario.duration}s",
        "-H", target.url, "--json", "--loglevel", "INFO",
        *[f"--{option}" for option in (*scenario.options, *scenario.local_options)],
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env["PLAIN_PROBE"] = str(folder / "probe.json")
    process = subprocess.Popen(
        command, cwd=folder, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    return Plain(process, folder / "probe.json")


def _intervals(mongo_db: Any, run_id: str) -> list[dict[str, Any]]:
    return list(mongo_db.metrics_timeseries.find({"loadTestRunId": run_id}).sort("seq", 1))


def _exception_kinds(run: dict[str, Any]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for item in run["exceptions"]:
        kinds[item["type"]] = kinds.get(item["type"], 0) + item["count"]
    return kinds


def _within(ours: int, theirs: int) -> bool:
    return abs(ours - theirs) <= TIMED_TOLERANCE * max(ours, theirs)


@pytest.mark.parametrize("where", ["local", "remote"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_scenario_runs_as_plain_locust_runs_it(
    scenario: Scenario,
    where: str,
    cli: Any,
    mongo_db: Any,
    target: Any,
    plain_runs: dict[str, Plain],
    tmp_path: Path,
) -> None:
    locustfile = scenario.write(tmp_path)
    if scenario.name not in plain_runs:
        plain_dir = tmp_path / "plain"
        plain_dir.mkdir()
        plain_file = scenario.plain_write(plain_dir) if scenario.plain_write else locustfile
        plain_runs[scenario.name] = _start_plain(scenario, plain_file, target, plain_dir)
    ok(cli(
        "tests", "create", "--name", scenario.name, "--target-url", target.url,
        "--locustfile", str(locustfile), "--users", str(scenario.users),
        "--spawn-rate", str(scenario.users), "--duration", f"{scenario.duration}s",
        *[f"--locust-option={option}" for option in scenario.options], "-q",
    ))  # fmt: skip
    start = ("runs", "start", scenario.name, "--interval", "1", "-o", "json")
    if where == "local":
        local = [f"--locust-option={option}" for option in scenario.local_options]
        result = cli(*start, "--workers", "2", *local)
    else:
        with running_locust(locustfile, workers=2, log_dir=tmp_path / "remote",
                            locust_args=scenario.locust_args) as remote:  # fmt: skip
            ok(cli("clusters", "add", "remote", "--url", remote.base_url, "-q"))
            result = cli(*start, "--cluster", "remote")
    assert result.exit_code in (0, 1), result.stderr
    run = result.json()
    plain = plain_runs[scenario.name].wait()

    assert run["status"] == "Finished", (run.get("error"), result.stderr)
    assert run["stopReason"] == scenario.stop_reason
    assert plain["stopReason"] == (scenario.plain_stop_reason or scenario.stop_reason)

    # loadmgr's intervals hold exactly what its own Locust counted.
    final = run["finalStats"]
    intervals = _intervals(mongo_db, run["id"])
    assert sum(i["intervalRequests"] for i in intervals) == final["totals"]["requests"]
    assert sum(i["intervalFailures"] for i in intervals) == final["totals"]["failures"]

    ours = {e["name"]: (e["numRequests"], e["numFailures"]) for e in final["requestStats"]}
    theirs = dict(plain["counts"])
    theirs.pop("Aggregated", None)
    if scenario.fixed:
        assert ours == theirs == scenario.expected
    else:
        assert ours.keys() == theirs.keys()
        for name, (requests, failures) in ours.items():
            assert _within(requests, theirs[name][0]), (name, requests, theirs[name])
            assert failures == theirs[name][1] == 0

    assert _exception_kinds(run) == plain["exceptions"] == scenario.exceptions
    if scenario.shape_users is not None:
        reached = max(i["currentUsers"] for i in intervals)
        assert reached == plain["maxUsers"] == scenario.shape_users
        assert run["shape"]["className"] in ("Stages", "WaitForUsers")
