"""Case 7: what the loadmgr Locust plugin costs Locust (issue 9: at most 2 % of its RPS).

Two measures. Side by side, the same headless master + workers, locustfile, users and
duration, with and without the plugin (`-f locustfile.py` against `-f locustfile.py,
loadmgr_plugin.py`): requests per second, pairs alternating. The locustfile waits 0 s
between requests, so the workers are as busy as the machine lets them be. On a shared
2-CPU machine this ratio moves by a few percent from run to run, more than the plugin
costs, so the second measure is steadier: the CPU the plugin's listener adds to each
request, in one Locust process (bench/plugin_hook.py), against the CPU of a whole request
through Locust's HttpSession. A worker bound by its CPU loses that share of its RPS.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.cases_load import headless_locust
from bench.harness import Bench, Row, load_workers, ratio_row
from bench.procs import clean_env, start_demo_target
from loadmgr.locust.plugin import plugin_path

CASE7 = "7 plugin"
PLUGIN = plugin_path()
# Listener fires and requests timed per round, by size.
HOOK_SIZES = {"smoke": ("2000", "20"), "tiny": ("20000", "100"), "full": ("300000", "2000")}
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class BusyUser(HttpUser):
    \"\"\"No wait between requests: each worker makes as many as its CPU allows.\"\"\"

    wait_time = constant(0)

    @task(3)
    def items(self):
        self.client.get("/api/items")

    @task(1)
    def index(self):
        self.client.get("/")
"""


def plugin_cost(bench: Bench) -> list[Row]:
    workers = load_workers(bench.size)
    target, target_process = start_demo_target(bench.processes, bench.tmp / "plugin-target.log")
    try:
        return [_rps(bench, target, workers), _hook(bench, target)]
    finally:
        bench.processes.stop(target_process)


def _rps(bench: Bench, target: str, workers: int) -> Row:
    size = bench.size
    users, seconds = size.load_users, size.load_seconds
    with_plugin: list[float] = []
    without: list[float] = []
    for index in range(max(1, min(bench.repeat, size.load_pairs))):
        order = [(True, with_plugin), (False, without)]
        for plugin, results in order if index % 2 == 0 else reversed(order):
            results.append(_locust_rps(bench, target, users, workers, seconds, plugin, index))
    return ratio_row(
        CASE7, f"req/s, {users} users, {workers} workers, {seconds} s, no wait", with_plugin,
        without, "same, without plugin", at_least=0.98, unit="req/s",
    )


def _locust_rps(
    bench: Bench, target: str, users: int, workers: int, seconds: int, plugin: bool, index: int
) -> float:
    """A headless master and `workers` workers; the Aggregated requests/s of its CSV."""
    workdir = bench.tmp / f"plugin-{'with' if plugin else 'without'}-{index}"
    workdir.mkdir(parents=True, exist_ok=True)
    locustfile = workdir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    files = str(locustfile)
    if plugin:
        shutil.copyfile(PLUGIN, workdir / PLUGIN.name)
        files += f",{workdir / PLUGIN.name}"
    return headless_locust(bench, files, workdir, target, users, workers, seconds)[0]


def _hook(bench: Bench, target: str) -> Row:
    fires, requests = HOOK_SIZES[bench.size_name]
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("plugin_hook.py")), str(PLUGIN), target,
         fires, requests],
        capture_output=True, text=True, env=clean_env(), cwd=bench.tmp, timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"plugin_hook.py exited {done.returncode}: {done.stderr[-400:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Every fire of the rounds with the plugin's listener, every GET, and the first GET.
    expected = result["fires"] * result["rounds"] + result["requests"] * result["rounds"] + 1
    if result["recorded"] != expected:
        raise RuntimeError(f"the plugin recorded {result['recorded']} of {expected} requests")
    share = result["plugin_us"] / result["request_us"] * 100
    return Row(
        CASE7, "  listener CPU per request", "µs", result["plugin_us"], result["locust_us"],
        "Locust's own stats listener", goal="<= 2 % of a request", passed=share <= 2.0,
        note=f"{share:.2f} % of a whole request through HttpSession "
        f"({result['request_us']:,.0f} µs CPU)",
        samples={"plugin_us": [result["plugin_us"]], "locust_us": [result["locust_us"]],
                 "request_us": [result["request_us"]]},
    )
