"""The built-in `local` cluster: a Locust master and its workers on loopback, run by loadmgr.

Every process loads the test's locustfile (a file, a folder, or several of them) and the
loadmgr plugin (`-f locustfile,plugin`), so the master serves exact per-second numbers.
Locust reads no configuration file of the caller's (`~/.locust.conf`, `./locust.conf`,
`pyproject.toml`: a personal `headless = true` would break every run), only the one
`config_file` names; its logs are kept under a size (`logs.py`). Every process is started
in its own session (Ctrl-C in the terminal reaches loadmgr only, which then stops the swarm
and records the run) and, on Linux, asks the kernel to SIGTERM it when its parent dies, so
a killed loadmgr leaves no Locust behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from loadmgr.errors import ClusterError
from loadmgr.locust.client import LocustClient
from loadmgr.locust.logs import DEFAULT_LOG_MAX_BYTES, LogKeeper
from loadmgr.locust.plugin import plugin_path
from loadmgr.locust.protocol import poll_until
from loadmgr.processes import start_logged

LOOPBACK = "127.0.0.1"
PORT_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1
_PORT_BUSY = "Address already in use"
# Settings that would change how Locust runs or where it listens; loadmgr sets those.
_SCRUBBED_ENV = (
    "LOCUST_AUTOQUIT LOCUST_AUTOSTART LOCUST_CONFIG LOCUST_CONFIG_USERS LOCUST_CSV "
    "LOCUST_CSV_FULL_HISTORY "
    "LOCUST_EXPECT_WORKERS LOCUST_EXPECT_WORKERS_MAX_WAIT LOCUST_HEADFUL LOCUST_HEADLESS "
    "LOCUST_HTML LOCUST_LEGACY_UI LOCUST_LOCUSTFILE LOCUST_LOGFILE LOCUST_MASTER_BIND_HOST "
    "LOCUST_MASTER_BIND_PORT LOCUST_MASTER_NODE_HOST LOCUST_MASTER_NODE_PORT LOCUST_MODE_MASTER "
    "LOCUST_MODE_WORKER LOCUST_PROCESSES LOCUST_RESET_STATS LOCUST_RUN_TIME "
    "LOCUST_SKIP_LOG_SETUP LOCUST_SPAWN_RATE LOCUST_STOP_TIMEOUT LOCUST_TLS_CERT LOCUST_TLS_KEY "
    "LOCUST_USERCLASS_PICKER LOCUST_USERS LOCUST_WEB_AUTH LOCUST_WEB_BASE_PATH LOCUST_WEB_HOST "
    "LOCUST_WEB_HOST_DISPLAY_NAME LOCUST_WEB_LOGIN LOCUST_WEB_PORT"
).split()


class LocalClusterError(ClusterError):
    """The local Locust failed to start; `log_path` and `log_tail` say why."""

    def __init__(self, message: str, log_path: Path, log_tail: list[str]) -> None:
        super().__init__(message, hint=f"full log: {log_path}")
        self.log_path = log_path
        self.log_tail = log_tail


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports free right now (another process may still take one)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def log_tail(path: Path, lines: int = 20) -> list[str]:
    """The last non-empty lines of a log file (empty when unreadable)."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - 16_384))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when loadmgr dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class LocalCluster:
    """Locust on loopback: a master with `workers` workers (None: one per CPU)."""

    # `workers=0` runs one standalone Locust; `distributed=True` with `workers=0` a bare
    # master (for tests). Without `log_dir`, logs go to a temporary directory that a clean
    # stop removes. `web_base_path` serves the web UI under a path (`base_url` includes it).
    # On Linux the processes die with the *thread* that started them (PR_SET_PDEATHSIG), so
    # start the cluster from a long-lived thread.

    def __init__(
        self,
        locustfile_path: Path | Sequence[Path],
        workers: int | None = None,
        log_dir: Path | None = None,
        *,
        distributed: bool | None = None,
        start_timeout: float = 60.0,
        stop_grace: float = 10.0,
        web_base_path: str = "",
        with_plugin: bool = True,
        locust_args: Sequence[str] = (),
        config_file: Path | None = None,
        log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
    ) -> None:
        paths = [locustfile_path] if isinstance(locustfile_path, Path) else locustfile_path
        # What `-f` is given: files or folders (Locust loads every .py of a folder).
        self.locustfiles = [Path(path).resolve() for path in paths]
        self.locustfile = self.locustfiles[0]
        # Locust's own options (models/locust_options.py), on the master and every worker.
        self.locust_args = list(locust_args)
        self.config_file = Path(config_file).resolve() if config_file is not None else None
        self.plugin = plugin_path()
        # False only to stand in for a remote cluster that lacks the plugin (tests, bench).
        self.with_plugin = with_plugin
        self.web_base_path = web_base_path.rstrip("/")
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.distributed = self.workers > 0 if distributed is None else distributed
        self._own_log_dir = log_dir is None
        self.log_dir = (
            Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="loadmgr-locust-"))
        )
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.base_url = ""
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self._failed = False
        self._log_keeper = LogKeeper(lambda: list(self._logs), log_max_bytes, self.log_dir)

    @property
    def pids(self) -> list[int]:
        """Process ids of the master (first) and the workers."""
        return [process.pid for process in self._processes]

    def master_exited(self) -> bool:
        """Whether the master (or standalone Locust) process has ended."""
        return bool(self._processes) and self._processes[0].poll() is not None

    @property
    def log_paths(self) -> list[Path]:
        """Log files of the master (first) and the workers."""
        return list(self._logs)

    def client(self, *, timeout: float = 10.0, stop_timeout: float = 90.0) -> LocustClient:
        """A client for this cluster's web API."""
        return LocustClient(self.base_url, timeout=timeout, stop_timeout=stop_timeout)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        """Start every process and wait until the web API answers with all workers in."""
        for locustfile in self.locustfiles:
            if not (locustfile.is_file() or locustfile.is_dir()):
                raise ClusterError(f"locustfile {locustfile} not found")
        if self.workers < 0:
            raise ClusterError(f"worker count must be >= 0, got {self.workers}")
        for path in (*self.locustfiles, self.plugin):
            if "," in str(path):
                # Locust splits -f on commas: this path would name files that do not exist.
                raise ClusterError(f"Locust cannot load a file whose path has a comma: {path}")
        if self.web_base_path and not self.web_base_path.startswith("/"):
            raise ClusterError(f"web base path must start with '/', got {self.web_base_path!r}")
        if not self.plugin.is_file():
            raise ClusterError(
                f"the loadmgr Locust plugin {self.plugin} is missing", hint="reinstall loadmgr"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log_keeper.start()
        deadline = time.monotonic() + self.start_timeout
        try:
            for attempt in range(1, PORT_ATTEMPTS + 1):
                master_port, web_port = free_ports(2)
                master = self._start_master(master_port, web_port)
                if self._wait_web(master, deadline):
                    break
                if attempt == PORT_ATTEMPTS:
                    raise self._failure(0, None)
                # Another process took a port between our check and Locust's bind.
                self._terminate()
                self._processes.clear()
                self._logs.clear()
            for index in range(1, self.workers + 1):
                connect = ["--master-host", LOOPBACK, "--master-port", str(master_port)]
                self._spawn(f"worker-{index}", ["--worker", *connect])
            self._wait_workers(deadline)
        except BaseException:
            self._failed = True
            self._terminate()
            raise
        return self

    def stop(self) -> None:
        """Terminate every process started (SIGTERM, then SIGKILL after `stop_grace`)."""
        self._terminate()
        self._log_keeper.stop()
        if self._own_log_dir and not self._failed:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def _start_master(self, master_port: int, web_port: int) -> subprocess.Popen[bytes]:
        self.base_url = f"http://{LOOPBACK}:{web_port}{self.web_base_path}"
        web = ["--web-host", LOOPBACK, "--web-port", str(web_port)]
        if self.web_base_path:
            web += ["--web-base-path", self.web_base_path]
        if not self.distributed:
            return self._spawn("locust", web)
        bind = ["--master-bind-host", LOOPBACK, "--master-bind-port", str(master_port)]
        return self._spawn("master", ["--master", *bind, *web])

    def _spawn(self, role: str, args: list[str]) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"{role}.log"
        env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED_ENV}
        env["PYTHONUNBUFFERED"] = "1"
        # The plugin on every process: workers record, the master (or standalone) serves.
        paths = [*self.locustfiles, self.plugin] if self.with_plugin else self.locustfiles
        files = ",".join(str(path) for path in paths)
        config = ["--config", str(self.config_file)] if self.config_file else []
        command = [sys.executable, "-c", _LAUNCH, "-f", files, *config, *args, *self.locust_args]
        # Appended to (O_APPEND), so the log keeper may cut it under the running process.
        log_path.unlink(missing_ok=True)
        with log_path.open("ab") as log:
            process = start_logged(
                command,
                log,
                # A fresh directory: no locust.conf or pyproject.toml of the caller applies.
                cwd=self.log_dir,
                env=env,
                preexec_fn=_die_with_parent(),
            )
        self._processes.append(process)
        self._logs.append(log_path)
        return process

    def _wait_web(self, master: subprocess.Popen[bytes], deadline: float) -> bool:
        """True once the web API answers, False when the master found a port taken."""
        with LocustClient(self.base_url, timeout=2.0) as client:

            def settled() -> bool:
                if master.poll() is not None:
                    return True
                try:
                    client.worker_count()
                except ClusterError:
                    return False
                return True

            _, done = poll_until(settled, bool, deadline - time.monotonic(), 0.1)
        if not done:
            raise self._failure(0, f"did not answer within {self.start_timeout:g}s")
        if master.poll() is None:
            return True
        if any(_PORT_BUSY in line for line in log_tail(self._logs[0])):
            return False
        raise self._failure(0, None)

    def _wait_workers(self, deadline: float) -> None:
        if not self.distributed:
            return
        with LocustClient(self.base_url, timeout=2.0) as client:

            def all_in() -> bool:
                for index, process in enumerate(self._processes):
                    if process.poll() is not None:
                        raise self._failure(index, None)
                try:
                    return client.worker_count() >= self.workers
                except ClusterError:
                    return False  # a slow answer on a busy machine: ask again

            _, ready = poll_until(all_in, bool, deadline - time.monotonic(), 0.2)
        if not ready:
            raise ClusterError(
                f"only some of the {self.workers} local Locust workers connected "
                f"within {self.start_timeout:g}s",
                hint=f"logs in {self.log_dir}",
            )

    def _failure(self, index: int, reason: str | None) -> LocalClusterError:
        path = self._logs[index]
        tail = log_tail(path)
        role = path.stem
        if reason is None:
            code = self._processes[index].returncode
            summary = " | ".join(line.strip() for line in tail[-3:]) or "no output"
            reason = f"exited with code {code}: {summary[-300:]}"
        return LocalClusterError(f"local Locust {role} {reason}", path, tail)

    def _terminate(self) -> None:
        running = [process for process in self._processes if process.poll() is None]
        for process in running:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_grace
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# `locust` itself, reading no default configuration file: Locust's parser reads
# ~/.locust.conf, ./locust.conf and ./pyproject.toml unless told another list; an explicit
# `--config` is still read. Should a Locust name that argument otherwise, it runs as it is.
_LAUNCH = """
import inspect, sys
import locust.argument_parser as parser
for function in (parser.get_empty_argument_parser, parser.get_parser):
    names = list(inspect.signature(function).parameters)
    if names and names[-1] == "default_config_files" and function.__defaults__:
        function.__defaults__ = (*function.__defaults__[:-1], [])
from locust.main import main
sys.argv[0] = "locust"
main()
"""


