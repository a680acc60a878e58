"""Processes the benchmark starts: timed commands, the wire server, the demo target.

Everything listens on 127.0.0.1; every long-lived process is registered with a
`Processes` group, which the runner stops in a `finally`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadmgr.store.embedded import STANDALONE

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def executable(name: str) -> str:
    """A console script of this venv (`loadmgr`, `secantusd-py`), beside sys.executable."""
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{name} not found beside {sys.executable}: install loadmgr first")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what}: not ready within {timeout:g}s")
        time.sleep(0.05)


@dataclass(frozen=True)
class Timed:
    """One finished command: wall and CPU seconds, peak RSS in bytes, exit code, outputs."""

    seconds: float
    cpu: float
    max_rss: int
    returncode: int
    stdout: Path
    stderr: Path

    def out(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace")

    def err(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def check(self, what: str) -> Timed:
        if self.returncode != 0:
            tail = " | ".join(self.err().strip().splitlines()[-3:])
            raise RuntimeError(f"{what} exited {self.returncode}: {tail[-400:]}")
        return self


def timed(
    command: Sequence[str], env: dict[str, str], workdir: Path, *, rss: bool = False
) -> Timed:
    """Run `command` to its end: wall and CPU time (wait4 on this child), exit code, output.

    With `rss`, also its peak RSS, measured through bench/rss.py (which adds a small
    launcher's start-up to the wall time); without, `max_rss` is 0.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    fd_out, out_name = tempfile.mkstemp(prefix="out-", dir=workdir)
    fd_err, err_name = tempfile.mkstemp(prefix="err-", dir=workdir)
    rss_file = Path(out_name + ".rss")
    if rss:
        command = [sys.executable, str(Path(__file__).with_name("rss.py")), str(rss_file),
                   *command]
    with os.fdopen(fd_out, "wb") as out, os.fdopen(fd_err, "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=workdir
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            # Interrupted: let loadmgr stop and record what it runs (it handles SIGTERM).
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not Popen
    cpu = usage.ru_utime + usage.ru_stime
    # A child's own ru_maxrss would count this (big) process's memory: see bench/rss.py.
    max_rss = 0
    if rss:
        max_rss = int(rss_file.read_text() or 0) if rss_file.exists() else 0
        rss_file.unlink(missing_ok=True)
    return Timed(seconds, cpu, max_rss, process.returncode, Path(out_name), Path(err_name))


# Where every process of the run keeps its bytecode (set by the runner to a temp dir):
# an installed loadmgr has its .pyc files, even where PYTHONDONTWRITEBYTECODE is set for
# development, and the warm-up runs write them there, never into the source tree.
PYCACHE_PREFIX: dict[str, str] = {}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without LOADMGR_* / LOCUST_* settings of the caller, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LOADMGR_", "LOCUST_"))
        and key not in ("NO_COLOR", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(PYCACHE_PREFIX)
    env.update(extra)
    return env


class Processes:
    """Long-lived processes of one benchmark run, stopped together (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, command: Sequence[str], log: Path, **popen: object) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,  # type: ignore[arg-type]
            )
        self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            except ProcessLookupError:
                pass
        if process in self._running:
            self._running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self._running)):
            self.stop(process)


def _listening(port: int, process: subprocess.Popen[bytes]) -> Callable[[], bool]:
    """Ready to check: the port answers, or the process has exited (and will not)."""
    return lambda: port_open(port) or process.poll() is not None


def start_wire_server(processes: Processes, data_dir: Path) -> str:
    """SecantusDB (`secantusd-py`) on a free loopback port; returns its URI."""
    return wire_server(processes, data_dir)[0]


def wire_server(processes: Processes, data_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """SecantusDB on a free loopback port: its URI and its process."""
    for _ in range(5):
        port = free_port()
        process = processes.start(
            [
                executable("secantusd-py"),
                "--host", LOOPBACK,
                "--port", str(port),
                "--storage-path", str(data_dir),
                "--log-level", "WARNING",
                STANDALONE,  # as loadmgr's embedded server runs (docs/storage.md)
            ],
            data_dir.parent / f"secantus-{port}.log",
        )
        try:
            wait_until(_listening(port, process), 60, "SecantusDB")
        except RuntimeError:
            processes.stop(process)
            raise
        if process.poll() is None:
            return f"mongodb://{LOOPBACK}:{port}/?directConnection=true", process
        processes.stop(process)  # lost the port to someone else: try another
    raise RuntimeError("SecantusDB did not start")


def start_demo_target(processes: Processes, log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """examples/demo_target.py on a free loopback port: its base URL and its process."""
    for _ in range(5):
        port = free_port()
        process = processes.start(
            [sys.executable, str(REPO / "examples" / "demo_target.py"),
             "--host", LOOPBACK, "--port", str(port)],
            log,
        )
        wait_until(_listening(port, process), 30, "demo target")
        if process.poll() is None:
            return f"http://{LOOPBACK}:{port}", process
        processes.stop(process)
    raise RuntimeError("the demo target did not start")
