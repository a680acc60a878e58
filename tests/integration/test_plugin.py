"""The loadmgr Locust plugin in a real Locust 2.47: standalone, and a master with 2 workers.

Runs of ~8 s against the demo target, with a task that fails (404). What the plugin says
once it calls a test final must equal Locust's own Aggregated counts exactly, fetched after
Locust has its workers' last reports. Every wait polls with a deadline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from loadmgr.locust.client import LocustClient
from loadmgr.locust.plugin import PLUGIN_FILENAME, plugin_path
from loadmgr.locust.protocol import ACTIVE_STATES
from tests.locust_servers import WEB_USER_LOCUSTFILE as LOCUSTFILE
from tests.polling import wait_for

pytestmark = pytest.mark.integration

USERS = 5
RUN_SEC = 8


@pytest.fixture
def importing_locustfile(tmp_path: Path) -> Path:
    """A locustfile that imports the plugin itself, which sits beside it (as on a remote
    cluster); LocalCluster also passes the package's copy with -f: it must count once."""
    directory = tmp_path / "importing"
    directory.mkdir()
    shutil.copyfile(plugin_path(), directory / PLUGIN_FILENAME)
    path = directory / "locustfile.py"
    path.write_text("import loadmgr_plugin  # noqa: F401\n" + LOCUSTFILE)
    return path


