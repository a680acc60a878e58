"""How runs look: the list's columns, the view of one run, and a run's exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadmgr.cli.output import OF_A_TEST_CSV, Column, ago, field, id_field, sanitize
from loadmgr.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.models import LoadTestRun


def list_columns(*, absolute_time: bool = False) -> list[Column]:
    """`runs list`'s table; STARTED as `3 h ago`, or with `absolute_time` as the date
    (ISO-8601 UTC, as JSON and CSV write it)."""

    def started(d: dict[str, Any]) -> Any:
        when = d.get("startedAt") or d.get("createdAt")
        return (when or "-") if absolute_time else ago(when)

    return [
        id_field(),
        field("testName", "TEST"),
        Column(
            "STATUS",
            lambda d: f"{d.get('status')} (stale)" if d.get("stale") else d.get("status"),
        ),
        Column("VERDICT", lambda d: verdict_cell(d)),
        field("locustClusterId", "CLUSTER"),
        field("targetUsers", "USERS", "right"),
        Column("REQUESTS", lambda d: (d.get("lastMetrics") or {}).get("totalRequests"), "right"),
        Column("STARTED", started),
        field("createdBy", "BY"),
    ]


# `-o csv` of every command printing runs (docs/output.md): the numbers so far
# (`lastMetrics`) and the final ones (`finalStats.totals`); per request: `metrics show`.
RUN_CSV = (
    *OF_A_TEST_CSV,
    "locustClusterId",
    "targetUrl",
    "targetUsers",
    "spawnRate",
    "durationSeconds",
    "warmupSec",
    "status",
    "stopReason",
    "verdict",
    "verdictReasons.kind",
    "verdictReasons.message",
    "error",
    "thresholds",
    "thresholdResults.passed",
    "baselineRunId",
    "ci.provider",
    "ci.commit",
    "ci.branch",
    "ci.pullRequest",
    "ci.buildUrl",
    "ci.job",
    "startedAt",
    "finishedAt",
    "lastMetrics.timestamp",
    "lastMetrics.currentUsers",
    "lastMetrics.totalRequests",
    "lastMetrics.totalFailures",
    "lastMetrics.totalRPS",
    "lastMetrics.p95ResponseMs",
    "finalStats.totals.requests",
    "finalStats.totals.failures",
    "finalStats.totals.errorRate",
    "finalStats.totals.rps",
    "finalStats.totals.avgResponseMs",
    "finalStats.totals.p50ResponseMs",
    "finalStats.totals.p95ResponseMs",
    "finalStats.totals.p99ResponseMs",
    "finalStats.totals.maxResponseMs",
    "metadata",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
)

PERCENTILE_NOTE = (
    "RPS and failures/s are deltas between real changes of Locust's counters; p50/p95 are "
    "Locust's rolling ~10 s window; p99, min and max are cumulative since the run started."
)


def verdict_cell(data: dict[str, Any]) -> str:
    """`failed (p95<500ms, +1)`: the verdict and what decided it, in one cell."""
    from loadmgr.models.verdicts import explain

    return explain(data)[0]


def verdict_view(data: dict[str, Any]) -> RenderableType:
    """The verdict's reasons, one a line, as every view words them."""
    from rich.table import Table
    from rich.text import Text

    from loadmgr.models.verdicts import explain

    table = Table(title="verdict", box=None, show_header=False, title_justify="left")
    table.add_column()
    for line in explain(data)[1]:
        table.add_row(Text(sanitize(line, in_cell=True)))
    return table


def run_exit_code(run: LoadTestRun, interrupted: bool = False) -> int:
    """The exit code of a run that ended, from its stored verdict (docs/design.md, "Exit codes").

    passed or null 0, failed 1, aborted 7, inconclusive 8, error 6 (3 when MongoDB failed
    it); 130 when this process was interrupted (Ctrl-C, SIGTERM) and stopped the run
    itself. A `Failed` run recorded without a verdict (by an older loadmgr) is an error
    too: it never exits 0.
    """
    from loadmgr.models import RunStatus, Verdict
    from loadmgr.models.verdicts import error_source

    if interrupted:
        return ExitCode.INTERRUPTED
    if run.verdict == Verdict.ERROR or (
        run.status == RunStatus.FAILED and run.verdict != Verdict.ABORTED
    ):
        if error_source(run.verdictReasons) == "database":
            return ExitCode.DATABASE
        return ExitCode.CLUSTER
    if run.verdict == Verdict.ABORTED:
        return ExitCode.ABORTED
    if run.verdict == Verdict.INCONCLUSIVE:
        return ExitCode.INCONCLUSIVE
    if run.verdict == Verdict.FAILED:
        return ExitCode.THRESHOLD_FAILED
    return ExitCode.OK


