"""`runs follow` of a run another collector records (issue 15, item 6): the elapsed time is
the run's (from its startedAt, on the server's clock), never past its duration, and Ctrl-C
leaves the live panel drawn once, with no stale line of an earlier drawing above it.

The "collector" here is the test: it keeps the run's heartbeat fresh and writes intervals
into the real wire server, as a collector on another machine would.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from loadmgr.models import RunStatus, utcnow
from tests.conftest import loadmgr_command, reaped
from tests.metrics_data import make_run, make_test, snapshots, store_all
from tests.polling import wait_for

pytestmark = pytest.mark.integration

DURATION = 30
ALREADY = 10  # seconds the run has gone when following starts


class OtherCollector:
    """A run `ALREADY` seconds into its `DURATION`, kept alive from "another machine"."""

    def __init__(self, db: Any) -> None:
        self.db = db
        test = make_test("followed")
        started = utcnow() - timedelta(seconds=ALREADY)
        self.run = make_run(
            test,
            final=None,
            status=RunStatus.RUNNING,
            startedAt=started,
            finishedAt=None,
            stopReason=None,
            durationSeconds=DURATION,
            heartbeatAt=utcnow(),
            collector={"host": "another-machine", "pid": 4242, "interval": 1},
            finalStats=None,
        )
        store_all(db, test, [self.run])
        self._intervals = snapshots(self.run, 2, interval=1.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(0.5):
            self.db.load_test_runs.update_one(
                {"id": self.run.id}, {"$set": {"heartbeatAt": utcnow()}}
            )

    def interval(self, seq: int, seconds_in: float) -> None:
        """Record interval `seq`, ending `seconds_in` after the run started."""
        snap = self._intervals[seq - 1].model_copy(
            update={"timestamp": self.run.startedAt + timedelta(seconds=seconds_in)}  # type: ignore[operator]
        )
        self.db.metrics_timeseries.insert_one(snap.model_dump(mode="python"))

    def finish(self) -> None:
        self._stop.set()
        self.db.load_test_runs.update_one(
            {"id": self.run.id},
            {"$set": {"status": "Finished", "stopReason": "duration", "finishedAt": utcnow()}},
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def other(mongo_db: Any) -> Iterator[OtherCollector]:
    collector = OtherCollector(mongo_db)
    yield collector
    collector.close()


def test_follow_prints_the_runs_elapsed_time_within_its_duration(other: OtherCollector) -> None:
    other.interval(1, ALREADY)
    process = subprocess.Popen(
        [*loadmgr_command(), "runs", "follow", other.run.id, "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    with reaped(process):
        # The header comes first, the first progress line a poll later: wait for that.
        assert wait_for(lambda: any(re.search(r" \d+/30s ", x) for x in lines), 60), lines
        # Joined 10 s in: the first line says so, not 0/30s.
        first = next(line for line in lines if re.search(r" \d+/30s ", line))
        assert re.search(rf" {ALREADY}/{DURATION}s ", first), first
        # An interval stamped past the duration (the last seconds, read late) reads 30/30s.
        other.interval(2, DURATION + 5)
        assert wait_for(lambda: any(f" {DURATION}/{DURATION}s " in x for x in lines), 30), lines
        other.finish()
        assert process.wait(timeout=60) == 0
    reader.join(timeout=5)
    shown = [int(m[1]) for line in lines if (m := re.search(r" (\d+)/30s ", line))]
    assert shown and all(ALREADY <= s <= DURATION for s in shown), lines


# -- the live view on a terminal -----------------------------------------------------------


def screen_of(output: str, width: int) -> list[str]:
    """What a terminal `width` columns wide shows after `output` (the subset of VT100 Rich
    writes): autowrap with a pending wrap at the last column, CR, LF, cursor up and down,
    erase in line; colours and cursor visibility ignored."""
    rows: list[list[str]] = [[]]
    row = col = 0
    pending = False
    tokens = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07]*\x07|(.)", re.S)
    for match in tokens.finditer(output):
        params, final, char = match.group(1), match.group(2), match.group(3)
        if final:
            count = int(params) if params and params.isdigit() else 1
            if final in "AB":
                row = max(0, row - count) if final == "A" else row + count
                pending = False
            elif final == "K":
                rows[row] = [] if params == "2" else rows[row][:col]
            elif final == "G":
                col, pending = count - 1, False
        elif char == "\r":
            col, pending = 0, False
        elif char == "\n":
            row, col, pending = row + 1, 0, False
        elif char is not None and char >= " ":
            if pending:
                row, col, pending = row + 1, 0, False
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            pending = col == width - 1
            col = min(col + 1, width - 1)
        while len(rows) <= row:
            rows.append([])
    return ["".join(r).rstrip() for r in rows]


def test_ctrl_c_leaves_one_panel_and_no_stale_header(other: OtherCollector) -> None:
    width = 80
    other.interval(1, ALREADY)
    pid, master = pty.fork()
    if pid == 0:  # the child: loadmgr on a terminal of its own
        # As a shell starts it: Ctrl-C's signal at its default. An ignored SIGINT would be
        # inherited through exec (and Python then installs no KeyboardInterrupt for it),
        # whatever this test worker's own disposition is.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.environ.update(COLUMNS=str(width), LINES="40", TERM="xterm")
        command = loadmgr_command()
        os.execv(command[0], [*command, "runs", "follow", other.run.id])
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, width, 0, 0))
    chunks: list[bytes] = []

    def read_all() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    status: list[int] = []

    def exited() -> bool:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(os.waitstatus_to_exitcode(code))
        return bool(done)

    try:
        # The panel is up, with an interval in it.
        assert wait_for(lambda: b"requests" in b"".join(chunks), timeout=60), b"".join(chunks)
        os.write(master, b"\x03")  # Ctrl-C typed on the terminal: echoed as ^C, SIGINT sent
        assert wait_for(exited, timeout=60), screen_of(
            b"".join(chunks).decode("utf-8", "replace"), width
        )
        assert status == [130]
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    reader.join(timeout=5)
    os.close(master)
    screen = screen_of(b"".join(chunks).decode("utf-8", "replace"), width)
    headers = [line for line in screen if line.lstrip().startswith("╭")]
    assert len(headers) == 1, "\n".join(screen)
    assert any("stopped watching; the run goes on" in line for line in screen), screen
    assert any(f"{ALREADY}s / {DURATION}s" in line or "s / 30s" in line for line in screen)
