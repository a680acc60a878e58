"""`loadmgr notify` on mongomock: add, list, show, remove, test; every bad input refused
with its exit code and nothing written; the URL in no output and no document."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loadmgr import webhooks
from loadmgr.store.embedded import free_port
from tests.conftest import CliResult, documents_of, error_line, ok
from tests.secret_allowance import allow_secrets
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - the fixture
from tests.webhook_receiver import Answer, Receiver, receiving


@pytest.fixture(autouse=True)
def _machine_allows_these_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables (and files) these tests name: allowed, as a machine's owner allows them."""
    allow_secrets(monkeypatch, "TEAM_HOOK", "UNSET_HOOK", "NOT_A_URL", directory=tmp_path)

Cli = Callable[..., CliResult]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with receiving() as receiver:
        monkeypatch.setenv("TEAM_HOOK", receiver.url)
        yield receiver


@pytest.fixture
def db(mock_store: Captured) -> Any:  # noqa: F811 - the imported fixture
    assert mock_store.client is not None
    return mock_store.client["loadmgr"]


def secret_nowhere(receiver: Receiver, db: Any, *results: CliResult) -> None:
    stored = str(documents_of(db, db.list_collection_names()))
    for text in [stored, *(r.stdout + r.stderr for r in results)]:
        assert receiver.token not in text


def create_test(cli: Cli, tmp_path: Path, name: str = "checkout") -> dict[str, Any]:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("from locust import HttpUser\n")
    result = ok(cli("tests", "create", "--name", name, "--target-url", "http://127.0.0.1:1",
                    "--locustfile", str(locustfile), "--tag", "nightly", "-o", "json"))
    return result.json()


def test_add_list_show_remove(cli: Cli, db: Any, receiver: Receiver, tmp_path: Path) -> None:
    test = create_test(cli, tmp_path)
    added = ok(cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK", "--format", "slack",
                   "--on", "failed,change", "--on", "error", "--test", "checkout", "-o", "json"))
    doc = added.json()
    assert doc["name"] == "team" and doc["webhookEnv"] == "TEAM_HOOK"
    assert doc["webhookFile"] is None and doc["format"] == "slack"
    assert doc["on"] == ["failed", "error", "change"] and doc["testId"] == test["id"]
    assert doc["createdBy"] == "tester" and doc["createdAt"].endswith("Z")
    hook_file = tmp_path / "hook"
    hook_file.write_text(receiver.url + "\n")
    ok(cli("notify", "add", "ci", "--webhook-file", str(hook_file), "--tag", "nightly"))
    listed = ok(cli("notify", "list", "-o", "json")).json()
    assert [n["name"] for n in listed] == ["ci", "team"]
    assert listed[1] == doc
    assert listed[0]["webhookFile"] == str(hook_file) and listed[0]["tag"] == "nightly"
    assert listed[0]["on"] == ["failed", "inconclusive", "error", "aborted", "regression"]
    table = ok(cli("notify", "list"))
    assert "env:TEAM_HOOK" in table.stdout and f"file:{hook_file}" in table.stdout
    assert "test checkout" in table.stdout and "tests tagged nightly" in table.stdout
    shown = ok(cli("notify", "show", "team"))
    assert "env:TEAM_HOOK" in shown.stdout and "failed, error, change" in shown.stdout
    assert ok(cli("notify", "show", doc["id"], "-o", "json")).json() == doc
    assert ok(cli("notify", "list", "-q")).stdout.split() == [listed[0]["id"], doc["id"]]
    csv = ok(cli("notify", "list", "-o", "csv"))
    assert csv.stdout.startswith("id,") or "name" in csv.stdout.splitlines()[0]
    removed = ok(cli("notify", "remove", "team"))
    assert "removed notification 'team'" in removed.stderr
    assert error_line(cli("notify", "show", "team"), 4) == "error: notification 'team' not found"
    secret_nowhere(receiver, db, added, table, shown, csv)


