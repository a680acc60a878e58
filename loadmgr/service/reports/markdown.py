"""A run's summary for CI in Markdown (`runs start --summary`, `metrics report --format
markdown`, GitHub's job summary): the verdict and its reasons, the thresholds, the checks
against the baseline and the trend, sparklines of RPS and p95, the commit.

Whatever came from outside loadmgr (request names, expressions, messages, the branch) is
escaped as text: every ASCII punctuation character a Markdown renderer could read as markup
gets a backslash (a `|` cannot end a table cell, a backtick open code, a `<` start HTML,
`[` a link), and a newline or another control character becomes a blank, so a hostile
request name neither breaks a table nor injects HTML.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loadmgr.errors import ValidationFailed
from loadmgr.models import Regression
from loadmgr.models.axis import finite_values, sparkline
from loadmgr.models.formatting import (
    format_count,
    format_metric,
    format_ms,
    format_rps,
    threshold_limit,
    threshold_of,
    threshold_value,
)
from loadmgr.service.reports.run_html import ReportData, gather, verdict_lines

if TYPE_CHECKING:
    from loadmgr.store import Store

SPARK_WIDTH = 40  # columns of a sparkline: fits a job summary's width
REQUEST_ROWS = 15  # the busiest requests shown; the HTML report has them all
TEXT_MAX = 300  # a name or message shown in a cell, cut beyond (the HTML report has it whole)
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_BLANKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def text(value: Any) -> str:
    """`value` as Markdown text that renders as itself, on one line, in a table cell too."""
    shown = _BLANKS.sub(" ", "-" if value is None else str(value)).strip()
    if len(shown) > TEXT_MAX:
        shown = shown[: TEXT_MAX - 1] + "…"
    return _PUNCTUATION.sub(r"\\\1", shown)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 1) -> list[str]:
    align = ["---:" if i >= numeric_from else "---" for i in range(len(head))]
    return [_row(head), _row(align), *(_row(row) for row in rows), ""]


def _link(label: str, url: str) -> str:
    # The URL was cleaned when stored (http(s), no credentials, no control character);
    # percent-encoded here so that no character of it can end the link.
    return f"[{text(label)}]({quote(url, safe=':/?&=#%;,+@!$*~.-_')})"


def _commit_line(ci: dict[str, str] | None) -> str:
    if not ci or not (ci.get("commit") or ci.get("branch")):
        return "Commit: unknown (no CI context, no git repository beside the locustfile)."
    from loadmgr.models.formatting import ci_parts

    line = "Measured " + ", ".join(ci_parts(ci, text))
    if ci.get("provider"):
        line += f" ({text(ci['provider'])}"
        line += f", {_link('build', ci['buildUrl'])})" if ci.get("buildUrl") else ")"
    return line + "."


def _thresholds(data: ReportData) -> list[str]:
    if not data.run.thresholdResults:
        return ["No thresholds were set for this run.", ""]
    rows = []
    for r in data.run.thresholdResults:
        threshold = threshold_of(r.expression, r.metric, r.op, r.limit, r.scope)
        rows.append(
            [
                text(r.expression),
                text(threshold_limit(threshold)),
                text(threshold_value(threshold, r.actual)),
                "pass" if r.passed else "**FAIL**",
            ]
        )
    return _table(["Threshold", "Limit", "Actual", "Result"], rows)


def _change(check: Regression) -> str:
    worse = check.worse_by
    if worse is None:
        return "-"
    return "+∞" if math.isinf(worse) else text(f"{worse:+.1%}")


def _checks(checks: list[Regression], reference: str, judged: bool = True) -> list[str]:
    rows = []
    for check in checks:
        result = "**worse**" if check.regressed else ("ok" if judged else "not judged")
        rows.append(
            [
                text(check.metric),
                text(format_metric(check.metric, check.baseline)),
                text(format_metric(check.metric, check.actual)),
                _change(check),
                text(f"{check.allowed:.1%}") if judged else "-",
                result,
            ]
        )
    return _table(["Metric", reference, "This run", "Worse by", "Allowed", "Result"], rows)


def _baseline(data: ReportData) -> list[str]:
    if not data.baseline_id:
        return ["The test has no baseline to compare with.", ""]
    lines = [f"Baseline run {text(data.baseline_id)}.", ""]
    if data.baseline_note:
        lines += [text(data.baseline_note), ""]
    return (
        lines
        + _checks(data.checks, "Baseline")
        + (
            _checks(data.others, "Baseline", judged=False)
            if data.others and not data.checks
            else []
        )
    )


def _trend(data: ReportData) -> list[str]:
    lines: list[str] = []
    stored = data.run.trendChecks or []
    if stored:
        branch = next((c.get("againstBranch") for c in stored if c.get("againstBranch")), None)
        where = f"the current regime of branch {text(branch)}" if branch else "its recent runs"
        checks = [c for c in (Regression.from_document(doc, "its trend") for doc in stored) if c]
        lines += [f"Judged against {where}.", "", *_checks(checks, "Regime mean")]
    trend = data.trend
    if trend is not None and trend.change_points:
        lines.append("Change points in the test's recent runs:")
        lines.append("")
        for change in trend.change_points:
            run = trend.runs[change.index]
            lines.append(
                f"- {text(change.metric)}: {text(format_metric(change.metric, change.before))} → "
                f"{text(format_metric(change.metric, change.after))} from run "
                f"{text(run.name or run.id)}{' (a regression)' if change.regression else ''}"
            )
        lines.append("")
    return lines or ["Not judged against a trend; no change point in the recent runs.", ""]


def _sparklines(data: ReportData) -> list[str]:
    rows = []
    for title, key, shown in (("RPS", "totalRPS", format_rps), ("p95", "p95ResponseMs", format_ms)):
        values = [row.get(key) for row in data.series]
        numbers = [
            v if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values
        ]
        known = finite_values(numbers)
        if not known:
            continue
        rows.append(
            [
                title,
                sparkline(numbers, SPARK_WIDTH),
                text(shown(min(known))),
                text(shown(max(known))),
            ]
        )
    if not rows:
        return ["No intervals recorded.", ""]
    return _table(["Metric", "Over the run", "Min", "Max"], rows, numeric_from=2)


def _requests(data: ReportData) -> list[str]:
    busiest = sorted(data.requests, key=lambda r: -(r.get("numRequests") or 0))[:REQUEST_ROWS]
    if not busiest:
        return []
    rows = [
        [
            text(f"{r.get('method', '')} {r.get('name', '')}".strip()),
            text(format_count(r.get("numRequests"))),
            text(format_count(r.get("numFailures"))),
            text(format_ms(r.get("p95ResponseMs"))),
            text(format_rps(r.get("requestsPerSec"))),
        ]
        for r in busiest
    ]
    more = len(data.requests) - len(busiest)
    note = [f"… and {more} more (see the HTML report).", ""] if more > 0 else []
    return [
        "### Requests",
        "",
        *_table(["Request", "Requests", "Failures", "p95", "RPS"], rows),
        *note,
    ]


def render_markdown(data: ReportData) -> str:
    """The summary of the run `data` holds, as Markdown."""
    run = data.run
    verdict = run.verdict.value.upper() if run.verdict else "NONE"
    reasons = verdict_lines(run)
    lines = [
        f"## loadmgr: {text(run.name)}: **{verdict}**",
        "",
        f"Test {text(data.test_name or run.loadTestId)}, run {text(run.id)}, "
        f"{text(run.status.value)}. {_commit_line(run.ci)}",
        "",
        *(f"- {text(reason)}" for reason in reasons),
        "",
        "### Thresholds",
        "",
        *_thresholds(data),
        "### Against the baseline",
        "",
        *_baseline(data),
        "### Against the trend",
        "",
        *_trend(data),
        "### Over time",
        "",
        *_sparklines(data),
        *_requests(data),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def markdown_format(value: str) -> bool:
    """`metrics report --format`: True for markdown; ValidationFailed (exit 2) otherwise."""
    if value.strip().lower() != "markdown":
        raise ValidationFailed(f"invalid --format {value!r} (one of markdown)")
    return True


def run_summary(store: Store, run_id: str) -> str:
    """`runs start --summary`, `metrics report --format markdown`: the run's summary."""
    return render_markdown(gather(store, run_id))
