"""Shared fixtures: an isolated environment, a real MongoDB-wire server, a CLI runner."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from loadmgr.cli.main import app
from loadmgr.store.embedded import STANDALONE, free_port, port_open, signal_main_thread
from tests.go_fixtures import go_db  # noqa: F401 - a fixture shared by the Go-era tests
from tests.locust_servers import (  # noqa: F401 - fixtures shared by every test module
    locust_master_with_workers,
    locust_standalone,
    target_server,
)
from tests.polling import wait_for
from tests.scheduling import pytest_collection_modifyitems  # noqa: F401 - the suite's order

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def machine_left_intact() -> Iterator[None]:
    """The tests run as root in CI: a command that renamed a file over /dev/null (it once
    did, for `--html /dev/null`) would break every process of the machine. Said loudly."""
    import stat

    yield
    mode = os.stat(os.devnull).st_mode
    assert stat.S_ISCHR(mode), f"{os.devnull} is no longer a device: a test replaced it"


@pytest.fixture(autouse=True)
def mongomock_bulk_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """pymongo 4.11+ passes `sort` to a bulk update or replace, which mongomock does not know yet
    (every unit test on mongomock may write in bulk)."""
    from mongomock.collection import BulkOperationBuilder

    original = BulkOperationBuilder.add_update

    def add_update(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> Any:
        assert sort is None
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BulkOperationBuilder, "add_update", add_update)
    replace = BulkOperationBuilder.add_replace

    def add_replace(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> Any:
        assert sort is None
        return replace(self, *args, **kwargs)

    monkeypatch.setattr(BulkOperationBuilder, "add_replace", add_replace)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No LOADMGR_* from the developer's shell, no CI's; a private LOADMGR_HOME per test.

    A test that reached the database without `mongo_uri` started an embedded server in
    this home: it is stopped here, so no test leaves a server behind.
    """
    for name in list(os.environ):
        if name.startswith("LOADMGR_"):
            monkeypatch.delenv(name)
    # Not the CI's that runs the tests: a run would record its context and append its
    # summary to the job's page (a test sets what it checks).
    from loadmgr.service.runs.ci import PROVIDERS

    for variable in ("GITHUB_STEP_SUMMARY", *(marker for _, marker, _ in PROVIDERS)):
        monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("LOADMGR_HOME", str(home))
    monkeypatch.setenv("LOADMGR_USER", "tester")
    monkeypatch.setenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS", "5000")
    monkeypatch.delenv("NO_COLOR", raising=False)
    yield home
    if (home / "db" / "server.json").exists():
        from loadmgr.store.embedded import EmbeddedServer

        EmbeddedServer(home).stop()


@pytest.fixture
def tick_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's ticks may start `local` runs (code from the database: opt-in)."""
    monkeypatch.setenv("LOADMGR_TICK_LOCAL", "1")


@dataclass
class MongoServer:
    uri: str
    process: subprocess.Popen[bytes] | None
    data_dir: Path | None


def start_secantus(
    data_dir: Path, *extra: str, standalone: bool = True
) -> tuple[subprocess.Popen[bytes], int]:
    """A SecantusDB server on a free loopback port, standalone (no oplog) as loadmgr's
    embedded server runs unless told otherwise; the caller stops it."""
    executable = Path(sys.executable).parent / "secantusd-py"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        port = free_port()
        log = open(data_dir.parent / f"secantus-{port}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [
                str(executable),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(data_dir),
                "--log-level",
                "WARNING",
                *([STANDALONE] if standalone else []),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def ready(port: int = port, process: subprocess.Popen[bytes] = process) -> bool:
            return port_open(port) or process.poll() is not None

        if wait_for(ready, timeout=60) and process.poll() is None:
            return process, port
        stop_process(process)  # lost the port race or too slow: never leave it behind
    raise RuntimeError("SecantusDB did not start")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM aimed at the main thread (SecantusDB ignores one its other threads get)."""
    if process.poll() is None:
        signal_main_thread(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """The real wire server for the session: LOADMGR_TEST_MONGO_URI, else SecantusDB."""
    external = os.environ.get("LOADMGR_TEST_MONGO_URI")
    if external:
        yield MongoServer(external, None, None)
        return
    data_dir = tmp_path_factory.mktemp("secantus") / "data"
    process, port = start_secantus(data_dir)
    try:
        yield MongoServer(f"mongodb://127.0.0.1:{port}/?directConnection=true", process, data_dir)
    finally:
        stop_process(process)


@pytest.fixture
def mongo_uri(mongo_server: MongoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points loadmgr at the real server, in a database of this test's own."""
    database = f"lm_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LOADMGR_MONGO_URI", mongo_server.uri)
    monkeypatch.setenv("LOADMGR_DATABASE", database)
    yield mongo_server.uri
    import pymongo

    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        mongo_server.uri, serverSelectionTimeoutMS=5000
    )
    try:
        client.drop_database(database)
    except Exception:  # the server may have been stopped by the test on purpose
        pass
    finally:
        client.close()


