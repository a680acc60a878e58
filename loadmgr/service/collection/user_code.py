"""What the locustfile itself did to a run: a load shape drove it or ended it, its own code
stopped the test, its users raised exceptions.

- The shape: declared in the locustfile (`run.shape`, from its syntax tree), or told by
  Locust (`/swarm` answers "Swarming started using shape class 'X'"; the plugin says
  `shape`). With one, Locust ignores the swarm's users, spawn rate and run time.
- Who stopped the test, when Locust stopped before loadmgr asked (`end_of_test`): the
  plugin says which greenlet called the runner's stop (the shape's, the run-time timer, a
  web request, else the locustfile's own code).
- Exceptions: Locust's `/exceptions` (the master gathers its workers' reports there, one row
  per distinct traceback with its count and nodes), read every EXCEPTIONS_EVERY_SEC and at
  the end. The run keeps the MAX_KEPT most frequent, each cut to a bounded size, with the
  total count; each interval holds the count first seen with it.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterError
from loadmgr.models import LoadTestRun, StopReason
from loadmgr.models.shapes import describe_shape

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient

EXCEPTIONS_EVERY_SEC = 5.0
MAX_KEPT = 20  # distinct exceptions kept on a run, the most frequent first
MAX_MESSAGE = 500
MAX_TRACEBACK = 2000  # its end: the frames nearest the raise
MAX_WHERE = 200
MAX_NODES = 200

_SHAPE_ANSWER = re.compile(r"using shape class '([^']{1,200})'")
_FRAME = re.compile(r'File "([^"]*)", line (\d+), in (\S+)')
_RAISE = re.compile(r"^\s*raise\s+([A-Za-z_][\w.]*)\s*(?:\(|$)")


def shape_in_answer(answer: dict[str, Any] | None) -> str | None:
    """The shape class named by `/swarm`'s answer, if Locust started one."""
    message = (answer or {}).get("message")
    found = _SHAPE_ANSWER.search(message) if isinstance(message, str) else None
    return found.group(1) if found else None


def seen_shape(declared: dict[str, Any] | None, told: str | None) -> dict[str, Any] | None:
    """The run's `shape` once Locust told which class runs: the declared one when it is that
    class, else what Locust said. None when Locust told nothing new."""
    if told is None or (declared is not None and declared.get("className") == told):
        return None
    return {"className": told, "detectedBy": "locust"}


def load_words(run: LoadTestRun) -> str:
    """What a run is about to start: the swarm it sends, or the shape that drives it."""
    where = f"on {run.locustClusterId}"
    if run.shape:
        return (
            f"the locustfile's load shape {describe_shape(run.shape)} drives the load "
            f"(users and spawn rate are its own) {where}; stopped at "
            f"{run.durationSeconds}s if it has not ended by then"
        )
    return (
        f"swarming {run.targetUsers} users at {run.spawnRate:g}/s "
        f"for {run.durationSeconds}s {where}"
    )


def end_of_test(
    cause: str | None, shape: bool, stop_requested: bool, early: bool
) -> tuple[StopReason, str | None]:
    """Why a run ended when Locust stopped on its own, and the note for an early stop.

    `cause` is what the plugin said (None without it); `shape` whether a load shape drove
    the run; `early` whether the duration was not reached."""
    if stop_requested:
        return StopReason.USER, "stopped with 'loadmgr runs stop'"
    if cause == "shape" or (cause is None and shape and early):
        # Without the plugin a shaped run that stops by itself is taken for the shape's end:
        # the shape is what ends such a test.
        return StopReason.SHAPE, None
    if cause == "locustfile":
        return StopReason.LOCUSTFILE, None
    if not early:
        return StopReason.DURATION, None
    return StopReason.USER, "Locust was stopped outside loadmgr"


def summarize(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Locust's `/exceptions` rows as the run keeps them (bounded), and their total count."""
    items: list[dict[str, Any]] = []
    total = 0
    for row in rows:
        count = row.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            continue
        total += count
        traceback = str(row.get("traceback") or "")
        message = str(row.get("msg") or "")
        items.append(
            {
                "type": _raised_type(traceback),
                "message": _cut(message, MAX_MESSAGE),
                "count": count,
                "where": _where(traceback),
                "nodes": _cut(str(row.get("nodes") or ""), MAX_NODES),
                "traceback": traceback[-MAX_TRACEBACK:],
            }
        )
    items.sort(key=lambda item: -item["count"])
    return items[:MAX_KEPT], total


def _where(traceback: str) -> str | None:
    """The traceback's last frame: `locustfile.py:12 in on_start` (the file's name only)."""
    frames = _FRAME.findall(traceback)
    if not frames:
        return None
    path, line, function = frames[-1]
    name = re.split(r"[\\/]", path)[-1]
    return _cut(f"{name}:{line} in {function}", MAX_WHERE)


def _raised_type(traceback: str) -> str | None:
    """The class a `raise X(...)` on the traceback's last line names (Locust's /exceptions
    gives the message and the frames, not the type); None when the line says no more.
    Python 3.11+ marks the failing expression on a line of its own (`^`, `~`): skipped."""
    lines = [line for line in traceback.splitlines() if line.strip(" \t^~")]
    found = _RAISE.match(lines[-1]) if lines else None
    return found.group(1)[:MAX_WHERE] if found else None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class UserExceptions:
    """The exceptions Locust reports for the run's test, read now and then."""

    def __init__(self, run_items: list[dict[str, Any]] | None, run_total: int) -> None:
        self.items = list(run_items or [])
        self.total = run_total
        self.unassigned = 0  # first seen since the last interval took them
        self._read_at = 0.0

    def read(self, client: LocustClient | None, *, force: bool = False) -> bool:
        """Read `/exceptions` when due (or `force`); whether something new was seen. A
        failed read changes nothing: exceptions are a finding, never a reason to stop."""
        if client is None or (
            not force and time.monotonic() - self._read_at < EXCEPTIONS_EVERY_SEC
        ):
            return False
        self._read_at = time.monotonic()
        try:
            items, total = summarize(client.exceptions())
        except ClusterError:
            return False
        if total <= self.total and items == self.items:
            return False
        if total > self.total:
            self.unassigned += total - self.total
        self.items, self.total = items, max(total, self.total)
        return True

    def take_new(self) -> int:
        """The count first seen since the last call (for the next interval)."""
        new, self.unassigned = self.unassigned, 0
        return new

    def fields(self) -> dict[str, Any]:
        return {"exceptions": self.items, "exceptionCount": self.total}
