"""Notifications end to end: real runs on the `local` cluster (real Locust, the real
wire server), a webhook receiver on loopback, foreground and background collectors."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from loadmgr.service.notifications.subscriptions import NOTIFY_BOUND_SEC
from loadmgr.store.embedded import free_port
from tests.integration.test_runs import create_test
from tests.polling import wait_for
from tests.secret_allowance import allow_secrets
from tests.webhook_receiver import Answer, Receiver, receiving


@pytest.fixture(autouse=True)
def _machine_allows_these_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables (and files) these tests name: allowed, as a machine's owner allows them."""
    allow_secrets(monkeypatch, "TEAM_HOOK", "SILENT_HOOK", "DOWN_HOOK", directory=tmp_path)

pytestmark = pytest.mark.integration

PASSING = ("--threshold", "error_rate<50%")
FAILING = ("--threshold", "max<0.001ms")


def run(cli: Any, test: str, *extra: str) -> Any:
    return cli("runs", "start", test, "--interval", "2", "--workers", "0", *extra, "-o", "json")


def everything(mongo_db: Any) -> str:
    return json.dumps(
        {n: list(mongo_db[n].find({}, {"_id": False})) for n in mongo_db.list_collection_names()},
        default=str,
    )


def no_secret(receiver: Receiver, *texts: str) -> None:
    for text in texts:
        assert receiver.token not in text, "the webhook URL leaked"


def test_foreground_runs_notify_matching_ends_once(
    cli, mongo_db, target_server, monkeypatch, tmp_path
):
    with receiving() as team, receiving() as changes:
        monkeypatch.setenv("TEAM_HOOK", team.url)
        hook_file = tmp_path / "changes-hook"
        hook_file.write_text(changes.url)
        # Verdicts and messages are checked, not the runs' length: short runs serve.
        create_test(cli, target_server.url, "judged", "--tag", "nightly", "--duration", "2s")
        added = [
            cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK", "--test", "judged"),
            cli("notify", "add", "changes", "--webhook-file", str(hook_file), "--on", "change",
                "--tag", "nightly", "--format", "slack"),
        ]
        assert all(r.exit_code == 0 for r in added), [r.stderr for r in added]
        passed = run(cli, "judged", *PASSING)
        assert passed.exit_code == 0, passed.stderr
        assert passed.json()["verdict"] == "passed" and passed.json()["notifications"] is None
        failed = run(cli, "judged", *FAILING)
        assert failed.exit_code == 1, failed.stderr  # the verdict's code, as without webhooks
        failed_run = failed.json()
        # Exactly one message per matching run end, none for the passed first run.
        assert len(team.received) == 1 and len(changes.received) == 1
        body = team.received[0]
        assert body["schema"] == "loadmgr.notification/v1" and body["sample"] is False
        assert body["notification"] == "team" and body["events"] == ["failed"]
        assert body["run"]["id"] == failed_run["id"] and body["run"]["verdict"] == "failed"
        assert body["run"]["status"] == "Finished" and body["run"]["stopReason"] == "duration"
        assert body["run"]["reasons"] and "max<0.001ms" in body["run"]["reasons"][0]
        assert body["test"]["name"] == "judged"
        totals = failed_run["finalStats"]["totals"]
        assert body["numbers"]["requests"] == totals["requests"] > 0
        assert body["numbers"]["rps"] == totals["rps"]
        assert body["numbers"]["p95Ms"] == totals["p95ResponseMs"]
        assert body["command"] == f"loadmgr runs show {failed_run['id']}"
        slack = changes.received[0]
        assert set(slack) == {"text", "blocks"} and "judged" in slack["text"]
        assert "previous run: passed" in json.dumps(slack)
        # Recorded on the run, shown by `runs show`, printed by `runs start` as stored.
        stored = mongo_db.load_test_runs.find_one({"id": failed_run["id"]})
        assert stored["verdict"] == "failed"
        assert sorted((o["name"], o["ok"], o["events"][0]) for o in stored["notifications"]) == [
            ("changes", True, "change"),
            ("team", True, "failed"),
        ]
        assert [o["name"] for o in failed_run["notifications"]] == [
            o["name"] for o in stored["notifications"]
        ]
        assert "notification 'team' (failed): sent" in failed.stderr
        shown = cli("runs", "show", failed_run["id"])
        assert "team (failed): sent (HTTP 200, 1 attempt" in shown.stdout
        # Back to passing: a change (to the file's subscription), not a failure.
        again = run(cli, "judged", *PASSING)
        assert again.exit_code == 0, again.stderr
        assert len(team.received) == 1 and len(changes.received) == 2
        outputs = [r.stdout + r.stderr for r in (*added, passed, failed, again, shown)]
        no_secret(team, everything(mongo_db), *outputs)
        no_secret(changes, everything(mongo_db), *outputs)


