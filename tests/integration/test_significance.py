"""Significance in every comparison, end to end (issue 24): real runs against a target
whose latency varies ±10 % at random. The 20-pair claims are proven on synthetic stored
runs (tests/unit/test_significance.py); here a few real pairs show the whole path:
intervals recorded by the collector, the test over them, the verdict and its exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_runs import create_test_argv

pytestmark = pytest.mark.integration

LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Steady(HttpUser):
    wait_time = constant(0.05)

    @task
    def items(self):
        self.client.get("/api/items")
"""
DELAY = 0.050  # 50 ms ± 10 %: well above the machine's own few ms of noise
# Runs of 8 s with a 1-s warm-up: 7 steady intervals a side, past the test's 5 (MIN_SAMPLES);
# 7 against 7 wholly apart is p ≈ 0.002, so a longer run would prove nothing more.


def _run(cli: Any, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = cli("runs", "start", "noisy", "--interval", "1", *extra, "-o", "json")
    return result.exit_code, result.json(), result.stderr


def _start_detached(cli: Any, cluster: str, *extra: str) -> str:
    """A run of `noisy` on `cluster`, detached, judged against the baseline at 10 %; its id."""
    result = cli("runs", "start", "noisy", "--interval", "1", "--max-regression", "p95=10%",
                 "--cluster", cluster, "--detach", "-q", *extra)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return str(result.stdout.strip())


def _followed(cli: Any, run_id: str) -> tuple[int, dict[str, Any], str]:
    result = cli("runs", "follow", run_id, "-o", "json")
    return result.exit_code, result.json(), result.stderr


def test_noise_is_no_regression_and_a_latency_step_is(
    cli: Any, target_server: Any, locust_standalone: Any, tmp_path: Path
) -> None:
    target_server.delay, target_server.jitter = DELAY, 0.10
    locustfile = tmp_path / "noisy.py"
    locustfile.write_text(LOCUSTFILE, encoding="utf-8")
    locust = locust_standalone(locustfile)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    created = cli(
        *create_test_argv("noisy", target_server.url, locustfile),
        "--cluster", "solo", "--users", "4", "--spawn-rate", "4", "--duration", "8s",
        "--warmup", "1s", "-q",
    )
    assert created.exit_code == 0, created.stderr
    code, base, said = _run(cli)
    assert code == 0, said
    assert cli("tests", "baseline", "noisy", base["id"], "--floor", "p95=1ms", "-q").exit_code == 0

    # The same load again: no regression, with the test's numbers beside each change. (The
    # limits here leave room for a busy CI machine's own noise; the statistics' claims at
    # ±10 % and 30 % are proven on seeded samples in tests/unit/test_significance.py.)
    code, same, said = _run(cli, "--max-regression", "p95=25%")
    assert code == 0, said
    (check,) = same["baselineChecks"]
    assert check["test"] == "mann-whitney-u" and check["regressed"] is False
    assert check["detectable"] is not None and check["pValue"] is not None
    compared = cli("metrics", "compare", base["id"], same["id"], "-o", "json")
    assert compared.exit_code == 0, compared.stderr
    rows = [r for r in compared.json() if r["position"] == 1 and r["request"] == "Aggregated"]
    assert not any(r["regression"] for r in rows), rows
    assert {r["metric"]: r["test"] for r in rows}["p95"] == "mann-whitney-u"

    # A 60 % latency step, judged on two runs at once (the same-load run above runs alone:
    # other load beside it would be a step of its own): one on a Locust of its own, too
    # short to test (checked last), and one long enough to.
    target_server.delay = DELAY * 1.6
    spare = locust_standalone(locustfile)
    assert cli("clusters", "add", "spare", "--url", spare.base_url, "-q").exit_code == 0
    short_id = _start_detached(cli, "spare", "--duration", "3s")
    slower_run = _run(cli, "--max-regression", "p95=10%")
    short_run = _followed(cli, short_id)

    # A 60 % latency step: a significant regression, the run failed (exit 1).
    code, slower, said = slower_run
    assert code == 1, said
    (check,) = slower["baselineChecks"]
    assert check["regressed"] and check["significant"] and check["pValue"] < 0.05
    assert slower["verdict"] == "failed"
    table = cli("metrics", "compare", base["id"], slower["id"])
    assert "✗ worse" in table.stdout

    # The same step on a 3-s run: inconclusive (exit 8).
    code, short, said = short_run
    assert code == 8, said
    (check,) = short["baselineChecks"]
    assert check["inconclusive"] and "too few steady intervals" in check["note"]
    assert short["verdict"] == "inconclusive"
    assert "inconclusive" in short["verdictReasons"][0]["message"]
