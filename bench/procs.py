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
    """One finished command: wall seconds, peak RSS in bytes, exit code, output files."""

    seconds: float
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


def timed(command: Sequence[str], env: dict[str, str], workdir: Path) -> Timed:
    """Run `command` to its end; wall time and its own peak RSS (wait4 on this child)."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd_out, out_name = tempfile.mkstemp(prefix="out-", dir=workdir)
    fd_err, err_name = tempfile.mkstemp(prefix="err-", dir=workdir)
    with os.fdopen(fd_out, "wb") as out, os.fdopen(fd_err, "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=workdir
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not Popen
    # ru_maxrss is in KiB on Linux.
    return Timed(seconds, usage.ru_maxrss * 1024, process.returncode, Path(out_name),
                 Path(err_name))


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without LOADMGR_* / LOCUST_* settings of the caller, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LOADMGR_", "LOCUST_")) and key != "NO_COLOR"
    }
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

    def stop(self, process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
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


def start_wire_server(processes: Processes, data_dir: Path) -> str:
    """SecantusDB (`secantusd-py`) on a free loopback port; returns its URI."""
    for _ in range(5):
        port = free_port()
        process = processes.start(
            [
                executable("secantusd-py"),
                "--host", LOOPBACK,
                "--port", str(port),
                "--storage-path", str(data_dir),
                "--log-level", "WARNING",
            ],
            data_dir.parent / f"secantus-{port}.log",
        )
        try:
            wait_until(lambda: port_open(port) or process.poll() is not None, 60, "SecantusDB")
        except RuntimeError:
            processes.stop(process)
            raise
        if process.poll() is None:
            return f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
        processes.stop(process)  # lost the port to someone else: try another
    raise RuntimeError("SecantusDB did not start")


def start_demo_target(processes: Processes, log: Path) -> str:
    """examples/demo_target.py on a free loopback port; returns its base URL."""
    for _ in range(5):
        port = free_port()
        process = processes.start(
            [sys.executable, str(REPO / "examples" / "demo_target.py"),
             "--host", LOOPBACK, "--port", str(port)],
            log,
        )
        wait_until(lambda: port_open(port) or process.poll() is not None, 30, "demo target")
        if process.poll() is None:
            return f"http://{LOOPBACK}:{port}"
        processes.stop(process)
    raise RuntimeError("the demo target did not start")
