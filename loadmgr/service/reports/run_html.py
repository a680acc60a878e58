"""The report of one run for people: one self-contained HTML page (JUnit: `junit.py`).

The HTML has inline CSS and inline SVG and nothing else: no script, no remote resource
(its Content-Security-Policy forbids them), so it opens the same offline, from a CI
artifact store or a mail attachment. Every value from the database is escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loadmgr.models import LoadTestRun, Regression, format_duration
from loadmgr.models.formatting import (
    format_count,
    format_metric,
    format_ms,
    format_percent,
    format_rps,
    threshold_limit,
    threshold_of,
    threshold_value,
)
from loadmgr.models.shapes import describe_shape
from loadmgr.models.stats.catalog import SUMMARY_LATENCIES
from loadmgr.models.stats.stored import server_metrics_of
from loadmgr.models.verdicts import verdict_summary
from loadmgr.service.analysis import views as metrics
from loadmgr.service.analysis.compare import (
    REGRESSION_METRICS,
    baseline_floors,
    compare_with_baseline,
)
from loadmgr.service.analysis.trends import Trend, report_trend
from loadmgr.service.reports.charts import (
    WORKER_CPU,
    ReportCharts,
    gather_charts,
    latency_html,
    over_time_html,
)
from loadmgr.service.reports.html import escaped as _e
from loadmgr.service.reports.html import footer, page_head, table
from loadmgr.service.reports.trend_html import report_section

if TYPE_CHECKING:
    from loadmgr.store import Store

CHART_POINTS = 300  # enough for a 760-px chart; the database merges the rest


@dataclass
class ReportData:
    """Everything a report shows, gathered once."""

    run: LoadTestRun
    test_name: str | None
    summary: dict[str, Any]
    series: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    baseline_id: str | None = None
    baseline_note: str | None = None
    # The checks that judge the run against its baseline: those the run stored (with the
    # limits it used), or this report's --max-regression; `judged_by` says which.
    checks: list[Regression] = field(default_factory=list)
    judged_by: str | None = None  # "run" | "report" | None
    # The other metrics against the same baseline, for people: shown, never judged.
    others: list[Regression] = field(default_factory=list)
    # Time axis, thresholds, scatter and heatmap of the charts.
    charts: ReportCharts = field(default_factory=ReportCharts)
    # The test's recent runs up to this one, with their change points (trends.py).
    trend: Trend | None = None


def gather(
    store: Store,
    run_id: str,
    *,
    max_regression: dict[str, float] | None = None,
) -> ReportData:
    """Read the run, its downsampled series and, if it has one, its baseline comparison.

    The baseline is the run the run was compared with when it has stored checks, else
    its test's current baseline.
    """
    run = metrics.find_run(store, run_id)
    test = store.tests.find_by_id(run.loadTestId)
    summary = metrics.summary(store, run)
    series = metrics.timeseries(store, run.id, CHART_POINTS, extra=WORKER_CPU)
    data = ReportData(
        run=run,
        test_name=test.name if test else None,
        summary=summary,
        series=list(series.rows),
        requests=metrics.request_rows(store, run),
        errors=metrics.error_rows(run),
    )
    first = data.series[0].get("timestamp") if data.series else None
    # The series' one read of the run's intervals serves the CPU chart too: its last
    # interval, and, when the database merged them, each row's CPU.
    merged = data.series if series.step > 1 else None
    data.charts = gather_charts(store, run, first, series.last_seq, merged)
    data.trend = report_trend(store, run)
    given = max_regression or {}
    stored = [
        check
        for check in (Regression.from_document(doc) for doc in run.baselineChecks or [])
        if check is not None
    ]
    base_id = run.baselineRunId or (test.baselineRunId if test is not None else None)
    if given or not stored:
        if not base_id or base_id == run.id or not run.finalStats:
            return data
    data.baseline_id = base_id
    if given:
        data.judged_by = "report"
    elif stored:
        data.checks, data.judged_by = stored, "run"
    base = store.runs.find_by_id(base_id) if base_id else None
    if base is None or not run.finalStats:
        # The stored checks still say how the run was judged; only the rest is missing.
        data.baseline_note = (
            f"the baseline run {base_id} no longer exists"
            if base_id
            else "the run compared with is not recorded"
        )
        return data
    if given:
        data.checks = compare_with_baseline(
            store, base, run, given, baseline_floors(test, run)
        )
    judged = {check.metric for check in data.checks}
    # Shown for people, judged by nobody: an allowance of inf never regresses.
    shown = [*REGRESSION_METRICS, *server_metrics_of(run.serverStats)]
    unjudged = {metric: math.inf for metric in shown if metric not in judged}
    data.others = compare_with_baseline(store, base, run, unjudged)
    return data


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2937;
margin:0;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#e5e7eb;padding-bottom:4px}.sub{color:#6b7280;margin:0}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.passed{background:#16a34a}.failed{background:#dc2626}.aborted{background:#d97706}
.inconclusive{background:#0891b2}
.error{background:#7c3aed}.none{background:#6b7280}.muted{color:#6b7280}
.inconclusive{background:#ca8a04}.doubt{color:#ca8a04;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0}.card{border:1px solid #e5e7eb;
border-radius:8px;padding:8px 14px;min-width:120px}.card dt{color:#6b7280;font-size:12px}
.card dd{margin:0;font-size:18px;font-weight:600}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f3f4f6}
td.n,th.n{text-align:right}.ok{color:#16a34a;font-weight:600}.bad{color:#dc2626;font-weight:600}
.chart{display:block;margin:8px 0;width:100%;height:auto}
.chart .grid{stroke:#e5e7eb;stroke-width:1}.chart .tick{fill:#6b7280;font-size:11px}
.chart .chart-title{font-weight:600;font-size:13px;fill:#374151}
.chart .empty{fill:#9ca3af}
.chart .threshold line{stroke:#dc2626;stroke-width:1.5;stroke-dasharray:6 4}
.chart .threshold text,.chart .off-scale{fill:#dc2626;font-size:11px}.chart .cell{fill:#7c3aed}
footer{margin-top:32px;color:#9ca3af;font-size:12px}
"""