def by_name(seconds: list[dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    """Requests, failures and histogram counts per (method, name), summed over seconds."""
    found: dict[tuple[str, str], list[int]] = {}
    for second in seconds:
        for method, name, requests_, failures, histogram in second["entries"]:
            totals = found.setdefault((method, name), [0, 0, 0])
            totals[0] += requests_
            totals[1] += failures
            totals[2] += sum(count for _, count in histogram)
    return found


def watch(client: LocustClient, deadline: float) -> list[dict[str, Any]]:
    """Every answer of the seconds route, polled until the plugin says the test is final."""
    answers: list[dict[str, Any]] = []

    def final() -> bool:
        answers.append(client.seconds(limit=3600))
        return answers[-1]["final"] is True and answers[-1]["state"] == "stopped"

    assert wait_for(final, timeout=deadline, interval=0.25), answers[-1]
    return answers


def check_answers(answers: list[dict[str, Any]], steps: int) -> None:
    """`complete` advances (`steps` values at least) while the test runs, never goes back,
    and bounds `seconds`."""
    completes = [answer["complete"] for answer in answers]
    assert completes == sorted(completes)
    running = {a["complete"] for a in answers if a["state"] == "running"}
    assert len(running) >= steps, completes
    for answer in answers:
        times = [second["t"] for second in answer["seconds"]]
        assert times == sorted(set(times))
        assert all(t < answer["complete"] for t in times)
        assert all(second["entries"] for second in answer["seconds"])
        assert answer["complete"] <= int(answer["now"]) + 1
        assert not answer["more"]
        for second in answer["seconds"]:
            for entry in second["entries"]:
                buckets = [ms for ms, _ in entry[4]]
                assert buckets == sorted(set(buckets))


def check_exact(client: LocustClient, answer: dict[str, Any]) -> None:
    """The plugin's final numbers are Locust's own, per name and in total."""
    payload = client.wait_final_stats(30)
    locust = {(e["method"], e["name"]): (e["num_requests"], e["num_failures"])
              for e in payload["stats"]}
    plugin = by_name(answer["seconds"])
    aggregated = locust.pop(("", "Aggregated"))
    assert sum(t[0] for t in plugin.values()) == aggregated[0]
    assert sum(t[1] for t in plugin.values()) == aggregated[1]
    assert {key: (t[0], t[1]) for key, t in plugin.items()} == locust
    assert all(t[2] == t[0] for t in plugin.values())  # every request has its response time
    assert aggregated[0] > 20 and aggregated[1] > 0
    assert locust[("GET", "/missing")][0] == locust[("GET", "/missing")][1]


def check_paging(client: LocustClient, answer: dict[str, Any]) -> None:
    """Reading 2 seconds at a time, `after` the last one read, gives the same seconds."""
    paged: list[dict[str, Any]] = []
    after = -1
    while True:
        page = client.seconds(after=after, limit=2)
        paged += page["seconds"]
        assert len(page["seconds"]) <= 2
        if not page["more"]:
            break
        assert len(page["seconds"]) == 2
        after = page["seconds"][-1]["t"]
    assert paged == answer["seconds"]
    last = answer["seconds"][-1]["t"]
    assert client.seconds(after=last)["seconds"] == []
    assert client.seconds(after=last - 1)["seconds"] == answer["seconds"][-1:]


def run_once(client: LocustClient, target: Any, run_sec: int) -> list[dict[str, Any]]:
    before = time.time()
    client.start_swarm(USERS, USERS, target.url, run_sec, poll_interval=0.2)
    answers = watch(client, run_sec + 30)
    started = answers[-1]["test_started"]
    assert before - 1 <= started <= before + 5
    assert all(second["t"] >= int(started) - 1 for second in answers[-1]["seconds"])
    return answers


def test_standalone_under_a_base_path(
    locust_standalone: Any, target_server: Any, locustfile: Path
) -> None:
    cluster = locust_standalone(locustfile, web_base_path="/locust")
    client = cluster.client()
    assert cluster.base_url.endswith("/locust")
    assert client.plugin_version() == 1
    root = cluster.base_url.removesuffix("/locust")
    assert requests.get(f"{root}/loadmgr/v1/info", timeout=10).status_code == 404
    idle = client.seconds()
    assert idle["seconds"] == [] and idle["test_started"] is None
    assert idle["worker_count"] is None and idle["workers_without_plugin"] is None

    answers = run_once(client, target_server, RUN_SEC)
    check_answers(answers, steps=5)  # second by second
    final = answers[-1]
    assert final["complete"] > final["seconds"][-1]["t"]
    check_exact(client, final)
    check_paging(client, final)

    for query, error in (("after=x", "after must be an integer"),
                         ("limit=0", "limit must be between 1 and 3600")):
        bad = requests.get(f"{cluster.base_url}/loadmgr/v1/seconds?{query}", timeout=10)
        assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/json"
        assert error in bad.json()["error"]

    # A new test starts from zero, like Locust's own stats.
    again = run_once(client, target_server, 3)
    second_test = again[-1]
    assert second_test["test_started"] > final["test_started"]
    assert second_test["seconds"][0]["t"] >= int(second_test["test_started"])
    assert set(map(json.dumps, second_test["seconds"])).isdisjoint(
        map(json.dumps, final["seconds"])
    )
    check_exact(client, second_test)


def test_master_with_two_workers(
    locust_master_with_workers: Any, target_server: Any, importing_locustfile: Path
) -> None:
    cluster = locust_master_with_workers(importing_locustfile, workers=2)
    client = cluster.client()
    assert client.check().pluginVersion == 1
    answers = run_once(client, target_server, RUN_SEC)
    check_answers(answers, steps=2)  # one step per round of worker reports (3 s)
    final = answers[-1]
    assert all(a["workers_without_plugin"] == 0 for a in answers)
    running = [a for a in answers if a["state"] in ACTIVE_STATES]
    assert running and all(a["worker_count"] == 2 for a in running)
    # Workers report every 3 s: `complete` trails the clock while the test runs...
    assert any(a["complete"] < int(a["now"]) for a in running)
    check_exact(client, final)
    check_paging(client, final)


# -- Locust's own web UI in one process: the login guard and the rounding -----------------------

IN_LOCUST = """\
import json, sys
import importlib.util
import locust
from locust import HttpUser, task
from locust.env import Environment
from locust.stats import bucket_response_time


class WebUser(HttpUser):
    host = "http://127.0.0.1:9"

    @task
    def nothing(self):
        pass


spec = importlib.util.spec_from_file_location("loadmgr_plugin", sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
env = Environment(user_classes=[WebUser], events=locust.events)
runner = env.create_local_runner()
web = env.create_web_ui("127.0.0.1", 0, web_base_path="/base", web_login=True, delayed_start=True)
web.app.secret_key = "test"
web.login_manager.user_loader(lambda user_id: None)
env.events.init.fire(environment=env, runner=runner, web_ui=web)
client = web.app.test_client()
answers = {}
for path in ("/base/stats/requests", "/base/loadmgr/v1/info", "/base/loadmgr/v1/seconds"):
    answer = client.get(path)
    answers[path] = [answer.status_code, answer.headers.get("Location")]
values = [n / 10 for n in range(0, 200001, 7)] + list(range(0, 20001))
values += [0.5, 1.5, 2.5, 99.5, 104.99, 105, 995, 9950, 10500, 11500, 123456.7]
mismatched = [v for v in values if plugin.bucket(v) != bucket_response_time(v)]
print(json.dumps({"answers": answers, "values": len(values), "mismatched": mismatched[:20]}))
"""


@pytest.fixture(scope="module")
def in_locust(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plugin loaded beside a real WebUI (web login on) in its own process: importing
    locust monkey-patches the process with gevent, which this test process must not be."""
    done = subprocess.run(
        [sys.executable, "-c", IN_LOCUST, str(plugin_path())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path_factory.mktemp("in-locust"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_routes_follow_the_web_login_as_locusts_own(in_locust: dict[str, Any]) -> None:
    answers = in_locust["answers"]
    own = answers["/base/stats/requests"]
    assert own[0] == 302 and own[1].startswith("/base/login")
    for path in ("/base/loadmgr/v1/info", "/base/loadmgr/v1/seconds"):
        status, location = answers[path]
        assert status == 302, (path, answers)
        assert location == f"/base/login?next={quote(path, safe='')}"


def test_rounding_is_locusts_own(in_locust: dict[str, Any]) -> None:
    assert in_locust["values"] > 40_000
    assert in_locust["mismatched"] == []

