"""What happened to a run's cluster while it ran, recorded on the run (`events[]`).

One item per change, `{at, kind, detail}`: a worker lost or joined while the test loaded,
workers' clocks ahead of the master's, the master restarted. The writer stores the list
with its next heartbeat (and with the end), so a change is written once, and a MongoDB
outage only delays it.

At most MAX_EVENTS are stored: the first MAX_EVENTS - 1, then one `events-dropped` item
counting the rest (`dropped`), so a flapping cluster (100,000 worker changes) never grows
the run's document past what it can hold (tests/unit/test_document_sizes.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loadmgr.models import utcnow

if TYPE_CHECKING:
    from loadmgr.service.collection.settings import RunObserver
    from loadmgr.service.collection.sources import Poll

WORKER_LOST = "worker-lost"
WORKER_JOINED = "worker-joined"
RESTARTED = "locust-restarted"
DROPPED = "events-dropped"
LOADING_STATES = frozenset({"spawning", "running"})
MAX_EVENTS = 100
MAX_DETAIL = 120  # characters of one event's detail: a list of missing workers is cut


@dataclass
class RunEvents:
    """The run's events, and whether some are not stored yet; and the other facts learnt
    while it runs (its load shape, its exceptions: run fields), stored the same way."""

    items: list[dict[str, Any]] = field(default_factory=list)
    unsaved: bool = False
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A run stored before the bound (or by another writer) may hold more: its next
        # write keeps the first ones and counts the rest.
        last = self.items[-1] if self.items else {}
        dropped = last.get("dropped") if last.get("kind") == DROPPED else None
        if isinstance(dropped, int):
            self.items.pop()
        if len(self.items) >= MAX_EVENTS:
            extra = len(self.items) - (MAX_EVENTS - 1)
            del self.items[MAX_EVENTS - 1 :]
            self._drop(extra + (dropped if isinstance(dropped, int) else 0))
            self.unsaved = True
        elif isinstance(dropped, int):
            self._drop(dropped)

    def add(self, kind: str, detail: str) -> None:
        if len(self.items) < MAX_EVENTS - 1:
            self.items.append({"at": utcnow(), "kind": kind, "detail": detail[:MAX_DETAIL]})
        else:
            last = self.items[-1] if len(self.items) == MAX_EVENTS else {}
            self._drop(int(last.get("dropped") or 0) + 1)
        self.unsaved = True

    def _drop(self, count: int) -> None:
        """Say (as the last item) that `count` events were not stored."""
        summary = {
            "at": utcnow(),
            "kind": DROPPED,
            "detail": f"{count:,} more events not stored (the first {MAX_EVENTS - 1} are)",
            "dropped": count,
        }
        if len(self.items) == MAX_EVENTS:
            self.items[-1] = summary
        else:
            self.items.append(summary)

    def learn(self, facts: dict[str, Any]) -> None:
        """Run fields to store with the next heartbeat (and with the end)."""
        if any(self.facts.get(name, self) != value for name, value in facts.items()):
            self.facts.update(facts)
            self.unsaved = True

    def fields(self) -> dict[str, Any]:
        """The run's fields to store, when something is not stored yet."""
        return {"events": list(self.items), **self.facts} if self.unsaved else {}


def worker_change(
    before: int | None, count: int | None, state: str, payload: dict[str, Any]
) -> tuple[str, tuple[str, str] | None] | None:
    """What to say when the connected workers went from `before` to `count`, and the event
    to record: only while the test loads (at a stop, workers leave as they should)."""
    if before is None or count is None or count == before:
        return None
    missing = [
        str(w.get("id"))
        for w in payload.get("workers") or []
        if isinstance(w, dict) and w.get("state") == "missing"
    ]
    detail = f" (missing: {', '.join(missing)})" if missing else ""
    message = f"workers: {before} → {count}{detail}"
    if state not in LOADING_STATES:
        return message, None
    kind = WORKER_LOST if count < before else WORKER_JOINED
    return message, (kind, message)


def note_workers(
    poll: Poll, workers: int | None, observer: RunObserver, events: RunEvents
) -> int | None:
    """Say so when a worker joins or disappears (naming the missing, where known), and
    record it on the run while the test loads; record what the source noticed. Returns
    the workers now known (`workers` when the poll told none)."""
    for kind, detail in poll.events:
        observer.message(detail)
        events.add(kind, detail)
    change = worker_change(workers, poll.workers, poll.state, poll.payload)
    if change is not None:
        message, event = change
        observer.message(message)
        if event is not None:
            events.add(*event)
    return poll.workers if poll.workers is not None else workers