def _summary_html(data: ReportData) -> str:
    s = data.summary
    cards = [
        ("Requests", format_count(s.get("requests"))),
        ("Failures", f"{format_count(s.get('failures'))} ({format_percent(s.get('errorRate'))})"),
        ("RPS mean / max", f"{format_rps(s.get('rpsMean'))} / {format_rps(s.get('rpsMax'))}"),
        (
            "Users target / peak",
            f"{format_count(s.get('targetUsers'))} / {format_count(s.get('maxUsers'))}",
        ),
        ("Duration", format_duration(s.get("durationSec"))),
    ]
    cards += [(f"Latency {m.name}", format_ms(s.get(m.total_key))) for m in SUMMARY_LATENCIES]
    items = "".join(f'<div class="card"><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>' for k, v in cards)
    run = data.run
    facts: list[list[Any]] = [
        ["Run", f"{run.name} ({run.id})"],
        ["Test", f"{data.test_name or '?'} ({run.loadTestId})"],
        ["Status", run.status.value + (f" ({run.stopReason.value})" if run.stopReason else "")],
        ["Target", run.targetUrl],
        ["Cluster", run.locustClusterId],
        ["Load", _load_text(run)],
        ["Started", s.get("startedAt")],
        ["Finished", s.get("finishedAt")],
        ["Intervals", s.get("intervals") or "as collected"],
    ]
    if run.error:
        facts.append(["Error", run.error])
    return f'<dl class="cards">{items}</dl>' + table(["", ""], facts)


