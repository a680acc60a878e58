"""Whatever a locustfile's own request listeners do, the plugin counts every request Locust
counts (issue 22, item 1), on a real standalone Locust and a master with two workers.

`EventHook.fire` lets StopUser, RescheduleTask and the like out of a listener, and the
listeners after it never run: the plugin's listener used to come after the locustfile's
`init` ones. One locustfile holds every way a listener can interfere: one added at `init`
raises RescheduleTask on about 20 % of the responses (Locust's `response_validations`
example), one raises a plain exception (Locust logs it and goes on), one stops its user
(StopUser), one fires extra request events; one added at import time (before Locust's own
stats listener) raises RescheduleTask too: neither Locust nor the plugin sees what follows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_plugin import by_name, watch

pytestmark = pytest.mark.integration

INTERFERING = """\
import random

from locust import HttpUser, between, events, task
from locust.exception import RescheduleTask, StopUser


@events.request.add_listener
def before_locusts_own(name, **_kwargs):
    # Added at import, so before Locust's own stats listener: nobody counts what follows.
    if name == "/hidden":
        raise RescheduleTask()


@events.init.add_listener
def validations(environment, **_kwargs):
    def reschedule_some(name, response=None, exception=None, **_kwargs):
        if name == "/api/items" and random.random() < 0.2:
            raise RescheduleTask()  # Locust's response_validations example

    def plain_error(name, **_kwargs):
        if name == "/error":
            raise ValueError("a listener's own bug")

    def stop_user(name, context=None, **_kwargs):
        if name == "/stop" and random.random() < 0.5:
            raise StopUser()

    def extra_events(name, **_kwargs):
        if name == "/":
            environment.events.request.fire(
                request_type="CUSTOM", name="extra", response_time=1.0, response_length=0,
                exception=None, context={},
            )
            environment.events.request.fire(
                request_type="CUSTOM", name="extra-failed", response_time=None,
                response_length=0, exception=RuntimeError("extra"), context={},
            )

    for listener in (reschedule_some, plain_error, stop_user, extra_events):
        environment.events.request.add_listener(listener)


class WebUser(HttpUser):
    wait_time = between(0.02, 0.1)

    @task(4)
    def items(self):
        self.client.get("/api/items")

    @task(1)
    def error(self):
        self.client.get("/error")

    @task(1)
    def root(self):
        self.client.get("/")

    @task(1)
    def hidden(self):
        self.client.get("/hidden")


class Stopper(HttpUser):
    wait_time = between(0.2, 0.4)
    fixed_count = 1

    @task
    def stop(self):
        self.client.get("/stop")
"""


@pytest.fixture
def interfering(tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text(INTERFERING)
    return path


@pytest.mark.parametrize("workers", [0, 2], ids=["standalone", "master-2-workers"])
def test_every_request_locust_counts_is_in_the_seconds(
    workers: int,
    locust_standalone: Any,
    locust_master_with_workers: Any,
    target_server: Any,
    interfering: Path,
) -> None:
    start = locust_master_with_workers if workers else locust_standalone
    cluster = start(interfering, workers=workers) if workers else start(interfering)
    client = cluster.client()
    client.start_swarm(6, 6, target_server.url, 6, poll_interval=0.2)
    final = watch(client, 40)[-1]
    payload = client.wait_final_stats(30)

    locust = {(e["method"], e["name"]): (e["num_requests"], e["num_failures"])
              for e in payload["stats"]}
    aggregated = locust.pop(("", "Aggregated"))
    plugin = by_name(final["seconds"])
    counted = {key: (found[0], found[1]) for key, found in plugin.items()}
    assert counted == locust
    assert sum(t[0] for t in counted.values()) == aggregated[0]
    assert sum(t[1] for t in counted.values()) == aggregated[1]
    # Each way of interfering happened: else the test proves nothing.
    assert locust[("GET", "/api/items")][0] > 20
    assert locust[("GET", "/error")][1] > 0  # the 500s: failures through a raising listener
    assert locust[("CUSTOM", "extra")][0] > 0
    assert locust[("CUSTOM", "extra-failed")] == (locust[("CUSTOM", "extra")][0],) * 2
    assert locust[("GET", "/stop")][0] >= 1
    assert ("GET", "/hidden") not in locust  # stopped before Locust's own listener
