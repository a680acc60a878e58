"""The prune's writes on a thread of their own, in the order they were handed in.

`db prune` reads and merges a run's intervals in this process while the server writes the
windows of the run before it and deletes their originals: the two overlap instead of
taking turns (the merge is this process's CPU, the writes the server's). One thread does
every write, first in first out, so the order that makes a prune safe to kill is the order
they reach the server: each batch's windows before any of their originals are deleted
(`MetricsRepository.write_merged_windows`), a run's writes before its mark. Any prefix of
that sequence is a state a later prune finishes.

A write that fails stops the thread: those queued after it are dropped (a later prune does
them), and the failure is raised in the prune's own thread at its next hand-in or when it
waits for the writes to end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType

Write = Callable[[], None]

QUEUED = 4  # batches waiting at most: the merge runs ahead of the writes by this much


class Writer:
    """A context manager: `put(write)` hands a write in, `drain()` waits until every write
    handed in is done (raising a failed one's error); leaving the block waits for them too,
    unless it is left by an error (then those not yet begun are dropped)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Write | None] = queue.Queue(QUEUED)
        self._failure: BaseException | None = None
        self._stopping = False
        # A daemon: a write stuck past the process's end never keeps it alive.
        self._thread = threading.Thread(target=self._work, name="prune-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            write = self._queue.get()
            try:
                if write is None:
                    return
                if self._failure is None and not self._stopping:
                    write()
            except BaseException as exc:  # raised again in the prune's thread
                self._failure = exc
            finally:
                self._queue.task_done()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            self._stopping = True  # nothing queued after it runs
            raise failure

    def put(self, write: Write) -> None:
        self._raise_failure()
        self._queue.put(write)

    def drain(self) -> None:
        self._queue.join()
        self._raise_failure()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping = kind is not None
        self._queue.put(None)
        self._thread.join()
        if kind is None:
            self._raise_failure()