def _load_text(run: LoadTestRun) -> str:
    """The swarm the run asked for, or the load shape that drove it (its users its own)."""
    shape = describe_shape(run.shape)
    if shape:
        return f"load shape {shape}, capped at {run.durationSeconds} s"
    return f"{run.targetUsers} users at {run.spawnRate:g}/s for {run.durationSeconds} s"


def _exceptions_html(run: LoadTestRun) -> str:
    """What the locustfile's users raised: the most frequent first, where, how often."""
    if not run.exceptionCount:
        return "<p>No exception raised by the locustfile's users.</p>"
    rows = [
        [item.get("type") or "?", item.get("where") or "?", item.get("message") or "",
         item.get("nodes") or "", format_count(item.get("count"))]
        for item in run.exceptions
    ]
    head = f"<p>{_e(format_count(run.exceptionCount))} in all.</p>"
    return head + table(["Type", "Where", "Message", "Nodes", "Count"], rows, numeric_from=4)


def verdict_lines(run: LoadTestRun) -> list[str]:
    """Why the run got its verdict, a sentence a line (every report says it the same way)."""
    return verdict_summary(
        run.verdict,
        run.verdictReasons,
        thresholds=len(run.thresholdResults),
        baseline=len(run.baselineChecks or []),
        trend=len(run.trendChecks or []),
        finished=not run.status.is_active,
    )


def _verdict_html(run: LoadTestRun) -> str:
    lines = verdict_lines(run)
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return f"<p>{_badge(run)}</p><ul>{items}</ul>"


def _badge(run: LoadTestRun) -> str:
    verdict = run.verdict.value if run.verdict else "none"
    return f'<span class="badge {_e(verdict)}">{_e(verdict.upper())}</span>'


