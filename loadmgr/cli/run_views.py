"""How runs look: the list's columns, the view of one run, and a run's exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadmgr.cli.output import Column, ago, field, sanitize
from loadmgr.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.models import LoadTestRun

LIST_COLUMNS = [
    field("id", "ID"),
    field("testName", "TEST"),
    Column(
        "STATUS",
        lambda d: f"{d.get('status')} (stale)" if d.get("stale") else d.get("status"),
    ),
    field("verdict", "VERDICT"),
    field("locustClusterId", "CLUSTER"),
    field("targetUsers", "USERS", "right"),
    Column("REQUESTS", lambda d: (d.get("lastMetrics") or {}).get("totalRequests"), "right"),
    Column("STARTED", lambda d: ago(d.get("startedAt") or d.get("createdAt"))),
    field("createdBy", "BY"),
]

PERCENTILE_NOTE = (
    "RPS and failures/s are deltas between real changes of Locust's counters; p50/p95 are "
    "Locust's rolling ~10 s window; p99, min and max are cumulative since the run started."
)


def run_exit_code(run: LoadTestRun, interrupted: bool = False) -> int:
    """DESIGN §2: 0 passed, 1 a threshold failed, 6 the run failed, 130 interrupted."""
    from loadmgr.models import RunStatus, Verdict

    if interrupted:
        return ExitCode.INTERRUPTED
    if run.status == RunStatus.FAILED:
        return ExitCode.CLUSTER
    if run.verdict == Verdict.FAILED:
        return ExitCode.THRESHOLD_FAILED
    return ExitCode.OK


def run_view(data: dict[str, Any]) -> RenderableType:
    """A run for people: its load, its life, its numbers, its verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from loadmgr.cli.live import fmt_ms, fmt_pct
    from loadmgr.cli.output import audit_line, key_value_view

    final = data.get("finalStats") or {}
    totals = final.get("totals") or {}
    last = data.get("lastMetrics") or {}
    status = data.get("status")
    if data.get("stale"):
        status = f"{status} (stale: its collector stopped reporting)"
    summary: dict[str, Any] = {
        "id": data.get("id"),
        "test": f"{data.get('testName') or '?'} ({data.get('loadTestId')})",
        "status": status,
        "verdict": data.get("verdict") or "-",
        "stop reason": data.get("stopReason") or "-",
        "error": data.get("error") or "-",
        "cluster": data.get("locustClusterId"),
        "target": data.get("targetUrl"),
        "load": f"{data.get('targetUsers')} users at {data.get('spawnRate')}/s "
        f"for {data.get('durationSeconds')}s",
        "started": data.get("startedAt") or "-",
        "finished": data.get("finishedAt") or "-",
        "created": audit_line(data, "created"),
    }
    if totals:
        summary.update(
            {
                "requests": f"{totals.get('requests'):,} ({totals.get('failures'):,} failed, "
                f"{fmt_pct(totals.get('errorRate'))})",
                "rps": f"{totals.get('rps') or 0:,.1f}",
                "latency": f"avg {fmt_ms(totals.get('avgResponseMs'))}  "
                f"p50 {fmt_ms(totals.get('p50ResponseMs'))}  "
                f"p95 {fmt_ms(totals.get('p95ResponseMs'))}  "
                f"p99 {fmt_ms(totals.get('p99ResponseMs'))}  "
                f"max {fmt_ms(totals.get('maxResponseMs'))}",
            }
        )
    elif last:
        summary.update(
            {
                "requests": f"{last.get('totalRequests', 0):,} "
                f"({last.get('totalFailures', 0):,} failed) so far",
                "last interval": f"rps {last.get('totalRPS', 0):,.1f}  "
                f"p95 {fmt_ms(last.get('p95ResponseMs'))}  users {last.get('currentUsers')}",
            }
        )
    parts: list[Any] = [key_value_view(summary, title=f"run {data.get('name')}")]
    results = data.get("thresholdResults") or []
    if results:
        table = Table(title="thresholds", box=None, header_style="bold", title_justify="left")
        for header in ("threshold", "actual", "result"):
            table.add_column(header)
        for result in results:
            actual = result.get("actual")
            shown = "-" if actual is None else f"{actual:,.4g}"
            table.add_row(
                Text(sanitize(str(result.get("expression", "")), in_cell=True)),
                shown,
                Text("pass", style="green") if result.get("passed") else Text("FAIL", style="red"),
            )
        parts.append(table)
    return Group(*parts)