def test_notify_test_sends_a_sample(cli: Cli, db: Any, receiver: Receiver) -> None:
    ok(cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK"))
    result = ok(cli("notify", "test", "team", "-o", "json"))
    outcome = result.json()
    assert outcome["ok"] is True and outcome["status"] == 200 and outcome["events"] == ["test"]
    [sample] = receiver.received
    assert sample["sample"] is True and sample["notification"] == "team"
    secret_nowhere(receiver, db, result)


def test_notify_test_of_a_refusing_receiver_is_exit_6_without_the_url(
    cli: Cli, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_SEC", 0.05)
    with receiving(Answer(404, body="no_service")) as receiver:
        monkeypatch.setenv("TEAM_HOOK", receiver.url)
        ok(cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK"))
        refused = cli("notify", "test", "team")
        debugged = cli("notify", "test", "team", "--debug")  # a traceback: still no URL
    assert debugged.exit_code == 6 and "Traceback" in debugged.stderr
    assert error_line(refused, 6) == (
        "error: notification 'team': the webhook did not take the sample: HTTP 404: no_service"
    )
    monkeypatch.setenv("TEAM_HOOK", f"http://127.0.0.1:{free_port()}/services/{receiver.secret}")
    down = cli("notify", "test", "team", "-o", "json")
    assert error_line(down, 6).endswith("did not take the sample: connection refused")
    assert down.json()["attempts"] == webhooks.MAX_ATTEMPTS
    monkeypatch.delenv("TEAM_HOOK")
    unset = cli("notify", "test", "team")
    assert error_line(unset, 2).startswith("error: environment variable TEAM_HOOK is not set")
    assert error_line(cli("notify", "test", "nope"), 4) == "error: notification 'nope' not found"
    secret_nowhere(receiver, db, refused, debugged, down, unset)


def test_notify_test_of_a_receiver_answering_a_byte_at_a_time_ends_at_the_bound(
    cli: Cli, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read gets its byte within the 5 s read timeout, so only a total bound ends it:
    # before, `notify test` waited for the whole answer (minutes).
    import time

    monkeypatch.setattr(webhooks, "DELIVERY_BOUND_SEC", 1.0)
    with receiving(Answer(trickle=0.2)) as receiver:
        monkeypatch.setenv("TEAM_HOOK", receiver.url)
        ok(cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK"))
        started = time.monotonic()
        slow = cli("notify", "test", "team")
        took = time.monotonic() - started
    assert took < 10, took
    assert error_line(slow, 6).endswith("did not take the sample: gave up after 1 s")
    secret_nowhere(receiver, db, slow)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "give exactly one of --webhook-env, --webhook-file"),
        (("--webhook-env", "TEAM_HOOK", "--webhook-file", "x"), 2,
         "give exactly one of --webhook-env, --webhook-file"),
        (("--webhook-env", "UNSET_HOOK"), 2, "environment variable UNSET_HOOK is not set"),
        (("--webhook-env", "NOT_A_URL"), 2,
         "environment variable NOT_A_URL does not hold an http(s) URL"),
        (("--webhook-env", "A-B"), 2, "invalid --webhook-env: must be an environment variable"),
        (("--webhook-file", "/nonexistent/hook"), 2, "/nonexistent/hook' is not in a directory"),
        (("--webhook-env", "TEAM_HOOK", "--on", "failed,boom"), 2,
         "invalid --on: unknown event 'boom' (events: failed, inconclusive, error, aborted, "
         "regression, change)"),
        (("--webhook-env", "TEAM_HOOK", "--on", ","), 2, "invalid --on: no event given"),
        (("--webhook-env", "TEAM_HOOK", "--format", "xml"), 2,
         "invalid --format: must be one of json, slack"),
        (("--webhook-env", "TEAM_HOOK", "--test", "checkout", "--tag", "x"), 2,
         "give --test or --tag, not both"),
        (("--webhook-env", "TEAM_HOOK", "--tag", " "), 2, "invalid --tag: must have 1 to 100"),
        (("--webhook-env", "TEAM_HOOK", "--test", "nope"), 4, "test 'nope' not found"),
        (("--webhook-env", "TEAM_HOOK", "--name-is-positional"), 2, "No such option"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    cli: Cli,
    db: Any,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    monkeypatch.setenv("NOT_A_URL", f"hooks.example.com/{receiver.token}")
    monkeypatch.delenv("UNSET_HOOK", raising=False)
    create_test(cli, tmp_path)
    before = documents_of(db, ["notifications", "load_tests"])
    result = cli("notify", "add", "team", *args)
    assert message in error_line(result, code)
    assert documents_of(db, ["notifications", "load_tests"]) == before
    secret_nowhere(receiver, db, result)


def test_a_name_in_use_is_exit_5(cli: Cli, db: Any, receiver: Receiver) -> None:
    ok(cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK"))
    before = documents_of(db, ["notifications"])
    again = cli("notify", "add", " team ", "--webhook-env", "TEAM_HOOK", "--format", "slack")
    assert error_line(again, 5) == "error: a notification named 'team' already exists"
    assert documents_of(db, ["notifications"]) == before
    # Another tenant may use the name.
    ok(cli("--tenant", "other", "notify", "add", "team", "--webhook-env", "TEAM_HOOK"))
    other = ok(cli("--tenant", "other", "notify", "list", "-o", "json")).json()
    assert [n["name"] for n in other] == ["team"]
    assert error_line(cli("--tenant", "x", "notify", "remove", "team"), 4).endswith(
        "not found in tenant 'x'"
    )