@pytest.fixture
def mongo_db(mongo_uri: str) -> Iterator[object]:
    """A pymongo Database handle on this test's database, to check what was stored."""
    import pymongo

    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    yield client[os.environ["LOADMGR_DATABASE"]]
    client.close()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        import json

        return json.loads(self.stdout)


def ok(result: CliResult) -> CliResult:
    """`result`, after checking the command succeeded without a traceback."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def error_line(result: CliResult, code: int) -> str:
    """The one `error:` line (only `hint:` lines may follow) of a command that exited `code`."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), lines
    assert all(line.startswith("hint: ") for line in lines[1:]), lines
    return lines[0]


def documents_of(db: Any, collections: Iterable[str]) -> dict[str, list[str]]:
    """Each collection's documents (without `_id`) as sorted JSON text: what a refused
    command must leave exactly as it was."""
    return {
        name: sorted(
            json.dumps(d, sort_keys=True, default=str) for d in db[name].find({}, {"_id": False})
        )
        for name in collections
    }


@functools.cache
def _command_tree() -> object:
    """loadmgr's click command tree, built once: Typer rebuilds it (~60 ms) on every call."""
    return typer.main.get_command(app)


def walk_commands() -> Iterator[tuple[list[str], Any]]:
    """Every command of the tree with its path (`["tests", "create"]`), groups included."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        if not hasattr(command, "list_commands"):
            return
        # Through click's API: the root loads its groups on use, so `.commands` is empty.
        ctx = command.make_context(command.name or "loadmgr", [], resilient_parsing=True)
        for name in sorted(command.list_commands(ctx)):
            yield from walk(command.get_command(ctx, name), [*path, name])

    yield from walk(_command_tree(), [])


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> object:
    """Run loadmgr in-process: `cli("tests", "list", "-o", "json")` → CliResult."""
    runner = CliRunner()
    tree = _command_tree()
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: tree)

    def invoke(*args: str, input: str | None = None) -> CliResult:
        result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke


@contextlib.contextmanager
def reaped(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """`process`, killed and reaped on the way out when the test left it running."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def loadmgr_command() -> list[str]:
    """The loadmgr console script as a separate process (for signals and real exits)."""
    script = Path(sys.executable).parent / "loadmgr"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "loadmgr"]


@pytest.fixture
def embedded_home(isolated_env: Path) -> Iterator[Path]:
    """A LOADMGR_HOME whose embedded server is stopped at the end of the test."""
    yield isolated_env
    from loadmgr.store.embedded import EmbeddedServer

    EmbeddedServer(isolated_env).stop()
    shutil.rmtree(isolated_env, ignore_errors=True)


def create_test_argv(
    name: str, target_url: str, locustfile: object, *extra: str
) -> tuple[str, ...]:
    """The argv of `tests create`, the command the tests build most: `extra` options last."""
    return (
        "tests", "create", "--name", name, "--target-url", target_url,
        "--locustfile", str(locustfile), *extra,
    )