# Imports the plugin the way `locust -f` does (Locust first, then the file as a module) and
# prints what it found; nothing listens, nothing is sent.
_PLUGIN_PROBE = """
import importlib.util, json, sys
import locust
spec = importlib.util.spec_from_file_location("loadmgr_plugin", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"locustVersion": locust.__version__, "pluginVersion": module.PLUGIN_VERSION}))
"""
PROBE_TIMEOUT_SEC = 60.0


def check_local() -> dict[str, object]:
    """What a run on the built-in cluster would get on this machine: the Locust version,
    the cores (one worker each), and whether the loadmgr plugin loads in that Locust.

    ClusterError (exit 6) when Locust or the plugin cannot be loaded: no local run could
    start. Takes about as long as Locust takes to import (a second or two).
    """
    cores = os.cpu_count() or 1
    report: dict[str, object] = {"id": "local", "builtIn": True, "cores": cores, "workers": cores}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PLUGIN_PROBE, str(plugin_path())],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT_SEC,
            cwd=tempfile.gettempdir(),
            env={k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV},
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(
            f"the local cluster cannot be used: importing Locust and the loadmgr plugin "
            f"took over {PROBE_TIMEOUT_SEC:g}s"
        ) from None
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        found = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        errors = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = errors[-1] if errors else f"exit code {done.returncode}"
        raise ClusterError(
            f"the local cluster cannot be used: Locust with the loadmgr plugin fails to "
            f"load ({why[-300:]})",
            hint=f"check the Locust installed for {sys.executable} (pip install locust)",
        )
    report.update(
        version=found.get("locustVersion"),  # the key a remote cluster's check uses
        pluginVersion=found.get("pluginVersion"),
        pluginLoads=True,
    )
    return report
