"""The report of one run for people: one self-contained HTML page (JUnit: `junit.py`).

The HTML has inline CSS and inline SVG and nothing else: no script, no remote resource
(its Content-Security-Policy forbids them), so it opens the same offline, from a CI
artifact store or a mail attachment. Every value from the database is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any

from loadmgr import __version__
from loadmgr.errors import LoadmgrError
from loadmgr.models import LoadTestRun
from loadmgr.service import metrics
from loadmgr.service.compare import (
    DEFAULT_TOLERANCE,
    REGRESSION_METRICS,
    Regression,
    baseline_checks,
)
from loadmgr.service.svg import line_chart

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
    checks: list[Regression] = field(default_factory=list)
    judged: set[str] = field(default_factory=set)  # metrics given with --max-regression


def gather(
    store: Store,
    run_id: str,
    *,
    max_regression: dict[str, float] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ReportData:
    """Read the run, its downsampled series and, if its test has one, its baseline."""
    run = metrics.find_run(store, run_id)
    test = store.tests.find_by_id(run.loadTestId)
    data = ReportData(
        run=run,
        test_name=test.name if test else None,
        summary=metrics.summary(store, run),
        series=list(metrics.timeseries(store, run.id, CHART_POINTS).rows),
        requests=metrics.request_rows(store, run),
        errors=metrics.error_rows(run),
    )
    given = max_regression or {}
    data.judged = set(given)
    if test is not None and test.baselineRunId and test.baselineRunId != run.id and run.finalStats:
        # People see every metric against the baseline; CI is judged on the ones asked for.
        allowed = {m: given.get(m, tolerance) for m in REGRESSION_METRICS}
        data.baseline_id = test.baselineRunId
        try:
            data.checks = baseline_checks(store, run, allowed)
        except LoadmgrError as exc:  # the baseline run was deleted: report the rest
            data.baseline_note = exc.message
    return data


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2937;
margin:0 auto;max-width:980px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#e5e7eb;padding-bottom:4px}.sub{color:#6b7280;margin:0}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.passed{background:#16a34a}.failed{background:#dc2626}.none{background:#6b7280}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0}.card{border:1px solid #e5e7eb;
border-radius:8px;padding:8px 14px;min-width:120px}.card dt{color:#6b7280;font-size:12px}
.card dd{margin:0;font-size:18px;font-weight:600}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f3f4f6}
td.n,th.n{text-align:right}.ok{color:#16a34a;font-weight:600}.bad{color:#dc2626;font-weight:600}
.chart{display:block;margin:8px 0;max-width:100%;height:auto}
.chart .grid{stroke:#e5e7eb;stroke-width:1}.chart .tick{fill:#6b7280;font-size:11px}
.chart .chart-title{font-weight:600;font-size:13px;fill:#374151}
.chart .empty{fill:#9ca3af}footer{margin-top:32px;color:#9ca3af;font-size:12px}
"""


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value), quote=True)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.0f} ms"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.2f}%"