def test_a_detached_run_is_notified_by_its_background_collector(
    cli, mongo_db, target_server, monkeypatch, isolated_env
):
    with receiving() as receiver:
        monkeypatch.setenv("TEAM_HOOK", receiver.url)
        create_test(cli, target_server.url, "nightly")
        assert cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK").exit_code == 0
        started = cli("runs", "start", "nightly", "--detach", "--interval", "2",
                      "--workers", "0", *FAILING, "-q")
        assert started.exit_code == 0, started.stderr
        run_id = started.stdout.strip()
        assert receiver.received == []  # returned at once: the run is still going

        def recorded() -> Any:
            doc = mongo_db.load_test_runs.find_one({"id": run_id})
            return doc if doc and doc.get("notifications") else None

        assert wait_for(recorded, timeout=120)
        doc = recorded()
        assert doc["status"] == "Finished" and doc["verdict"] == "failed"
        assert [(o["name"], o["ok"], o["events"]) for o in doc["notifications"]] == [
            ("team", True, ["failed"])
        ]
        assert len(receiver.received) == 1
        assert receiver.received[0]["run"]["id"] == run_id
        log = (isolated_env / "logs" / f"run-{run_id}.log").read_text()
        assert "notification 'team' (failed): sent" in log
        no_secret(receiver, log, everything(mongo_db), started.stdout + started.stderr)


def test_down_and_silent_receivers_delay_the_end_by_at_most_the_bound(
    cli, mongo_db, target_server, monkeypatch
):
    # One receiver accepts and never answers; nothing listens for the other.
    with receiving(Answer(hang=True)) as silent:
        monkeypatch.setenv("SILENT_HOOK", silent.url)
        monkeypatch.setenv("DOWN_HOOK", f"http://127.0.0.1:{free_port()}/services/{silent.token}")
        create_test(cli, target_server.url, "judged", "--duration", "2s")
        for name, variable in (("silent", "SILENT_HOOK"), ("down", "DOWN_HOOK")):
            added = cli("notify", "add", name, "--webhook-env", variable, "--format", "slack")
            assert added.exit_code == 0, added.stderr
        result = run(cli, "judged", *FAILING)
        returned = datetime.now(timezone.utc)
    assert result.exit_code == 1, result.stderr  # the run's own verdict, unchanged
    finished = datetime.fromisoformat(result.json()["finishedAt"].replace("Z", "+00:00"))
    # From the recorded end to the command's return: the notifications (bounded), and
    # stopping the local Locust, which takes a moment of its own.
    assert (returned - finished).total_seconds() < NOTIFY_BOUND_SEC + 5
    stored = mongo_db.load_test_runs.find_one({"id": result.json()["id"]})
    outcomes = {o["name"]: o for o in stored["notifications"]}
    assert outcomes["silent"]["ok"] is False and outcomes["silent"]["attempts"] == 1
    assert outcomes["silent"]["error"] == "no answer within 5 s"
    assert outcomes["down"]["ok"] is False and outcomes["down"]["error"] == "connection refused"
    assert outcomes["down"]["attempts"] == 4
    assert len(silent.received) == 1
    assert stored["verdict"] == "failed" and stored["status"] == "Finished"
    assert "notification 'down' (failed): NOT sent (connection refused)" in result.stderr
    no_secret(silent, everything(mongo_db), result.stdout + result.stderr)


def test_notify_test_over_the_wire(cli, mongo_db, monkeypatch):
    with receiving() as receiver:
        monkeypatch.setenv("TEAM_HOOK", receiver.url)
        assert cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK").exit_code == 0
        started = time.monotonic()
        result = cli("notify", "test", "team", "-o", "json")
        assert time.monotonic() - started < 10
    assert result.exit_code == 0, result.stderr
    assert result.json()["ok"] is True
    assert [b["sample"] for b in receiver.received] == [True]
    # Names are unique in a tenant and environment, by the real server's index.
    again = cli("notify", "add", "team", "--webhook-env", "TEAM_HOOK", "--format", "slack")
    assert again.exit_code == 5 and "already exists" in again.stderr
    assert mongo_db.notifications.count_documents({}) == 1
    elsewhere = cli("--tenant", "t2", "notify", "add", "team", "--webhook-env", "TEAM_HOOK")
    assert elsewhere.exit_code == 0, elsewhere.stderr
    assert mongo_db.notifications.count_documents({}) == 2
    outputs = [r.stdout + r.stderr for r in (result, again, elsewhere)]
    no_secret(receiver, everything(mongo_db), *outputs)


def test_the_url_is_not_in_the_database_even_by_accident(cli, mongo_db, monkeypatch, tmp_path):
    path = tmp_path / "hook"
    path.write_text("https://hooks.example.com/services/T/B/zzz-secret-zzz")
    assert cli("notify", "add", "f", "--webhook-file", str(path)).exit_code == 0
    assert "zzz-secret-zzz" not in everything(mongo_db)
    assert Path(mongo_db.notifications.find_one({})["webhookFile"]) == path.absolute()
