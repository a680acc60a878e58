"""Showing a run as it goes: a Rich live view on a terminal, one plain line otherwise."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer

from loadmgr.cli.output import sanitize
from loadmgr.models.documents import utcnow
from loadmgr.models.formatting import format_count as fmt_count
from loadmgr.models.formatting import format_ms as fmt_ms
from loadmgr.models.formatting import format_percent as fmt_pct
from loadmgr.models.formatting import format_rps, format_timestamp
from loadmgr.models.stats.generator import interval_words

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import RenderableType
    from rich.live import Live

    from loadmgr.models import LoadTestRun, MetricSnapshot
    from loadmgr.service.judging.abort_judge import ThresholdState


def run_elapsed(run: LoadTestRun, at: datetime | None, fallback: float) -> float:
    """Seconds of the run gone at `at`, from its `startedAt` (both on the database server's
    clock), within 0 and its duration: a follower that joins late reads what the collector
    reads. `fallback` (seconds since this process saw it start) while it has no startedAt."""
    seconds = fallback
    if run.startedAt is not None and at is not None:
        seconds = (at - run.startedAt).total_seconds()
    return min(max(seconds, 0.0), float(run.durationSeconds))


def interval_line(
    run: LoadTestRun,
    snapshot: MetricSnapshot,
    elapsed: float,
    states: Sequence[ThresholdState] = (),
) -> str:
    """One interval in one line, for cron logs and pipes; thresholds' states at the end."""
    workers = "" if snapshot.workerCount is None else f" workers={snapshot.workerCount}"
    if snapshot.generator and snapshot.generator.get("cpuMaxPct") is not None:
        workers += f" worker_cpu={snapshot.generator['cpuMaxPct']:.0f}%"
    judged = f" thresholds: {'; '.join(s.text() for s in states)}" if states else ""
    raised = f" exceptions={run.exceptionCount}" if run.exceptionCount else ""
    elapsed = min(max(elapsed, 0.0), float(run.durationSeconds))
    return (
        f"{format_timestamp(snapshot.timestamp)} run {run.id[:8]} "
        f"{elapsed:.0f}/{run.durationSeconds}s state={snapshot.state} "
        f"users={snapshot.currentUsers}{workers} rps={format_rps(snapshot.totalRPS)} "
        f"p50={fmt_ms(snapshot.p50ResponseMs)} p95={fmt_ms(snapshot.p95ResponseMs)} "
        f"fails={format_rps(snapshot.failuresPerSec)} errors={fmt_pct(snapshot.errorRate)} "
        f"requests={snapshot.totalRequests} failures={snapshot.totalFailures}{raised}{judged}"
    )


def verdict_lines(run: LoadTestRun) -> list[str]:
    """How a run ended and why, as every view says it: `run … Finished (duration): failed`."""
    from loadmgr.models.verdicts import explain

    label, why = explain(run.model_dump())
    reason = f" ({run.stopReason.value})" if run.stopReason else ""
    head = f"run {run.id} {run.status.value}{reason}: verdict {label}"
    if run.error and not run.verdictReasons:
        head += f"; {run.error}"
    return [head, *(f"  why: {line}" for line in why)]