def _num(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{float(value):,.{digits}f}"


def metric_text(metric: str, value: Any) -> str:
    if metric == "error_rate":
        return _pct(value)
    if metric == "rps":
        return _num(value, 1)
    return _ms(value)


def _table(headers: list[str], rows: list[list[Any]], numeric_from: int = 99) -> str:
    """Cells are escaped here; headers are ours."""
    head = "".join(
        f'<th class="n">{h}</th>' if i >= numeric_from else f"<th>{h}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _elapsed_points(series: list[dict[str, Any]], key: str) -> list[tuple[float, float | None]]:
    points: list[tuple[float, float | None]] = []
    start: datetime | None = None
    for row in series:
        stamp = row.get("timestamp")
        if not isinstance(stamp, str):
            continue
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        start = start or moment
        value = row.get(key)
        points.append(((moment - start).total_seconds(), None if value is None else float(value)))
    return points


def _summary_html(data: ReportData) -> str:
    s = data.summary
    cards = [
        ("Requests", _num(s.get("requests"))),
        ("Failures", f"{_num(s.get('failures'))} ({_pct(s.get('errorRate'))})"),
        ("RPS mean / max", f"{_num(s.get('rpsMean'), 1)} / {_num(s.get('rpsMax'), 1)}"),
        ("Users target / peak", f"{_num(s.get('targetUsers'))} / {_num(s.get('maxUsers'))}"),
        ("Duration", _num(s.get("durationSec")) + " s"),
    ]
    latency = [
        ("avg", "avgResponseMs"),
        ("p50", "p50ResponseMs"),
        ("p90", "p90ResponseMs"),
        ("p95", "p95ResponseMs"),
        ("p99", "p99ResponseMs"),
        ("max", "maxResponseMs"),
    ]
    cards += [(f"Latency {label}", _ms(s.get(key))) for label, key in latency]
    items = "".join(f'<div class="card"><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>' for k, v in cards)
    run = data.run
    facts: list[list[Any]] = [
        ["Run", f"{run.name} ({run.id})"],
        ["Test", f"{data.test_name or '?'} ({run.loadTestId})"],
        ["Status", run.status.value + (f" ({run.stopReason.value})" if run.stopReason else "")],
        ["Target", run.targetUrl],
        ["Cluster", run.locustClusterId],
        ["Load", f"{run.targetUsers} users at {run.spawnRate:g}/s for {run.durationSeconds} s"],
        ["Started", s.get("startedAt")],
        ["Finished", s.get("finishedAt")],
    ]
    if run.error:
        facts.append(["Error", run.error])
    return f'<dl class="cards">{items}</dl>' + _table(["", ""], facts)


def _thresholds_html(run: LoadTestRun) -> str:
    if not run.thresholdResults:
        return "<p>No thresholds were set for this run.</p>"
    rows = "".join(
        f'<tr><td>{_e(r.expression)}</td><td class="n">{_e(metric_text(r.metric, r.actual))}</td>'
        f'<td class="{"ok" if r.passed else "bad"}">{"pass" if r.passed else "FAIL"}</td></tr>'
        for r in run.thresholdResults
    )
    return (
        '<table><thead><tr><th>Threshold</th><th class="n">Actual</th><th>Result</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _baseline_html(data: ReportData) -> str:
    if not data.baseline_id:
        return "<p>The test has no baseline to compare with.</p>"
    if data.baseline_note:
        return f"<p>{_e(data.baseline_note)}</p>"
    rows = ""
    for check in data.checks:
        worse = check.worse_by
        change = "-" if worse is None else ("+∞" if worse == float("inf") else f"{worse:+.1%}")
        verdict = '<td class="bad">worse</td>' if check.regressed else '<td class="ok">ok</td>'
        rows += (
            f"<tr><td>{_e(check.metric)}</td>"
            f'<td class="n">{_e(metric_text(check.metric, check.baseline))}</td>'
            f'<td class="n">{_e(metric_text(check.metric, check.actual))}</td>'
            f'<td class="n">{_e(change)}</td><td class="n">{_e(f"{check.allowed:.1%}")}</td>'
            f"{verdict}</tr>"
        )
    return (
        f"<p>Baseline run {_e(data.baseline_id)}; change is how much worse (negative: better)."
        '</p><table><thead><tr><th>Metric</th><th class="n">Baseline</th><th class="n">'
        'This run</th><th class="n">Worse by</th><th class="n">Allowed</th><th>Result</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


# Charts over time: title, interval field, colour, CSS class.
_CHARTS = (
    ("Requests per second", "totalRPS", "#2563eb", "rps"),
    ("p95 latency (ms)", "p95ResponseMs", "#c026d3", "p95"),
    ("Users", "currentUsers", "#16a34a", "users"),
)


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document."""
    run = data.run
    verdict = run.verdict.value if run.verdict else "none"
    badge = f'<span class="badge {_e(verdict)}">{_e(verdict.upper())}</span>'
    charts = "\n".join(
        line_chart(
            title,
            _elapsed_points(data.series, field),
            fmt=lambda v: f"{v:,.0f}",
            color=color,
            css_class=f"chart {css}",
        )
        for title, field, color, css in _CHARTS
    )
    request_rows = [
        [
            r.get("method", ""),
            r.get("name", ""),
            _num(r.get("numRequests")),
            _num(r.get("numFailures")),
            _ms(r.get("avgResponseTimeMs")),
            _ms(r.get("minResponseTimeMs")),
            _ms(r.get("maxResponseTimeMs")),
            _ms(r.get("p50ResponseMs")),
            _ms(r.get("p95ResponseMs")),
            _ms(r.get("p99ResponseMs")),
            _num(r.get("requestsPerSec"), 1),
        ]
        for r in data.requests
    ]
    requests = (
        _table(
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
        _table(
            ["Method", "Name", "Error", "Count"],
            [[e["method"], e["name"], e["error"], _num(e["occurrences"])] for e in data.errors],
            numeric_from=3,
        )
        if data.errors
        else "<p>No failures recorded.</p>"
    )
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loadmgr report: {_e(run.name)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{_e(run.name)} {badge}</h1>
<p class="sub">Test {_e(data.test_name or run.loadTestId)} · run {_e(run.id)}</p></header>
<section id="summary"><h2>Summary</h2>{_summary_html(data)}</section>
<section id="thresholds"><h2>Thresholds</h2>{_thresholds_html(run)}</section>
<section id="baseline"><h2>Against the baseline</h2>{_baseline_html(data)}</section>
<section id="charts"><h2>Over time</h2>
{charts}
<p class="sub">RPS is per interval; p95 is Locust's rolling ~10 s window (the worst of each
point's merged intervals); users is the highest count in each point.</p></section>
<section id="requests"><h2>Per request</h2>{requests}</section>
<section id="errors"><h2>Failures</h2>{errors}</section>
<footer>Generated by loadmgr {_e(__version__)} on {_e(generated)}.</footer>
</body>
</html>
"""
