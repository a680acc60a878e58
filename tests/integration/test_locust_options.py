"""Locust's own options (issue 22, item 5): `--locust-option` stored on the test and the run,
handed to the real local Locust (tags, a locustfile's custom argument) and to a remote
master (its custom argument, through /swarm); those loadmgr owns refused; and the caller's
~/.locust.conf never read unless asked (`--locust-config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadmgr.models.locust_options import OWNED
from tests.conftest import documents_of, error_line, ok
from tests.locust_servers import running_locust

pytestmark = pytest.mark.integration

COLLECTIONS = ("load_tests", "load_test_runs", "metrics_timeseries", "cluster_leases")
# Two tagged tasks; the `items` one asks for the path a custom argument names (by default
# one that fails, so a run without the argument shows failures).
TAGGED = """
from locust import HttpUser, constant, events, tag, task


@events.init_command_line_parser.add_listener
def _arguments(parser):
    parser.add_argument("--item-path", default="/missing")


class TaggedUser(HttpUser):
    wait_time = constant(0.1)

    @tag("items")
    @task
    def items(self):
        self.client.get(self.environment.parsed_options.item_path, name="items")

    @tag("home")
    @task
    def home(self):
        self.client.get("/", name="home")
"""


def _names(run: dict[str, Any]) -> dict[str, int]:
    return {e["name"]: e["numFailures"] for e in run["finalStats"]["requestStats"]}


@pytest.fixture
def tagged(cli: Any, mongo_db: Any, target_server: Any, tmp_path: Path) -> Path:
    path = tmp_path / "tagged.py"
    path.write_text(TAGGED)
    return path


@pytest.fixture
def headless_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME whose ~/.locust.conf would make every local Locust headless (and fail)."""
    home = tmp_path / "person"
    home.mkdir()
    (home / ".locust.conf").write_text("headless = true\nusers = 1\n")
    monkeypatch.setenv("HOME", str(home))
    return home


def test_options_reach_the_local_locust_and_are_recorded(
    cli: Any, tagged: Path, target_server: Any, headless_home: Path
) -> None:
    created = ok(cli(
        "tests", "create", "--name", "tagged", "--target-url", target_server.url,
        "--locustfile", str(tagged), "--users", "2", "--spawn-rate", "2", "--duration", "3s",
        "--locust-option", "tags=items", "--locust-option", "--item-path=/api/items",
        "-o", "json",
    )).json()  # fmt: skip
    assert created["locustOptions"] == {"tags": "items", "item-path": "/api/items"}
    run = ok(cli("runs", "start", "tagged", "--workers", "1", "-o", "json")).json()
    assert run["status"] == "Finished", run.get("error")
    assert _names(run) == {"items": 0}  # only the tagged task, on the argument's path
    assert run["locustOptions"] == created["locustOptions"]
    # One run: its own options over the test's.
    other = ok(cli("runs", "start", "tagged", "--workers", "0", "--locust-option",
                   "tags=home", "-o", "json")).json()  # fmt: skip
    assert _names(other) == {"home": 0}
    assert other["locustOptions"] == {"tags": "home", "item-path": "/api/items"}


def test_a_locust_config_is_read_only_when_asked(
    cli: Any, tagged: Path, target_server: Any, tmp_path: Path, headless_home: Path
) -> None:
    ok(cli("tests", "create", "--name", "tagged", "--target-url", target_server.url,
           "--locustfile", str(tagged), "--users", "1", "--spawn-rate", "1", "--duration", "3s",
           "--locust-option", "tags=items", "-q"))  # fmt: skip
    config = tmp_path / "team.conf"
    config.write_text("item-path = /api/items\n")
    run = ok(cli("runs", "start", "tagged", "--workers", "0", "--locust-config", str(config),
                 "-o", "json")).json()  # fmt: skip
    assert run["status"] == "Finished", run.get("error")
    assert _names(run) == {"items": 0}
    plain = cli("runs", "start", "tagged", "--workers", "0", "-o", "json")
    assert plain.exit_code == 1  # no config read: the default path, /missing, fails
    items = plain.json()["finalStats"]["requestStats"][0]
    assert items["name"] == "items" and items["numFailures"] == items["numRequests"] > 0


