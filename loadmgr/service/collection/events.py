"""What happened to a run's cluster while it ran, recorded on the run (`events[]`).

One item per change, `{at, kind, detail}`: a worker lost or joined while the test loaded,
workers' clocks ahead of the master's, the master restarted. The writer stores the list
with its next heartbeat (and with the end), so a change is written once, and a MongoDB
outage only delays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loadmgr.models import utcnow

WORKER_LOST = "worker-lost"
WORKER_JOINED = "worker-joined"
RESTARTED = "locust-restarted"
LOADING_STATES = frozenset({"spawning", "running"})


@dataclass
class RunEvents:
    """The run's events, and whether some are not stored yet; and the other facts learnt
    while it runs (its load shape, its exceptions: run fields), stored the same way."""

    items: list[dict[str, Any]] = field(default_factory=list)
    unsaved: bool = False
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: str, detail: str) -> None:
        self.items.append({"at": utcnow(), "kind": kind, "detail": detail})
        self.unsaved = True

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
