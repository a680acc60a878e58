"""The plugin's cost per request inside one real Locust process (run by bench/cases_plugin.py).

    python bench/plugin_hook.py PLUGIN_PATH TARGET_URL [FIRES] [REQUESTS]

Prints one JSON line:
- `locust_us`: CPU µs of one `events.request` fire with Locust's own stats listener only;
- `plugin_us`: what the plugin's listener adds to each fire;
- `request_us`: CPU µs of one whole request as an HttpUser makes it (Locust's HttpSession to
  the target, both listeners included), which is what a CPU-bound worker spends per request.
So plugin_us / request_us is the share of a saturated worker's requests per second the
plugin costs. Each figure is the best of five rounds (the least disturbed by other load).
It imports locust (and so gevent's monkey-patching): run it as its own process.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from typing import Any

import locust
from locust import HttpUser, constant, task
from locust.clients import HttpSession
from locust.env import Environment

ROUNDS = 5


class Probe(HttpUser):
    wait_time = constant(0)

    @task
    def nothing(self) -> None:
        pass


def fire_cost(events: Any, fires: int) -> float:
    """CPU µs per events.request fire, as Locust's HttpSession fires it."""
    fire = events.request.fire
    start = time.process_time()
    for index in range(fires):
        fire(request_type="GET", name=f"/api/items/{index % 20}",
             response_time=(index % 300) + 0.4, response_length=120, response=None,
             context={}, exception=None, start_time=0.0, url="/api/items")
    return (time.process_time() - start) / fires * 1e6


def request_cost(session: HttpSession, requests: int) -> float:
    """CPU µs per GET through Locust's HttpSession (client side, listeners included)."""
    start = time.process_time()
    for index in range(requests):
        session.get("/api/items" if index % 2 else "/", name=f"/r{index % 20}")
    return (time.process_time() - start) / requests * 1e6


def main() -> None:
    plugin_file, target = sys.argv[1], sys.argv[2]
    fires = int(sys.argv[3]) if len(sys.argv) > 3 else 200_000
    requests = int(sys.argv[4]) if len(sys.argv) > 4 else 2_000
    environment = Environment(user_classes=[Probe], events=locust.events, host=target)
    runner = environment.create_local_runner()  # registers Locust's own request listener
    spec = importlib.util.spec_from_file_location("loadmgr_plugin", plugin_file)
    assert spec is not None and spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)  # installed on locust.events; listens once init fires
    environment.events.init.fire(environment=environment, runner=runner, web_ui=None)
    assert plugin.PLUGIN.role == "standalone"
    hook = environment.events.request
    listener = hook._handlers[-1]  # the plugin's, added by init after Locust's own
    # Rounds with and without the plugin's listener alternate, so both meet the same
    # disturbances from other processes; the quickest round of each is kept.
    locust_only: list[float] = []
    both: list[float] = []
    for _ in range(ROUNDS):
        hook.remove_listener(listener)
        locust_only.append(fire_cost(environment.events, fires))
        hook.add_listener(listener)
        both.append(fire_cost(environment.events, fires))
    session = HttpSession(base_url=target, request_event=environment.events.request, user=None)
    session.get("/")  # connect once: keep-alive, as a running user would be
    whole = min(request_cost(session, requests) for _ in range(ROUNDS))
    recorded = sum(
        entry[0] for entries in plugin.PLUGIN.buffer.hot.values() for entry in entries.values()
    ) + sum(item[1] for second in plugin.PLUGIN.buffer.cold.values() for item in second)
    print(json.dumps({
        "locust_us": min(locust_only),
        "plugin_us": min(both) - min(locust_only),
        "request_us": whole,
        "fires": fires,
        "requests": requests,
        "rounds": ROUNDS,
        "recorded": recorded,
    }))


if __name__ == "__main__":
    main()
