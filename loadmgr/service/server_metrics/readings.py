"""A run's server metrics read back for people and for tools: one row per interval and
metric (`metrics show --view server`), each on the run's own time axis.

The rows are long (interval × metric) so their columns are the same for every run, whatever
metrics it read; a value that could not be read has no number, only its reason (never a 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loadmgr.models.formatting import format_timestamp
from loadmgr.models.stats.catalog import SERVER_PREFIX
from loadmgr.service.analysis.latency import elapsed
from loadmgr.service.analysis.windows import run_origin

if TYPE_CHECKING:
    from loadmgr.models import LoadTestRun
    from loadmgr.store import Store

# `-o json/jsonl/csv` of `metrics show --view server` (docs/output.md).
SERVER_FIELDS = (
    "seq",
    "windowStart",
    "windowEnd",
    "elapsedSec",
    "metric",
    "unit",
    "value",
    "missing",
)


@dataclass
class ServerSeries:
    """One metric over the run: the end of each window (seconds since the run's start),
    its value or None, and why each missing one is missing."""

    metric: str  # `server.NAME`, as thresholds name it
    unit: str | None
    times: list[float] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)  # reason → intervals


def _iso(value: Any) -> str | None:
    return format_timestamp(value) if isinstance(value, datetime) else None


def metric_names(run: LoadTestRun, windows: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(name, unit) of each metric the run reads, then any other its intervals hold."""
    named = [(m.name, m.unit or None) for m in run.serverMetrics]
    known = {name for name, _ in named}
    extra: set[str] = set()
    for window in windows:
        for key in ("server", "serverMissing"):
            found = window.get(key)
            if isinstance(found, dict):
                extra.update(str(k) for k in found if str(k) not in known)
    return named + [(name, None) for name in sorted(extra)]


def server_rows(
    store: Store, run: LoadTestRun, origin: datetime | None = None
) -> list[dict[str, Any]]:
    """Every interval's value (or missing reason) of every server metric, in interval
    order, metrics in the run's order; `elapsedSec` from `origin` (default: the run's
    first second), so they share the time axis of the run's other charts."""
    windows = store.server_values.windows(run.id)
    origin = origin or run_origin(run)
    names = metric_names(run, windows)
    rows = []
    for window in windows:
        origin = origin or window.get("windowStart")
        found, marked = window.get("server"), window.get("serverMissing")
        values: dict[str, Any] = found if isinstance(found, dict) else {}
        missing: dict[str, Any] = marked if isinstance(marked, dict) else {}
        for name, unit in names:
            value = values.get(name)
            number = (
                float(value)
                if isinstance(value, int | float) and not isinstance(value, bool)
                else None
            )
            reason = None if number is not None else str(missing.get(name) or "not read")
            rows.append(
                {
                    "seq": window.get("seq"),
                    "windowStart": _iso(window.get("windowStart")),
                    "windowEnd": _iso(window.get("windowEnd")),
                    "elapsedSec": elapsed(window.get("windowEnd"), origin),
                    "metric": SERVER_PREFIX + name,
                    "unit": unit,
                    "value": number,
                    "missing": reason,
                }
            )
    return rows


def server_series(rows: list[dict[str, Any]]) -> list[ServerSeries]:
    """The rows as one series per metric (for charts on the run's time axis)."""
    series: dict[str, ServerSeries] = {}
    for row in rows:
        item = series.setdefault(row["metric"], ServerSeries(row["metric"], row["unit"]))
        item.times.append(row["elapsedSec"] if row["elapsedSec"] is not None else -1.0)
        item.values.append(row["value"])
        if row["missing"] is not None:
            item.reasons[row["missing"]] = item.reasons.get(row["missing"], 0) + 1
    return list(series.values())
