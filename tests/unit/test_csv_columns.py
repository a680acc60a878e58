"""`-o csv` of every data command: the documented columns, in order, rows or none (issue 15,
item 4). docs/output.md is the list; this walks every command that takes `--output`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses

from loadmgr.cli.output import Renderer
from loadmgr.models import LoadTest
from tests.conftest import REPO, CliResult
from tests.fake_locust import FakeLocust, fake_locust
from tests.metrics_data import make_run, make_test, snapshots, store_all
from tests.secret_allowance import allow_secrets
from tests.unit.test_cli_unit import COMMANDS, Captured, mock_store  # noqa: F401 - a fixture
from tests.webhook_receiver import receiving


@pytest.fixture(autouse=True)
def _machine_allows_these_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables (and files) these tests name: allowed, as a machine's owner allows them."""
    allow_secrets(monkeypatch, "HOOK_URL")

Cli = Callable[..., CliResult]


def documented() -> dict[str, list[str]]:
    """docs/output.md: each command line of a `### ` heading → the columns of its block."""
    text = (REPO / "docs" / "output.md").read_text()
    columns: dict[str, list[str]] = {}
    for section in text.split("\n### ")[1:]:
        heading, _, body = section.partition("\n")
        block = re.search(r"```csv\n(.+?)\n```", body)
        for command in re.findall(r"`([^`]+)`", heading) if block else ():
            columns[command] = block[1].split(",")
    return columns


COLUMNS = documented()
DATA_COMMANDS = sorted(
    " ".join(path)
    for path, command in COMMANDS
    if any(
        "--output" in getattr(p, "opts", ()) and "csv" in str(getattr(p, "metavar", "csv"))
        for p in getattr(command, "params", ())
    )  # `export` writes TOML or JSON only: the format `apply` reads
)


def _command_of(heading: str) -> str:
    """A heading's command: its first three words when they name one (`db retention
    list`), else its first two (`runs show RUN`)."""
    words = heading.split()
    return next(
        (" ".join(words[:n]) for n in (3, 2) if " ".join(words[:n]) in DATA_COMMANDS),
        " ".join(words[:2]),
    )


def test_every_data_command_is_documented() -> None:
    listed = {_command_of(c) for c in COLUMNS}
    assert set(DATA_COMMANDS) <= listed, set(DATA_COMMANDS) - listed
    assert listed <= set(DATA_COMMANDS)  # nothing documented that does not exist


@pytest.fixture
def locust() -> Iterator[FakeLocust]:
    with fake_locust() as fake:
        yield fake


@pytest.fixture
def stored(mock_store: Captured) -> dict[str, str]:  # noqa: F811
    """A test with a finished run (intervals, final stats, metadata, tags) and an empty run."""
    assert mock_store.client is not None
    test = make_test("api", tags=["smoke", "nightly"], metadata={"team": "core"})
    run = make_run(test, metadata={"ticket": "42"}, thresholds=["p95<500ms"])
    empty = make_run(test, finalStats=None, status="Running")
    store_all(mock_store.client["loadmgr"], test, [run, empty], snapshots(run, 4))
    return {"test": test.id, "run": run.id, "empty": empty.id}


def _rows(result: CliResult) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(result.stdout))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


