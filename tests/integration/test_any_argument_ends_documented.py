"""Issue 11 #12: the CLI fuzzed. Every command of the tree (walked through click's API, as
the help-text test does) gets hypothesis-generated argument vectors: odd strings, huge and
non-finite numbers, undecodable bytes, empty values, injection shapes, odd paths. For each:
the exit code is a documented one (never 70), nothing prints a traceback, and a usage error
(exit 2) wrote nothing to the database.

Against the real wire server: mongomock would hide what pymongo's own BSON encoding refuses
(an integer past 8 bytes, a string that is not UTF-8), which is where exit 70 came from.

Not fuzzed: `runs start` and `runs collect` (they start Locust or a collector; their
options are fuzzed through `plan_run` by the bad-input tests), `db start` and `db stop`
(they start and stop the embedded server). `runs stop` and `runs follow` are fuzzed: the
only runs here are finished, so neither reaches Locust. `clusters check` reaches the one
registered cluster, a closed loopback port (connection refused at once).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.cli.main import app
from loadmgr.store.embedded import free_port
from tests.conftest import CliResult
from tests.metrics_data import make_run, make_test, snapshots, store_all

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 130}
NOT_FUZZED = {("runs", "start"), ("runs", "collect"), ("db", "start"), ("db", "stop")}
# Bounded for the suite; LOADMGR_FUZZ_EXAMPLES=200 digs deeper by hand.
EXAMPLES_PER_COMMAND = int(os.environ.get("LOADMGR_FUZZ_EXAMPLES", "12"))

SEED_TEST = make_test("api", locustClusterId="k8s", locustfile="deployed.py")
SEED_RUN = make_run(SEED_TEST)
EXISTING = ["api", "k8s", SEED_RUN.id, SEED_RUN.id[:8], SEED_TEST.id]
# Bytes that are not UTF-8, as Python hands them over in argv (surrogate escapes).
BAD_UTF8 = b"bad\xff\xfeutf".decode("utf-8", "surrogateescape")

ODD_VALUES = [
    # empty and blank
    "", " ", "\t", "-", "--",
    # injection shapes
    "$where", '{"$gt": ""}', '{"$ne": null}', "this.a > 0", "a.b", ".*", "^", "$", "../",
    "../../../etc/passwd", "; rm -rf /", "$(id)", "`id`", "%s%n", "{0}",
    # terminal steering
    "\x1b]0;title\x07", "\x1b]8;;http://evil\x1b\\x", "\x1b[31mred", "\x9b2J", "\u202eevil",
    "\x7f", "line\nbreak", "cr\rret",
    # numbers: huge, negative, non-finite, odd
    "0", "-1", "1", "2.5", "-0", "1e308", "1e-300", "-1e308", "nan", "inf", "-inf", "NaN",
    "99999999999999999999", "-99999999999999999999", "9" * 400, "0x10", "1_000", "１２",
    # durations, dates, thresholds, pairs
    "5m", "1h30m", "10000000d", "99999999999999999999d", "2026-11-01", "9999-12-31T23:59:59",
    "p95<500ms", "error_rate<1%", "rps>=1e308", "GET /:p95<nan", "p95=10%", "p95=inf%",
    "k=v", "$k=v", "a.b=c", "=v", "k=",
    # URLs and URIs, with and without credentials
    "http://127.0.0.1:1", "http://u:p@127.0.0.1:1/", "ftp://x", "mongodb://u:p@h", "notaurl",
    # values that exist, so commands also reach real documents
    "api", "k8s", "local", SEED_RUN.id, SEED_RUN.id[:8], SEED_TEST.id,
    # words options know
    "json", "jsonl", "csv", "table", "yaml", "timeseries", "requests", "errors", "wait",
    "skip", "fail", "Finished", "Running",
    # not text
    BAD_UTF8, "\udcff", "\ud800",
    # long
    "x" * 3000, "🚀" * 300,
]
# Path-like option values: all inside the sandbox directory the test runs in (or devices
# that are only read), so nothing is written outside it.
PATH_OPTIONS = {
    "--locustfile", "--html", "--junit", "--config", "--ca-bundle", "--header-file",
    "--mongo-password-file", "--mongo-tls-ca-file", "--mongo-tls-cert-key-file", "--webhook-file",
}
PATH_VALUES = [
    "out.html", "out.xml", "../out.html", "missing/dir/out.xml", ".", "..", "", " ",
    "locustfile.py", "broken.py", "fifo", "/dev/null", "/dev/zero", "nope.py", "\x1b]0;x.py",
    BAD_UTF8 + ".py", "config.toml", "bad.toml", "secret",
]
GLOBAL_OPTIONS: dict[str, list[str]] = {
    "--tenant": ["", " ", "t1", "$where", BAD_UTF8, "x" * 201],
    "--env": ["", "e1", '{"$gt": ""}'],
    "--user": ["", "\x1b[31mme", "x" * 3000],
    "--database": ["", "lm_fuzz_other", "a/b", "$x", "x" * 70, "a.b"],
    "--profile": ["", "nope", "default", BAD_UTF8],
    "--server-selection-timeout": ["0", "-1", "1e20", "99999999999999999999", "nan", "1"],
    # Malformed only: a well-formed URI to nowhere would wait out the server selection.
    "--mongo-uri": ["", "notauri", "MONGODB://u:p@h/", "mongodb://u:p@h:99999/", "x:y@z"],
}


def fuzzed_commands() -> list[tuple[list[str], Any]]:
    """Every leaf command of the tree but those not fuzzed, through click's API."""
    root = typer.main.get_command(app)
    found: list[tuple[list[str], Any]] = []

    def walk(command: Any, path: list[str]) -> None:
        if not hasattr(command, "list_commands"):
            if tuple(path) not in NOT_FUZZED:
                found.append((path, command))
            return
        ctx = command.make_context(command.name or "loadmgr", [], resilient_parsing=True)
        for name in sorted(command.list_commands(ctx)):
            walk(command.get_command(ctx, name), [*path, name])

    walk(root, [])
    return found