def _server_summary(stats: Any) -> dict[str, str]:
    """`server NAME`: its mean, min, max, p95 and last over the run (issue 23), or why
    it is missing; nothing for a run without server metrics."""
    from loadmgr.models.formatting import format_number

    if not isinstance(stats, dict):
        return {}
    lines: dict[str, str] = {}
    for name, item in stats.items():
        if not isinstance(item, dict):
            continue
        unit = f" {item['unit']}" if item.get("unit") else ""
        if item.get("avg") is None:
            lines[f"server {name}"] = f"not read: {item.get('reason') or 'no value'}"
            continue
        text = ", ".join(
            f"{key} {format_number(item.get(key))}" for key in ("avg", "min", "max", "p95", "last")
        )
        missing = (
            f"; {item['missing']} missing ({item.get('reason')})" if item.get("missing") else ""
        )
        lines[f"server {name}"] = f"{text}{unit}{missing}"
    return lines


def run_view(data: dict[str, Any]) -> RenderableType:
    """A run for people: its load, its life, its numbers, its verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from loadmgr.cli.output import audit_line, key_value_view
    from loadmgr.models.formatting import ci_words, format_rps
    from loadmgr.models.formatting import format_count as fmt_count
    from loadmgr.models.formatting import format_ms as fmt_ms
    from loadmgr.models.formatting import format_percent as fmt_pct
    from loadmgr.models.shapes import describe_shape
    from loadmgr.models.stats.generator import stats_words

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
        "verdict": verdict_cell(data),
        "stop reason": data.get("stopReason") or "-",
        _error_label(data): data.get("error") or "-",
        "cluster": data.get("locustClusterId"),
        "target": data.get("targetUrl"),
        "ci": ci_words(data.get("ci")) or "-",
        **_server_summary(data.get("serverStats")),
        "generator": stats_words(data.get("generatorStats")) or "-",
        "load": f"{data.get('targetUsers')} users at {data.get('spawnRate')}/s "
        f"for {data.get('durationSeconds')}s",
        "started": data.get("startedAt") or "-",
        "finished": data.get("finishedAt") or "-",
        "created": audit_line(data, "created"),
    }
    shape = describe_shape(data.get("shape"))
    if shape:
        # The shape drove the load: the swarm's users and spawn rate were not what ran.
        reached = last.get("maxUsers")
        summary["load"] = (
            f"load shape {shape}"
            + (f", reached {reached} users" if isinstance(reached, int) else "")
            + f"; capped at {data.get('durationSeconds')}s"
        )
    steps = data.get("endSteps")
    if steps in ("pending", "running") and data.get("status") in ("Finished", "Failed"):
        # Its collector died between the end and what follows it (checks, webhooks, the
        # schedule's count): say so rather than show a verdict as if it were final.
        summary["after the end"] = (
            "NOT done: requested checks, schedule count and notifications "
            + (
                "(`loadmgr runs follow RUN` does them)"
                if steps == "pending"
                else "in progress, or their collector died while doing them"
            )
        )
    if data.get("locustfileOverride"):  # `runs start --locustfile`: not the test's copy
        sha = data.get("locustfileSha256") or ""
        summary["locustfile"] = f"{data['locustfileOverride']} (given once, sha256 {sha[:12]}…)"
    if totals:
        summary.update(
            {
                "requests": f"{fmt_count(totals.get('requests'))} "
                f"({fmt_count(totals.get('failures'))} failed, "
                f"{fmt_pct(totals.get('errorRate'))})",
                "rps": format_rps(totals.get("rps")),
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
                # A stored value may be of any type (another program's document): shown
                # as a count where it is one, as unknown otherwise.
                "requests": f"{fmt_count(last.get('totalRequests'))} "
                f"({fmt_count(last.get('totalFailures'))} failed) so far",
                "last interval": f"rps {format_rps(last.get('totalRPS'))}  "
                f"p95 {fmt_ms(last.get('p95ResponseMs'))}  users {last.get('currentUsers')}",
            }
        )
    parts: list[Any] = [
        key_value_view(summary, title=f"run {data.get('name')}"),
        verdict_view(data),
    ]
    results = data.get("thresholdResults") or []
    if results:
        parts.append(threshold_table(results))
    for title, lines in (
        ("events", event_lines(data.get("events"))),
        ("exceptions", exception_lines(data)),
        ("notifications", notification_lines(data.get("notifications"))),
    ):
        if lines:
            table = Table(title=title, box=None, show_header=False, title_justify="left")
            table.add_column()
            for line in lines:
                table.add_row(Text(sanitize(line, in_cell=True)))
            parts.append(table)
    return Group(*parts)


def threshold_table(results: list[dict[str, Any]]) -> RenderableType:
    """Each threshold with its limit and the actual value, both with their unit (`500ms`,
    `1%`, `100/s`, as the expression was written), and pass or FAIL."""
    from rich.table import Table
    from rich.text import Text

    from loadmgr.models.formatting import stored_threshold_limit, stored_threshold_value

    table = Table(title="thresholds", box=None, header_style="bold", title_justify="left")
    for header in ("THRESHOLD", "LIMIT", "ACTUAL", "RESULT"):
        table.add_column(header, justify="right" if header in ("LIMIT", "ACTUAL") else "left")
    for result in results:
        table.add_row(
            Text(sanitize(str(result.get("expression", "")), in_cell=True)),
            Text(sanitize(stored_threshold_limit(result), in_cell=True)),
            Text(sanitize(stored_threshold_value(result), in_cell=True)),
            Text("pass", style="green") if result.get("passed") else Text("FAIL", style="red"),
        )
    return table


# Events `runs show` prints: a run stored by another writer may hold thousands.
SHOWN_EVENTS = 50


def event_lines(events: Any) -> list[str]:
    """One line per change the run recorded while it ran (`events[]`: a worker lost, the
    master restarted): `2026-05-01 10:00:03 worker-lost: workers: 2 → 1`."""
    from datetime import datetime

    items = [i for i in events if isinstance(i, dict)] if isinstance(events, list) else []
    lines = []
    for item in items[:SHOWN_EVENTS]:
        at = item.get("at")
        when = at.strftime("%Y-%m-%d %H:%M:%S") if isinstance(at, datetime) else str(at or "?")
        lines.append(f"{when} {item.get('kind') or '?'}: {str(item.get('detail') or '')[:500]}")
    if len(items) > SHOWN_EVENTS:
        lines.append(f"… and {len(items) - SHOWN_EVENTS:,} more (-o json shows them all)")
    return lines


def exception_lines(data: dict[str, Any]) -> list[str]:
    """What the locustfile's users raised, the most frequent first, and the total:
    `ValueError at locustfile.py:12 in on_start: boom (×38)`."""
    from loadmgr.models.formatting import describe_exception, format_count

    items = [i for i in data.get("exceptions") or [] if isinstance(i, dict)]
    lines = [describe_exception(item) for item in items]
    total = data.get("exceptionCount")
    kept = sum(int(i.get("count") or 0) for i in items if isinstance(i.get("count"), int))
    if isinstance(total, int) and total > kept:
        lines.append(f"… {format_count(total - kept)} more, of other kinds")
    return lines


def notification_lines(outcomes: Any) -> list[str]:
    """One line per webhook delivery recorded at the run's end (never its URL: none is
    recorded): `team (failed): sent, HTTP 200, 1 attempt, 0.1 s`."""
    lines = []
    for item in outcomes if isinstance(outcomes, list) else []:
        if not isinstance(item, dict):
            continue
        attempts = item.get("attempts") or 0
        how = [f"HTTP {item['status']}"] if item.get("status") is not None else []
        how.append(f"{attempts} attempt{'s' if attempts != 1 else ''}")
        if isinstance(item.get("seconds"), int | float):
            how.append(f"{item['seconds']:.1f} s")
        state = "sent" if item.get("ok") else f"NOT sent: {item.get('error') or '?'}"
        events = ", ".join(str(e) for e in item.get("events") or [])
        lines.append(f"{item.get('name')} ({events}): {state} ({', '.join(how)})")
    return lines


def _error_label(data: dict[str, Any]) -> str:
    """`note` for what the stored `error` says of a run that did not fail (`stopped with
    'loadmgr runs stop'`): under `error` it read as something gone wrong."""
    failed = data.get("status") == "Failed" or data.get("verdict") == "error"
    return "note" if data.get("error") and not failed else "error"