def _check(result: CliResult, command: str, code: int = 0) -> list[dict[str, str]]:
    assert result.exit_code == code, (command, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    header, rows = _rows(result)
    assert header == COLUMNS[command], command
    return rows


EMPTY_STORE = ["tests list", "runs list", "clusters list", "notify list", "db status"]


@pytest.mark.parametrize("command", EMPTY_STORE)
def test_a_header_even_without_rows(
    cli: Cli, mock_store: Captured, command: str  # noqa: F811
) -> None:
    rows = _check(cli(*command.split(), "-o", "csv"), command)
    if command == "clusters list":  # the built-in `local` is always there
        assert [(r["id"], r["builtIn"]) for r in rows] == [("local", "true")]
    else:
        assert rows == [] or command == "db status"


def test_every_data_command_writes_its_documented_columns(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    stored: dict[str, str],
    locust: FakeLocust,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, empty = stored["run"], stored["empty"]
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("from locust import HttpUser\n")
    ran: set[str] = set()

    def check(command: str, *args: str, code: int = 0) -> list[dict[str, str]]:
        """Run the documented `command` (its placeholder option, `--points N`, left out:
        given in `args`) with `args` after its name."""
        name = _command_of(command)
        ran.add(name)
        words, length = command.removesuffix(" --points N").split(), len(name.split())
        return _check(cli(*words[:length], *args, *words[length:], "-o", "csv"), command, code)

    created = check(
        "tests create",
        "--name", "second", "--target-url", "http://127.0.0.1:1",
        "--locustfile", str(locustfile), "--tag", "a", "--meta", "k=v",
    )
    assert created[0]["tags"] == "a" and created[0]["metadata"] == "k=v"
    assert check("tests update", "second", "--description", "d")[0]["description"] == "d"
    listed = check("tests list")
    assert [r["name"] for r in listed] == ["second", "api"]
    assert listed[1]["tags"] == "smoke;nightly" and listed[1]["metadata"] == "team=core"
    assert check("tests show", "api")[0]["defaultUsers"] == "10"
    assert check("tests baseline", "api", run)[0]["baselineRunId"] == run
    trend = check("tests trend", "api", "--metric", "p95")
    assert [(r["runId"], r["metric"], r["value"]) for r in trend] == [(run, "p95", "120.0")]
    assert check("tests trend --acks", "api") == []

    runs = check("runs list")
    assert {r["id"] for r in runs} == {run, empty}
    shown = check("runs show", run)[0]
    assert shown["metadata"] == "ticket=42" and shown["thresholds"] == "p95<500ms"
    assert shown["finalStats.totals.p95ResponseMs"] == "120.0"
    assert shown["startedAt"] == "2026-03-01T12:00:00.000Z"
    assert check("runs show", empty)[0]["finalStats.totals.requests"] == ""
    check("runs follow", run)
    check("runs stop", run)

    summary = check("metrics show --view summary", run)[0]
    assert summary["thresholdResults.expression"] == "" and summary["p95ResponseMs"] == "120.0"
    assert len(check("metrics show --view timeseries", run)) == 4
    assert check("metrics show --view timeseries", empty) == []
    assert len(check("metrics show --view timeseries --points N", run, "--points", "2")) == 2
    assert len(check("metrics show --view timeseries --points N", run, "--points", "9")) == 4
    assert len(check("metrics show --view requests", run)) == 2
    assert len(check("metrics show --view errors", run)) == 2
    assert check("metrics show --view errors", empty) == []
    assert check("metrics show --view server", run) == []  # it reads none: the header
    assert len(check("metrics export", run)) == 4
    assert check("metrics export", empty) == []
    assert len(check("metrics export --requests", run)) == 8
    compared = check("metrics compare", run, run)
    assert {r["regression"] for r in compared} == {"false"}

    check("clusters add", "k8s", "--url", locust.url)
    assert [r["id"] for r in check("clusters list")] == ["local", "k8s"]
    assert check("clusters show", "k8s")[0]["auth.type"] == "none"
    assert check("clusters check", "k8s")[0]["reachable"] == "true"

    with responses.RequestsMock(assert_all_requests_are_fired=False) as prom:
        prom.get(
            "http://prom.test/api/v1/status/buildinfo",
            json={"status": "success", "data": {"version": "2.42.0"}},
        )
        prom.get(
            "http://prom.test/api/v1/query",
            json={"status": "success", "data": {"resultType": "scalar", "result": [1.0, "2"]}},
        )
        prom.add_passthru("http://127.0.0.1")
        check("sources add", "prom", "--prometheus", "http://prom.test")
        assert [r["id"] for r in check("sources list")] == ["prom"]
        assert check("sources show", "prom")[0]["type"] == "prometheus"
        assert check("sources check", "prom")[0]["queryOk"] == "true"

    added = check(
        "schedules add", "api", "--cron", "0 3 * * *", "--cluster", "k8s", "--meta", "a=b",
    )[0]
    assert added["overrides.cluster"] == "k8s" and added["overrides.metadata"] == "a=b"
    assert added["nextOccurrences"] == "" and added["paused"] == "false"
    assert [r["name"] for r in check("schedules list")] == ["api"]
    assert len(check("schedules show", "api")[0]["nextOccurrences"].split(";")) == 5
    assert check("schedules history", "api") == []
    assert check("schedules tick", "--now", added["createdAt"]) == []
    # A day and an hour after its first slot, both slots are past the grace: missed.
    late = datetime.fromisoformat(added["nextSlotAt"]) + timedelta(days=1, hours=1)
    ticked = check("schedules tick", "--now", late.isoformat())
    assert [r["outcome"] for r in ticked] == ["missed", "missed"]
    assert [r["id"] for r in check("schedules history", "api")] == [
        r["id"] for r in reversed(ticked)
    ]
    assert check("schedules pause", "api")[0]["paused"] == "true"
    assert check("schedules resume", "api")[0]["paused"] == "false"

    # A run that cannot start is printed as recorded (Failed) before exit 6.
    check("clusters add", "gone", "--url", "http://127.0.0.1:1")
    failed = check("runs start", "api", "--cluster", "gone", code=6)[0]
    assert failed["status"] == "Failed"

    with receiving() as receiver:
        monkeypatch.setenv("HOOK_URL", receiver.url)
        added = check("notify add", "team", "--webhook-env", "HOOK_URL", "--tag", "smoke")
        assert added[0]["webhookEnv"] == "HOOK_URL" and added[0]["on"]
        assert [r["name"] for r in check("notify list")] == ["team"]
        check("notify show", "team")
        assert check("notify test", "team")[0]["ok"] == "true"

    declared = tmp_path / "loadtests.toml"
    declared.write_text(
        f'[tests.api2]\ntarget_url = "http://127.0.0.1:1"\nlocustfile = '
        f'"{locustfile.name}"\n[tests.second]\ntarget_url = "http://127.0.0.1:1"\n'
        f'locustfile = "{locustfile.name}"\nusers = 7\n'
    )
    applied = check("apply", "-f", str(declared))
    assert [(r["action"], r["name"], r["key"]) for r in applied][:2] == [
        ("create", "api2", ""),
        ("update", "second", "locustfile"),
    ]
    assert ["managed by", "true"] == [applied[-1]["key"], applied[-1]["applied"]]
    assert check("db status")[0]["running"] == "false"
    assert check("db migrate --dry-run", "--dry-run")[0]["dryRun"] == "true"
    check("db migrate")
    policy = check("db retention set", "--tag", "nightly", "--keep-detail", "30d")[0]
    assert policy["target"] == "tag:nightly" and policy["downsample"] == "-"
    assert check("db retention list")[0]["keepDetail"] == "30d"
    assert check("db prune")[0]["unfinished"] == "false"
    # A stepped run (issue 27): its steps are the points `tests capacity` fits.
    db = mock_store.client["loadmgr"]
    test = LoadTest.model_validate(db["load_tests"].find_one({"id": stored["test"]}))
    windows = [{"step": i + 1, "users": n, "rps": 10.0 * n / (1 + 0.1 * (n - 1)),
                "p95ResponseMs": 50.0} for i, n in enumerate((1, 2, 4, 8))]  # fmt: skip
    store_all(db, None, [make_run(test, stepWindows=windows)])
    points = check("tests capacity", "api")
    assert [r["users"] for r in points] == ["1.0", "2.0", "4.0", "8.0"]
    # `db start` starts a server: its document is `db status`'s (one function writes both).
    ran.add("db start")
    assert ran == set(DATA_COMMANDS)


def test_columns_follow_the_declaration_not_the_data(capsys: Any) -> None:
    Renderer("csv", quiet=False).many(
        [{"b": {"c": 1}, "extra": 2}, {"a": [1, None, True]}],
        [],
        csv_columns=("a", "b.c", "missing.deep"),
    )
    assert capsys.readouterr().out == "a,b.c,missing.deep\n,1,\n1;;true,,\n"
