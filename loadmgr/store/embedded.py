"""The embedded MongoDB-wire server: SecantusDB, run as its own background process.

SecantusDB is GPL-licensed, so it is only ever started as a separate program
(`secantusd-py`), never imported. One server per LOADMGR_HOME, started on first need on a
free loopback port, found again by later commands through a small state file; a file lock
makes sure two commands starting at once start one server.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadmgr.errors import DatabaseError, ValidationFailed
from loadmgr.local_files import ensure_directory
from loadmgr.processes import start_logged

START_TIMEOUT_SEC = 60.0
# SecantusDB without its single-node replica set: no oplog written beside every write
# (docs/storage.md, "The embedded server"). A data folder opens either way.
STANDALONE = "--standalone"
STOP_TIMEOUT_SEC = 15.0


@dataclass(frozen=True)
class ServerState:
    """What `db status` reports."""

    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    log_file: Path

    @property
    def uri(self) -> str | None:
        if self.port is None:
            return None
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def server_executable() -> str:
    """`secantusd-py` beside this Python first (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "secantusd-py"
    if beside.exists():
        return str(beside)
    found = shutil.which("secantusd-py")
    if found is None:
        raise DatabaseError(
            "the embedded MongoDB server (secantusd-py, from the SecantusDB package) "
            "is not installed",
            hint="pip install SecantusDB, or set LOADMGR_MONGO_URI to a MongoDB server",
        )
    return found


class EmbeddedServer:
    """The SecantusDB server belonging to one LOADMGR_HOME."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "db"
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "server.log"
        self.state_file = self.dir / "server.json"
        self.lock_file = self.dir / "server.lock"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            ensure_directory(self.dir)
            handle = open(self.lock_file, "a+")  # noqa: SIM115 - held for the block
        except (OSError, ValidationFailed) as exc:
            # The store cannot be had: a database failure (exit 3), what stands in the
            # way named as for every folder of LOADMGR_HOME (a file, a dangling symlink).
            raise DatabaseError(
                f"cannot use {self.dir} for the embedded store: {_reason(exc)}",
                hint="set LOADMGR_HOME to a writable directory, or LOADMGR_MONGO_URI to a server",
            ) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_state(self) -> tuple[int | None, int | None]:
        try:
            data = json.loads(self.state_file.read_text())
            return int(data["pid"]), int(data["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def status(self) -> ServerState:
        pid, port = self._read_state()
        running = pid is not None and port is not None and pid_alive(pid) and port_open(port)
        return ServerState(
            running=running,
            pid=pid if running else None,
            port=port if running else None,
            data_dir=self.data_dir,
            log_file=self.log_file,
        )

    def ensure_running(self) -> ServerState:
        """The running server, started first if needed (one even when racing)."""
        state = self.status()
        if state.running:
            return state
        with self._locked():
            state = self.status()  # someone may have started it while we waited
            if state.running:
                return state
            return self._start()

    def _start(self) -> ServerState:
        executable = server_executable()
        try:
            return self._spawn(executable)
        except (OSError, ValidationFailed) as exc:  # data dir or log, executable not runnable
            raise DatabaseError(
                f"cannot start the embedded MongoDB server under {self.dir}: {_reason(exc)}",
                hint=f"check that {self.dir} is a writable directory (LOADMGR_HOME), "
                f"or set LOADMGR_MONGO_URI; its log is {self.log_file}",
            ) from None

    def _spawn(self, executable: str) -> ServerState:
        ensure_directory(self.data_dir)
        port = free_port()
        command = [
            executable,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(self.data_dir),
            "--log-level",
            "WARNING",
            # No replica-set persona, so no oplog: loadmgr uses no change streams nor
            # transactions, and each write skips its oplog entry (docs/storage.md).
            STANDALONE,
        ]
        with open(self.log_file, "ab") as log:
            # It outlives this command, immune to its Ctrl-C.
            process = start_logged(command, log, cwd=self.dir)
        deadline = time.monotonic() + START_TIMEOUT_SEC
        while time.monotonic() < deadline:
            if process.poll() is not None:
                reason = self._last_log_line()
                raise DatabaseError(
                    f"the embedded MongoDB server exited at start (code {process.returncode})"
                    + (f": {reason}" if reason else ""),
                    hint=f"see its log: {self.log_file}",
                )
            if port_open(port, timeout=0.2):
                self.state_file.write_text(json.dumps({"pid": process.pid, "port": port}))
                return self.status()
            time.sleep(0.05)
        process.kill()
        raise DatabaseError(
            f"the embedded MongoDB server did not start within {START_TIMEOUT_SEC:.0f}s",
            hint=f"see its log: {self.log_file}",
        )

    def _last_log_line(self, limit: int = 300) -> str:
        """The last line the server logged (usually why it stopped), bounded."""
        try:
            with open(self.log_file, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
                lines = log.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        line = lines[-1].strip() if lines else ""
        return line if len(line) <= limit else line[: limit - 1] + "…"

    def stop(self) -> bool:
        """Stop the server if running; True if it was."""
        with self._locked():
            pid, _ = self._read_state()
            state = self.status()
            self.state_file.unlink(missing_ok=True)
            if not state.running or pid is None:
                return False
            _terminate(pid)
            return True


def _terminate(pid: int) -> None:
    """SIGTERM the server and wait for it to exit cleanly; SIGKILL only as a last resort."""
    signal_main_thread(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SEC
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def signal_main_thread(pid: int, signum: int) -> None:
    """Send `signum` to the process's main thread, where Python runs signal handlers.

    SecantusDB waits for its stop event on its main thread. A process-wide SIGTERM that
    the kernel hands to one of its other threads (most of them, on a busy server) is
    noted but never acted on, and the server would run until SIGKILLed. Linux's tgkill
    aims the signal at the main thread; elsewhere a plain kill is the best there is.
    """
    try:
        import ctypes

        tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None)
    except (ImportError, OSError):
        tgkill = None
    if tgkill is not None and tgkill(pid, pid, int(signum)) == 0:
        return
    os.kill(pid, signum)


def _reason(exc: OSError | ValidationFailed) -> str:
    return exc.message if isinstance(exc, ValidationFailed) else str(exc)
