"""Locustfiles whose load shape drives the run, shared by the tests that run them (on
`local`, a remote master, and plain `locust --headless`): the same shapes with the pacing
each test wants (`wait_time`: Locust's expression, `constant(0.05)`, `constant_pacing(0.25)`).
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