COMMANDS = fuzzed_commands()


def values_for(option: str | None) -> st.SearchStrategy[str]:
    if option in PATH_OPTIONS:
        return st.sampled_from(PATH_VALUES)
    # NUL cannot be in a real argv (exec refuses it); everything else can.
    free_text = st.text(max_size=16).filter(lambda text: "\x00" not in text)
    numbers = st.integers().map(str) | st.floats().map(repr)
    return st.sampled_from(ODD_VALUES) | free_text | numbers


@st.composite
def argvs(draw: st.DrawFn, path: list[str], command: Any) -> list[str]:
    """An argument vector for `command`: some of its options, its arguments, maybe globals."""
    argv = [*path]
    for param in command.params:
        if param.param_type_name == "option":
            option = param.opts[0]
            # Few options at a time, so that examples also get past the parsing.
            if option in ("--help", "-h") or draw(st.integers(0, 2)) != 0:
                continue
            if getattr(param, "is_flag", False):
                argv.append(option)
                continue
            repeats = draw(st.integers(1, 3)) if getattr(param, "multiple", False) else 1
            for _ in range(repeats):
                argv += [option, draw(values_for(option))]
        elif param.param_type_name == "argument":
            if not param.required and not draw(st.booleans()):
                continue
            count = draw(st.integers(1, 3)) if param.nargs == -1 else 1
            # Half the time a test, cluster or run that exists, to reach past the lookup.
            refs = st.sampled_from(EXISTING) | values_for(None)
            argv += [draw(refs) for _ in range(count)]
    if draw(st.integers(0, 3)) == 0:
        option = draw(st.sampled_from(sorted(GLOBAL_OPTIONS)))
        value = draw(st.sampled_from(GLOBAL_OPTIONS[option]))
        # Global options may stand before the command or after it.
        argv = [option, value, *argv] if draw(st.booleans()) else [*argv, option, value]
    return argv


