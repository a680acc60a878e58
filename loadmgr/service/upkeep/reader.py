"""Runs' intervals read ahead by a thread of their own, in order, for `db prune`.

The server answers one request at a time in effect; the prune keeps it busy only if a
read is waiting while this process merges the run before and the writer thread
(`writer.py`) writes the one before that. So the intervals of the runs a page will
downsample are read here, a few batches ahead, and handed to the merge in the order asked.
Bounded: at most CHUNKS batches of CHUNK intervals wait (a few MB of compact intervals).
A failed read is raised in the prune's thread where that run's intervals are taken; a
prune leaving by an error stops the reads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

Read = Callable[[str, list[tuple[int, int]]], Iterator[dict[str, Any]]]

CHUNK = 250  # intervals handed over at once
CHUNKS = 4  # batches waiting at most

# (run id, intervals, the merged windows that covered leftovers once the run is read)
Chunk = tuple[str, list[dict[str, Any]], list[tuple[int, int]] | None]


class ReadAhead:
    """Reads `read(run_id, covered)` for each of `run_ids` in order; `intervals(run_id,
    covered)` gives them back, and must be asked for every run, in that order, to the end."""

    def __init__(self, read: Read, run_ids: list[str]) -> None:
        self._read = read
        self._run_ids = run_ids
        self._queue: queue.Queue[Chunk | BaseException] = queue.Queue(CHUNKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="prune-reader", daemon=True)
        if run_ids:
            self._thread.start()

    def _work(self) -> None:
        try:
            for run_id in self._run_ids:
                covered: list[tuple[int, int]] = []
                chunk: list[dict[str, Any]] = []
                for interval in self._read(run_id, covered):
                    chunk.append(interval)
                    if len(chunk) >= CHUNK:
                        if not self._put((run_id, chunk, None)):
                            return
                        chunk = []
                if not self._put((run_id, chunk, covered)):
                    return
        except BaseException as exc:  # raised again where the prune takes this run
            self._put(exc)

    def _put(self, item: Chunk | BaseException) -> bool:
        """Hand `item` over; False once the prune has stopped taking them."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def intervals(self, run_id: str, covered: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        """`run_id`'s intervals as `read` gave them; `covered` filled once all are taken."""
        while True:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            read_id, chunk, done = item
            if read_id != run_id:  # (never: the prune asks in the order it gave)
                raise RuntimeError(f"read ahead {read_id!r}, asked for {run_id!r}")
            yield from chunk
            if done is not None:
                covered.extend(done)
                return

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