def test_a_remote_master_takes_a_custom_argument_through_swarm(
    cli: Any, tagged: Path, target_server: Any, tmp_path: Path
) -> None:
    with running_locust(tagged, workers=1, log_dir=tmp_path / "remote") as remote:
        ok(cli("clusters", "add", "remote", "--url", remote.base_url, "-q"))
        ok(cli("tests", "create", "--name", "tagged", "--target-url", target_server.url,
               "--locustfile", "tagged.py", "--cluster", "remote", "--users", "2",
               "--spawn-rate", "2", "--duration", "3s",
               "--locust-option", "item-path=/api/items", "-q"))  # fmt: skip
        run = ok(cli("runs", "start", "tagged", "-o", "json")).json()
        assert run["status"] == "Finished", run.get("error")
        assert _names(run) == {"items": 0, "home": 0}  # the argument reached the worker
        line = error_line(cli("runs", "start", "tagged", "--locust-option", "tags=home"), 2)
        assert "through its web API" in line


@pytest.mark.parametrize("key", sorted(OWNED) + ["u", "t", "-H"])
def test_options_loadmgr_owns_are_refused(cli: Any, mongo_db: Any, key: str) -> None:
    before = documents_of(mongo_db, COLLECTIONS)
    line = error_line(cli("tests", "create", "--name", "x", "--target-url", "http://h",
                          "--locustfile", "remote.py", "--cluster", "local",
                          "--locust-option", f"{key}=1"), 2)  # fmt: skip
    assert "is set by loadmgr" in line
    assert documents_of(mongo_db, COLLECTIONS) == before


@pytest.mark.usefixtures("tick_local")
def test_a_schedule_stores_locust_options_and_its_runs_use_them(
    cli: Any, mongo_db: Any, tagged: Path, target_server: Any
) -> None:
    from tests.integration.test_schedules import next_slot, tick, wait_ended

    ok(cli("tests", "create", "--name", "tagged", "--target-url", target_server.url,
           "--locustfile", str(tagged), "--users", "2", "--spawn-rate", "2", "--duration", "3s",
           "--locust-option", "item-path=/missing", "-q"))  # fmt: skip
    ok(cli("clusters", "add", "elsewhere", "--url", "http://127.0.0.1:1", "-q"))
    before = documents_of(mongo_db, (*COLLECTIONS, "schedules"))
    for bad, words in (("users=5", "is set by loadmgr"), ("tags=a", "through its web API")):
        line = error_line(cli("schedules", "add", "tagged", "--cron", "* * * * *",
                              "--locust-option", bad, "--cluster", "elsewhere"), 2)  # fmt: skip
        assert words in line
    assert documents_of(mongo_db, (*COLLECTIONS, "schedules")) == before
    schedule = ok(cli("schedules", "add", "tagged", "--cron", "* * * * *", "--workers", "0",
                      "--locust-option", "tags=items", "--locust-option", "item-path=/api/items",
                      "-o", "json")).json()  # fmt: skip
    assert schedule["overrides"]["locustOptions"] == {"tags": "items", "item-path": "/api/items"}
    assert "item-path" in ok(cli("schedules", "show", "tagged")).stdout
    [slot] = tick(cli, next_slot(cli, "tagged"))
    assert slot["outcome"] == "started", slot
    run = wait_ended(mongo_db, slot["runId"])
    assert run["status"] == "Finished", run.get("error")
    assert run["locustOptions"] == {"tags": "items", "item-path": "/api/items"}  # over the test's
    assert _names(run) == {"items": 0}  # only the tagged task, on the schedule's path


@pytest.mark.parametrize(
    ("stored", "cluster"),
    [({"html": "report.html"}, "local"), ({"config": "x.conf"}, "local"), ({"f": "x.py"}, "local"),
     ({"logf": "x.log"}, "local"), ({"html_file": "report.html"}, "remote"),
     ({"loglevel": "DEBUG"}, "remote")],
)  # fmt: skip
def test_a_stored_option_loadmgr_refuses_fails_the_run_before_anything_is_sent(
    cli: Any, mongo_db: Any, tagged: Path, stored: dict[str, str], cluster: str
) -> None:
    """Whoever writes the database may store any key: checked again when a run is planned."""
    ok(cli("clusters", "add", "remote", "--url", "http://127.0.0.1:1", "-q"))
    ok(cli("tests", "create", "--name", "tagged", "--target-url", "http://h",
           "--locustfile", str(tagged), "--cluster", cluster, "-q"))  # fmt: skip
    mongo_db.load_tests.update_one({"name": "tagged"}, {"$set": {"locustOptions": stored}})
    before = documents_of(mongo_db, COLLECTIONS)
    line = error_line(cli("runs", "start", "tagged"), 2)
    assert f"--locust-option {next(iter(stored))} " in line
    assert documents_of(mongo_db, COLLECTIONS) == before