def _thresholds_html(run: LoadTestRun) -> str:
    if not run.thresholdResults:
        return "<p>No thresholds were set for this run.</p>"
    rows = ""
    for r in run.thresholdResults:
        threshold = threshold_of(r.expression, r.metric, r.op, r.limit, r.scope)
        rows += (
            f'<tr><td>{_e(r.expression)}</td><td class="n">{_e(threshold_limit(threshold))}</td>'
            f'<td class="n">{_e(threshold_value(threshold, r.actual))}</td>'
            f'<td class="{"ok" if r.passed else "bad"}">{"pass" if r.passed else "FAIL"}</td></tr>'
        )
    return (
        '<table><thead><tr><th>Threshold</th><th class="n">Limit</th><th class="n">Actual</th>'
        "<th>Result</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _change(check: Regression) -> str:
    worse = check.worse_by
    if worse is None:
        return "-"
    return "+∞" if worse == math.inf else f"{worse:+.1%}"


def _baseline_html(data: ReportData) -> str:
    if not data.baseline_id:
        return "<p>The test has no baseline to compare with.</p>"
    if data.judged_by == "run":
        how = "Judged with the limits this run was started with (--max-regression)."
    elif data.judged_by == "report":
        how = "Judged with the limits given to this report (--max-regression)."
    else:
        how = "This run was not judged against the baseline: the changes are for information."
    note = f"<p>{_e(data.baseline_note)}</p>" if data.baseline_note else ""
    rows = ""
    for check in data.checks:
        if check.regressed:
            result = '<td class="bad">worse</td>'
        elif check.inconclusive:
            result = '<td class="doubt">not significant</td>'
        else:
            result = '<td class="ok">ok</td>'
        rows += _baseline_row(check, f"{check.allowed:.1%}", result)
    for check in data.others:
        rows += _baseline_row(check, "-", '<td class="muted">not judged</td>')
    table = (
        '<table><thead><tr><th>Metric</th><th class="n">Baseline</th><th class="n">'
        'This run</th><th class="n">Worse by</th><th class="n">Allowed</th>'
        '<th class="n">p-value</th><th class="n">Detectable</th><th>Result</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    return (
        f"<p>Baseline run {_e(data.baseline_id)}; change is how much worse (negative: better). "
        f"{_e(how)}</p>{note}{table}"
    )


def _baseline_row(check: Regression, allowed: str, result: str) -> str:
    return (
        f"<tr><td>{_e(check.metric)}</td>"
        f'<td class="n">{_e(format_metric(check.metric, check.baseline))}</td>'
        f'<td class="n">{_e(format_metric(check.metric, check.actual))}</td>'
        f'<td class="n">{_e(_change(check))}</td><td class="n">{_e(allowed)}</td>'
        f'<td class="n">{_e(_tested(check))}</td>'
        f'<td class="n">{_e(_percent(check.detectable))}</td>{result}</tr>'
    )


def _tested(check: Regression) -> str:
    """`0.003 (significant)`, `0.31`, or why there was no test (`too few intervals`)."""
    if check.p_value is not None:
        return f"{check.p_value:.2g}" + (" (significant)" if check.significant else "")
    return "too few intervals" if check.note and "too few" in check.note else "-"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document."""
    run = data.run
    badge = _badge(run)
    charts = over_time_html(data.series, data.charts)
    request_rows = [
        [
            r.get("method", ""),
            r.get("name", ""),
            format_count(r.get("numRequests")),
            format_count(r.get("numFailures")),
            format_ms(r.get("avgResponseTimeMs")),
            format_ms(r.get("minResponseTimeMs")),
            format_ms(r.get("maxResponseTimeMs")),
            format_ms(r.get("p50ResponseMs")),
            format_ms(r.get("p95ResponseMs")),
            format_ms(r.get("p99ResponseMs")),
            format_rps(r.get("requestsPerSec")),
        ]
        for r in data.requests
    ]
    requests = (
        table(
            [
                "Method",
                "Name",
                "Requests",
                "Failures",
                "Mean",
                "Min",
                "Max",
                "p50",
                "p95",
                "p99",
                "RPS",
            ],
            request_rows,
            numeric_from=2,
        )
        if request_rows
        else "<p>No requests recorded.</p>"
    )
    errors = (
        table(
            ["Method", "Name", "Error", "Count"],
            [
                [e["method"], e["name"], e["error"], format_count(e["occurrences"])]
                for e in data.errors
            ],
            numeric_from=3,
        )
        if data.errors
        else "<p>No failures recorded.</p>"
    )
    return f"""{page_head(f"loadmgr report: {run.name}", _CSS)}
<body>
<header><h1>{_e(run.name)} {badge}</h1>
<p class="sub">Test {_e(data.test_name or run.loadTestId)} · run {_e(run.id)}</p></header>
<section id="verdict"><h2>Verdict</h2>{_verdict_html(run)}</section>
<section id="summary"><h2>Summary</h2>{_summary_html(data)}</section>
<section id="thresholds"><h2>Thresholds</h2>{_thresholds_html(run)}</section>
<section id="baseline"><h2>Against the baseline</h2>{_baseline_html(data)}</section>
<section id="charts"><h2>Over time</h2>
{charts}
<p class="sub">RPS and error rate are per interval; p95 is the interval's own with the loadmgr
plugin, else Locust's rolling ~10 s window (the worst of each point's merged intervals); users
is the highest count in each point. Server metrics (read from Prometheus) are each interval's
value over the same window; a gap is an interval that could not be read. The load generator's
chart is its busiest worker's CPU as Locust measures it (every 10 s), the dashed line the level
it counts as saturated at. Dashed lines are the run's thresholds.</p></section>
<section id="latency"><h2>Latency per request</h2>
{latency_html(data.charts)}</section>
<section id="trend"><h2>Recent trend</h2>{report_section(data.trend)}</section>
<section id="requests"><h2>Per request</h2>{requests}</section>
<section id="errors"><h2>Failures</h2>{errors}</section>
<section id="exceptions"><h2>Exceptions</h2>{_exceptions_html(run)}</section>
{footer()}
</body>
</html>
"""
