"""Real servers for tests: the demo target, and Locust standalone or as master + workers.

Plain context managers plus pytest fixtures; conftest re-exports them with
`from tests.locust_servers import *`. Everything listens on 127.0.0.1 only, waits by
polling with deadlines, and is stopped at teardown with no process left behind.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from loadmgr.locust.local import LocalCluster

__all__ = [
    "DEMO_LOCUSTFILE",
    "EXAMPLES",
    "demo_target_module",
    "locust_master_with_workers",
    "locust_standalone",
    "pid_alive",
    "running_locust",
    "running_target",
    "target_server",
]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_LOCUSTFILE = EXAMPLES / "locustfile.py"
# Users of the demo target that fail one request in four (404): the tests that compare
# counts with Locust's own want failures among them.
WEB_USER_LOCUSTFILE = """\
from locust import HttpUser, between, task


class WebUser(HttpUser):
    wait_time = between(0.05, 0.2)

    @task(3)
    def items(self):
        self.client.get("/api/items")

    @task(1)
    def missing(self):
        self.client.get("/missing")  # 404: a failure Locust records
"""


def demo_target_module() -> ModuleType:
    """examples/demo_target.py as a module (examples/ is not a package)."""
    name = "loadmgr_examples_demo_target"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / "demo_target.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting to be reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@contextmanager
def running_target() -> Iterator[Any]:
    """The demo target on a free loopback port; yields its DemoServer (`.url`, `.counts()`)."""
    server = demo_target_module().DemoServer("127.0.0.1", 0).start_background()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def running_locust(
    locustfile: Path | list[Path],
    workers: int = 0,
    *,
    log_dir: Path | None = None,
    distributed: bool | None = None,
    with_plugin: bool = True,
    web_base_path: str = "",
    locust_args: tuple[str, ...] = (),
) -> Iterator[LocalCluster]:
    """Locust on free loopback ports: standalone (workers=0) or a master with workers;
    `locust_args` go on the command line of every process (`--tags x`, say)."""
    cluster = LocalCluster(
        locustfile,
        workers=workers,
        log_dir=log_dir,
        distributed=distributed,
        with_plugin=with_plugin,
        web_base_path=web_base_path,
        locust_args=locust_args,
    )
    cluster.start()
    pids = cluster.pids
    try:
        yield cluster
    finally:
        cluster.stop()
        leftovers = [pid for pid in pids if pid_alive(pid)]
        assert not leftovers, f"Locust processes left behind: {leftovers}"


@pytest.fixture
def target_server() -> Iterator[Any]:
    """The demo target: `/`, `/api/items`, `/slow`, `/missing` (404), `/error` (500)."""
    with running_target() as server:
        yield server


def _locust_factory(tmp_path: Path, default_workers: int) -> Iterator[Callable[..., LocalCluster]]:
    clusters: list[Any] = []

    def start(
        locustfile: Path = DEMO_LOCUSTFILE,
        workers: int = default_workers,
        *,
        distributed: bool | None = None,
        with_plugin: bool = True,
        web_base_path: str = "",
    ) -> LocalCluster:
        context = running_locust(
            locustfile,
            workers,
            log_dir=tmp_path / f"locust-{len(clusters)}",
            distributed=distributed,
            with_plugin=with_plugin,
            web_base_path=web_base_path,
        )
        cluster = context.__enter__()
        clusters.append(context)
        return cluster

    yield start
    for context in reversed(clusters):
        context.__exit__(None, None, None)


@pytest.fixture
def locust_standalone(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """Factory: `locust_standalone(locustfile)` → a running standalone Locust."""
    yield from _locust_factory(tmp_path, 0)


@pytest.fixture
def locust_master_with_workers(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """Factory: `locust_master_with_workers(locustfile, workers=2)` → master + workers."""
    yield from _locust_factory(tmp_path, 2)