# Another test's own database (tests/conftest.py `mongo_uri`): the session's server is
# shared by the tests of one worker, and a process an earlier test started (a collector
# finishing its run's end) may still write there; no fuzzed command is pointed at one.
OTHER_TESTS_DATABASE = re.compile(r"lm_[0-9a-f]{12}")


class Database:
    """Every database on the server but the system ones and other tests' own, as a digest
    of its documents."""

    def __init__(self, uri: str, own: str) -> None:
        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=5000
        )
        self.own = own

    def digest(self) -> dict[str, str]:
        """Each database's digest, by name (so a change names where it was)."""
        digests = {}
        for name in sorted(self.client.list_database_names()):
            if name in ("admin", "config", "local"):
                continue
            if name != self.own and OTHER_TESTS_DATABASE.fullmatch(name):
                continue
            state = hashlib.sha256()
            database = self.client[name]
            for collection in sorted(database.list_collection_names()):
                documents = database[collection].find({}, {"_id": False})
                for text in sorted(json.dumps(d, sort_keys=True, default=str) for d in documents):
                    state.update(f"{collection}:{text}\n".encode())
            digests[name] = state.hexdigest()
        return digests


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory two levels down, so `../` paths stay inside tmp_path."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "locustfile.py").write_text("from locust import HttpUser\n")
    (work / "broken.py").write_text("def broken(:\n")
    (work / "config.toml").write_text('[profiles.default]\ntenant = "t1"\n')
    (work / "bad.toml").write_text("[profiles\n")
    secret = work / "secret"
    secret.write_text("hunter2\n")
    secret.chmod(0o600)
    os.mkfifo(work / "fifo")
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def database(mongo_uri: str, mongo_db: Any) -> Iterator[Database]:
    """The server, with a test on a registered cluster and a finished run with intervals."""
    seed(mongo_db)
    db = Database(mongo_uri, os.environ["LOADMGR_DATABASE"])
    yield db
    db.client.drop_database("lm_fuzz_other")
    db.client.close()


def seed(mongo_db: Any) -> None:
    # Seeded by hand at this loadmgr's schema, so that no command migrates it first (a
    # migration is a write, which the exit-2 check below would rightly flag).
    store_all(mongo_db)
    if mongo_db.load_tests.find_one({"id": SEED_TEST.id}) is None:
        mongo_db.load_tests.delete_many({"name": SEED_TEST.name})
        mongo_db.load_tests.insert_one(SEED_TEST.to_document())
    if mongo_db.locust_clusters.find_one({"id": "k8s"}) is None:
        # A closed loopback port: `clusters check` is refused at once.
        mongo_db.locust_clusters.insert_one(
            {"id": "k8s", "baseUrl": f"http://127.0.0.1:{free_port()}", "auth": {"type": "none"}}
        )
    if mongo_db.load_test_runs.find_one({"id": SEED_RUN.id}) is None:
        mongo_db.load_test_runs.insert_one(SEED_RUN.model_dump(mode="python"))
        mongo_db.metrics_timeseries.insert_many(
            [s.model_dump(mode="python") for s in snapshots(SEED_RUN, 5)]
        )


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS]
)
def test_fuzzed_arguments_end_in_a_documented_way(
    cli: Cli,
    database: Database,
    mongo_db: Any,
    sandbox: Path,
    path: list[str],
    command: Any,
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_COMMAND,
        deadline=None,
        database=None,  # no example database written into the repository
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(argv=argvs(path, command))
    def one(argv: list[str]) -> None:
        seed(mongo_db)  # an earlier example may have deleted what the next should find
        before = database.digest()
        result = cli(*argv)
        output = result.stdout + result.stderr
        assert result.exit_code in DOCUMENTED_EXIT_CODES, (argv, output[-2000:])
        if "--debug" not in argv:  # a global option anywhere on the line (even as a value)
            assert "Traceback" not in output, (argv, output[-2000:])
        assert "error: unexpected " not in result.stderr, (argv, result.stderr[-2000:])
        if result.exit_code == 2:
            after = database.digest()
            changed = sorted(n for n in {*before, *after} if before.get(n) != after.get(n))
            assert not changed, f"exit 2 but {changed} changed: {argv}"

    one()