class PlainObserver:
    """One line per event on stderr: what a cron log should read like."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._start = time.monotonic()
        self._states: list[ThresholdState] = []
        # The database server's clock (`Store.server_now`), the one `startedAt` is on; its
        # offset from ours is read on the main thread, so a redraw never waits on MongoDB.
        self._now = now
        self._offset: timedelta | None = None

    def _sync_clock(self) -> None:
        if self._now is not None:
            self._offset = self._now() - utcnow()

    def elapsed(self, run: LoadTestRun, at: datetime | None = None) -> float:
        """How far into its duration the run is, at `at` (default: now)."""
        if at is None and self._offset is not None:
            at = utcnow() + self._offset
        return run_elapsed(run, at, time.monotonic() - self._start)

    def close(self) -> None:
        """Stop showing (Ctrl-C while watching): nothing to undo for plain lines."""

    def thresholds(self, states: Sequence[ThresholdState]) -> None:
        """Each threshold's state now (an AbortJudge's); shown with the next interval."""
        self._states = list(states)

    def message(self, text: str) -> None:
        typer.echo(sanitize(text), err=True)

    def started(self, run: LoadTestRun) -> None:
        self._start = time.monotonic()
        self._sync_clock()
        typer.echo(
            sanitize(
                f"run {run.id} started: {run.targetUsers} users on {run.locustClusterId} "
                f"against {run.targetUrl} for {run.durationSeconds}s"
            ),
            err=True,
        )

    def interval(self, run: LoadTestRun, snapshot: MetricSnapshot) -> None:
        # `state` comes from Locust: sanitized like any data before it reaches a terminal.
        # The interval's own end, not the moment it is shown: a follower that catches up
        # on several intervals at once prints each at its place in the run.
        line = interval_line(run, snapshot, self.elapsed(run, snapshot.timestamp), self._states)
        typer.echo(sanitize(line), err=True)

    def finished(self, run: LoadTestRun) -> None:
        totals = (run.finalStats or {}).get("totals") or {}
        if totals.get("requests") and totals.get("failures") == totals.get("requests"):
            typer.echo("warning: every request failed; is the target up?", err=True)
        for line in verdict_lines(run):
            typer.echo(sanitize(line), err=True)


class LiveObserver(PlainObserver):
    """A live panel on the terminal: progress, users, RPS, p95, failures, per request."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(now)
        self._live: Live | None = None
        self._run: LoadTestRun | None = None
        self._snapshot: MetricSnapshot | None = None
        self._messages: list[str] = []

    def message(self, text: str) -> None:
        if self._live is None:
            super().message(text)
        else:
            self._messages = [*self._messages[-2:], sanitize(text)]
            self._refresh()

    def started(self, run: LoadTestRun) -> None:
        from rich.console import Console
        from rich.live import Live

        self._start = time.monotonic()
        self._sync_clock()
        self._run = run
        # Rendered afresh at each refresh, so the elapsed time moves between intervals.
        self._live = Live(
            console=Console(stderr=True),
            get_renderable=self._render,
            refresh_per_second=2,
            transient=False,
        )
        self._live.start()

    def interval(self, run: LoadTestRun, snapshot: MetricSnapshot) -> None:
        self._sync_clock()
        self._run, self._snapshot = run, snapshot
        self._refresh()

    def thresholds(self, states: Sequence[ThresholdState]) -> None:
        super().thresholds(states)
        self._refresh()

    def finished(self, run: LoadTestRun) -> None:
        self._run = run
        if self._live is not None:
            self._refresh()
        self.close()
        super().finished(run)

    def close(self) -> None:
        """Stop the live view where it stands (its last state stays on the screen, the
        cursor is shown again); later output goes below it."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def _render(self) -> RenderableType:
        from rich.columns import Columns
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        run, snap = self._run, self._snapshot
        if run is None:
            return Text("")
        elapsed = self.elapsed(run)
        bar = ProgressBar(total=float(run.durationSeconds), completed=elapsed, width=40)
        head = Table.grid(padding=(0, 2))
        head.add_row(bar, Text(f"{elapsed:.0f}s / {run.durationSeconds}s"))
        parts: list[Any] = [head]
        figures = live_figures(run, snap)
        if figures:
            # Each figure whole: on a narrow terminal the figures flow onto a second line,
            # never `workers` on one line and its number on the next.
            parts.append(Columns([Text(f) for f in figures], padding=(0, 2)))
        requests = _request_rows(run, snap)
        if requests:
            table = Table(box=None, header_style="bold", pad_edge=False)
            for header in ("request", "requests", "failures", "rps", "avg", "p95"):
                table.add_column(header, justify="left" if header == "request" else "right")
            top = sorted(requests, key=lambda r: -int(r.get("numRequests") or 0))[:10]
            for item in top:
                name = f"{item.get('method') or ''} {item.get('name') or ''}".strip()
                table.add_row(
                    Text(sanitize(name, in_cell=True)),
                    f"{int(item.get('numRequests') or 0):,}",
                    f"{int(item.get('numFailures') or 0):,}",
                    format_rps(item.get("requestsPerSec")),
                    fmt_ms(item.get("avgResponseTimeMs")),
                    fmt_ms(item.get("p95ResponseMs")),
                )
            parts.append(table)
        if self._states:
            # One line that wraps: a run may have many thresholds.
            judged = Text("thresholds  ")
            styles = {"ok": "green", "breached": "bold red"}
            for index, state in enumerate(self._states):
                if index:
                    judged.append("   ")
                judged.append(
                    sanitize(state.text(), in_cell=True), style=styles.get(state.state, "dim")
                )
            parts.append(judged)
        parts.extend(Text(m, style="yellow") for m in self._messages)
        title = Text(sanitize(f"run {run.id[:8]} · {run.name} · {run.status.value}"))
        return Panel(
            Group(*parts), title=title, title_align="left", width=self._panel_width()
        )

    def _panel_width(self) -> int | None:
        """Two columns short of the terminal: the terminal echoes Ctrl-C as `^C` after the
        panel's last line; on a full-width line that wraps, the cursor lands a line lower
        than Rich knows, and each redraw leaves the panel's top line behind, stale."""
        console = self._live.console if self._live is not None else None
        return None if console is None else max(console.width - ECHO_ROOM, 20)


