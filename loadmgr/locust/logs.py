"""The logs of a local Locust, kept below a size: a locustfile that prints on every request
wrote 95 MB in 8 s.

Each process appends to its own log (opened O_APPEND, so a log cut short under it goes on
at its new end, never leaving a hole). `LogKeeper` checks the logs every second; one past
its cap is cut to its first HEAD_BYTES (how the process started), a marker line saying how
much was dropped, and its last quarter of the cap (what it said last: a failure's reason is
read from the tail). A line written at the very moment of a cut may be lost; the marker
says the log was cut.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

DEFAULT_LOG_MAX_BYTES = 20_000_000
LOG_MIN_BYTES = 100_000
HEAD_BYTES = 64_000
CHECK_EVERY_SEC = 1.0


def cut_log(path: Path, max_bytes: int) -> int:
    """Cut `path` as above when it is over `max_bytes`; the bytes dropped (0: left alone)."""
    try:
        size = path.stat().st_size
        if size <= max_bytes:
            return 0
        head_size = min(HEAD_BYTES, max_bytes // 4)
        tail_size = max_bytes // 4
        with path.open("r+b") as log:
            head = log.read(head_size)
            log.seek(max(head_size, size - tail_size))
            tail = log.read(tail_size)
            dropped = size - len(head) - len(tail)
            marker = (
                f"\n[loadmgr: {dropped:,} bytes of this log dropped here, to keep it under "
                f"{max_bytes:,} bytes (LOADMGR_LOCUST_LOG_MAX)]\n"
            ).encode()
            log.seek(0)
            log.write(head + marker + tail)
            log.truncate()
        return dropped
    except OSError:
        return 0  # gone, or not ours to change: nothing to keep small


class LogKeeper:
    """A daemon thread that keeps the logs `paths()` names under `max_bytes` each, and
    touches `folder` at each look: a run folder changed a moment ago is in use (old run
    folders are removed by their last change, service/runs/folders.py)."""

    def __init__(
        self, paths: Callable[[], list[Path]], max_bytes: int, folder: Path | None = None
    ) -> None:
        self._paths = paths
        self._folder = folder
        self.max_bytes = max(LOG_MIN_BYTES, max_bytes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="locust-logs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.check()  # what was written since the last look

    def check(self) -> None:
        if self._folder is not None:
            try:
                os.utime(self._folder)
            except OSError:
                pass
        for path in self._paths():
            cut_log(path, self.max_bytes)

    def _run(self) -> None:
        while not self._stop.wait(CHECK_EVERY_SEC):
            self.check()
