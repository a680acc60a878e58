"""Each step of a stepped run as its own window: the intervals wholly inside the step,
its first `settleSec` seconds left out (users arriving, queues filling), exact from the
intervals' histograms where the plugin kept them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadmgr.models import LoadTestRun

if TYPE_CHECKING:
    from loadmgr.store import Store


def step_windows(store: Store, run: LoadTestRun) -> list[dict[str, Any]]:
    """One item per step of `run.steps`: `step` (1 first), `users`, `fromSec`/`toSec`
    (offsets from the run's first second), `seconds`, `requests`, `failures`, `rps`,
    `errorRate`, `avgResponseMs`, `p50ResponseMs`, `p95ResponseMs`, `p99ResponseMs`,
    `exact` (every interval had its histogram), `peakUsers` (the users seen), and the
    load generator's health in the step: `generatorPeakCpuPct`, `saturatedSec` and
    `generatorSaturated` (a worker at or above the run's saturation level for 10 % of the
    step's window or more: its throughput is the generator's ceiling, not the service's;
    None when the generator was not read)."""
    from loadmgr.service.analysis.windows import Window, window_stats

    steps = run.steps or {}
    step_sec = int(steps.get("stepSec") or 0)
    settle = int(steps.get("settleSec") or 0)
    windows: list[dict[str, Any]] = []
    if step_sec <= 0:
        return windows
    for index, users in enumerate(steps.get("users") or []):
        start = index * step_sec + settle
        stats = window_stats(
            store, run, Window(start=start, end=(index + 1) * step_sec), per_request=False
        )
        totals = stats["totals"]
        windows.append(
            {
                "step": index + 1,
                "users": users,
                "fromSec": stats["window"]["fromSec"],
                "toSec": stats["window"]["toSec"],
                "seconds": stats["window"]["seconds"],
                "requests": totals["requests"],
                "failures": totals["failures"],
                "rps": totals["rps"] if stats["window"]["seconds"] else None,
                "errorRate": totals["errorRate"],
                "avgResponseMs": totals["avgResponseMs"],
                "p50ResponseMs": totals["p50ResponseMs"],
                "p95ResponseMs": totals["p95ResponseMs"],
                "p99ResponseMs": totals["p99ResponseMs"],
                "exact": stats["exact"],
                "peakUsers": stats["peaks"]["users"],
                **_generator(stats["generator"]),
            }
        )
    return windows


def _generator(stats: dict[str, Any] | None) -> dict[str, Any]:
    """A window's `generator` stats as a step window's fields."""
    if stats is None:
        return {"generatorPeakCpuPct": None, "saturatedSec": None, "generatorSaturated": None}
    return {
        "generatorPeakCpuPct": stats["peakCpuPct"],
        "saturatedSec": stats["saturatedSec"],
        "generatorSaturated": stats["saturated"],
    }