def _ended_totals(run: LoadTestRun) -> dict[str, Any] | None:
    """The stored run's totals once it ended: what `runs show` prints (its final stats)."""
    if run.status.is_active:
        return None
    totals = (run.finalStats or {}).get("totals")
    return totals if isinstance(totals, dict) and totals else None


def live_figures(run: LoadTestRun, snap: MetricSnapshot | None) -> list[str]:
    """The live view's figures. While the run goes: users, rps and p95 of the latest
    interval, requests and the failure share of the run so far (one pair, never an
    interval's share beside the run's count). Once it ended: the stored run's own numbers
    (its final stats), so the closing line reads as `runs show` does."""
    totals = _ended_totals(run)
    if snap is None and totals is None:
        return []
    # With a load shape, the swarm's user count is not the target: the shape's is.
    target = " (shape)" if run.shape else f"/{run.targetUsers}"
    users = f"users {snap.currentUsers}{target}" if snap is not None else None
    workers = None if snap is None or snap.workerCount is None else f"workers {snap.workerCount}"
    health = interval_words(snap.generator) if snap is not None else None
    if totals is not None:
        rps, p95 = totals.get("rps"), totals.get("p95ResponseMs")
        rate, requests = totals.get("errorRate"), totals.get("requests")
    else:
        assert snap is not None
        rps, p95, requests = snap.totalRPS, snap.p95ResponseMs, snap.totalRequests
        rate = snap.totalFailures / requests if requests else 0.0
    count = f"{requests:,}" if isinstance(requests, int) else fmt_count(requests)
    figures = [
        users,
        workers,
        f"generator {health}" if health else None,
        f"rps {format_rps(rps)}",
        f"p95 {fmt_ms(p95)}",
        f"failures {fmt_pct(rate)}",
        f"requests {count}",
        f"exceptions {run.exceptionCount:,}" if run.exceptionCount else None,
    ]
    return [f for f in figures if f is not None]


def _request_rows(run: LoadTestRun, snap: MetricSnapshot | None) -> list[dict[str, Any]]:
    """Per request: the stored run's final stats once it ended, else the latest interval's."""
    if _ended_totals(run) is not None:
        items = (run.finalStats or {}).get("requestStats") or []
        return [item for item in items if isinstance(item, dict)]
    if snap is None:
        return []
    return [item.model_dump() for item in snap.requestStats]


# Room left for the terminal's echo of Ctrl-C (`^C`) after the live panel.
ECHO_ROOM = 2


def make_observer(quiet: bool, now: Callable[[], datetime] | None = None) -> PlainObserver:
    """Live on a terminal, plain lines otherwise; `-q` keeps only the plain lines.

    `now`: the database server's clock, so that elapsed time is the collector's."""
    if sys.stderr.isatty() and not quiet:
        return LiveObserver(now)
    return PlainObserver(now)
