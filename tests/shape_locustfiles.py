"""Locustfiles whose load shape drives the run, shared by the tests that run them (on
`local`, a remote master, and plain `locust --headless`): the same shapes with the pacing
each test wants (`wait_time`: Locust's expression, `constant(0.05)`, `constant_pacing(0.25)`);
and the lines that end a test of fixed counts once its requests are made (`stop_when_done`).
"""

from __future__ import annotations

_HEADER = """
from locust import HttpUser, LoadTestShape, constant, constant_pacing, task


class Web(HttpUser):
    wait_time = WAIT_TIME

    @task
    def items(self):
        self.client.get("/api/items")
"""

_STAGES = """

class Stages(LoadTestShape):
    stages = [
        {"duration": 2, "users": 2, "spawn_rate": 10},
        {"duration": STOP_AT, "users": 6, "spawn_rate": 10},
    ]

    def tick(self):
        run_time = self.get_run_time()
        for stage in self.stages:
            if run_time < stage["duration"]:
                return stage["users"], stage["spawn_rate"]
        return None
"""

_WAITING = '''

class WaitForUsers(LoadTestShape):
    """Steps 2 → 5 users once 2 are really running, ends 3 s after reaching 5."""

    def __init__(self):
        super().__init__()
        self.reached = None

    def tick(self):
        users = self.get_current_user_count()
        if self.reached is None and users >= 5:
            self.reached = self.get_run_time()
        if self.reached is not None:
            return None if self.get_run_time() - self.reached > 3 else (5, 10)
        return (5, 10) if users >= 2 else (2, 10)
'''

DEFAULT_WAIT = "constant(0.05)"


def stages(stop_at: int, wait_time: str = DEFAULT_WAIT) -> str:
    """Two stages: 2 users for 2 s, then 6 users until `stop_at` s, when the shape ends."""
    return (_HEADER + _STAGES).replace("WAIT_TIME", wait_time).replace("STOP_AT", str(stop_at))


def waiting(wait_time: str = DEFAULT_WAIT) -> str:
    """A shape that waits for 2 users to run before it asks for 5, and ends 3 s later."""
    return (_HEADER + _WAITING).replace("WAIT_TIME", wait_time)


DONE_LINE = "scenario: every user made its requests"
# Appended to a locustfile whose users make a fixed number of requests: where the test is
# run from (plain Locust, a local or remote master; never a worker), stop it once Locust
# has counted every request its users make (TOTAL), however long this machine takes to
# make them. Plain headless Locust exits only when its runner quits; a master stops its
# test and stays.
_STOP_WHEN_DONE = """

import logging as _logging

import gevent as _gevent
from locust import events as _events
from locust.runners import WorkerRunner as _WorkerRunner

DONE_LINE = "scenario: every user made its requests"


@_events.test_start.add_listener
def _stop_when_every_user_is_done(environment, **_kwargs):
    runner = environment.runner
    if isinstance(runner, _WorkerRunner):
        return

    def stop_when_done():
        while runner.stats.total.num_requests < TOTAL:
            _gevent.sleep(0.1)
        _logging.getLogger("scenario").info(DONE_LINE)
        if environment.parsed_options.headless:
            runner.quit()
        else:
            runner.stop()

    _gevent.spawn(stop_when_done)
"""


def stop_when_done(total: int) -> str:
    """The lines to append to a locustfile whose users make `total` requests in all: the
    test ends once Locust has counted them, its duration only a deadline, so the counts
    never depend on how fast the machine is."""
    return _STOP_WHEN_DONE.replace("TOTAL", str(total))
