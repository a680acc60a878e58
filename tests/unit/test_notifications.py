"""Notifications on mongomock with a real receiver on loopback: which run ends match, what
is sent, what is recorded on the run, the time bound, and the URL nowhere."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import mongomock
import pytest

from loadmgr import webhooks
from loadmgr.errors import DatabaseError, ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, RunStatus, Scope, StopReason, utcnow
from loadmgr.models.notifications import Notification
from loadmgr.models.verdicts import ReasonKind, Verdict, VerdictReason
from loadmgr.service.notifications import subscriptions as service
from loadmgr.service.notifications.bodies import (
    Message,
    json_body,
    sample_message,
    show_command,
    slack_body,
)
from loadmgr.service.notifications.subscriptions import (
    matching_events,
    notify_run_end,
    run_events,
)
from loadmgr.store import Store
from tests.secret_allowance import allow_secrets
from tests.webhook_receiver import Answer, Receiver, receiving


@pytest.fixture(autouse=True)
def _machine_allows_these_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables (and files) these tests name: allowed, as a machine's owner allows them."""
    allow_secrets(monkeypatch, "HOOK_URL", "DOWN_HOOK", "UNSET_HOOK", "X")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client() -> mongomock.MongoClient:
    return mongomock.MongoClient()


@pytest.fixture
def store(client: mongomock.MongoClient) -> Store:
    return Store(client["db"], Scope(), "mongodb://x")


def add_test(store: Store, name: str = "checkout", tags: list[str] | None = None) -> LoadTest:
    test = LoadTest(name=name, targetUrl="http://127.0.0.1:1", tags=tags or [],
                    **store.scope.stamp())
    return store.tests.insert(test)


def add_run(
    store: Store,
    test: LoadTest,
    verdict: Verdict | None,
    *,
    reasons: list[VerdictReason] | None = None,
    ago: float = 0.0,
    status: RunStatus | None = None,
    **fields: Any,
) -> LoadTestRun:
    now = utcnow() - timedelta(seconds=ago)
    run = LoadTestRun(
        loadTestId=test.id,
        testName=test.name,
        targetUsers=4,
        spawnRate=4,
        durationSeconds=5,
        status=status or (RunStatus.FAILED if verdict == Verdict.ERROR else RunStatus.FINISHED),
        stopReason=StopReason.DURATION,
        verdict=verdict,
        verdictReasons=reasons or [],
        startedAt=now - timedelta(seconds=5),
        finishedAt=now,
        createdAt=now - timedelta(seconds=6),
        finalStats={"totals": {"requests": 100, "failures": 2, "errorRate": 0.02,
                               "rps": 19.5, "p95ResponseMs": 42.0}},
        **store.scope.stamp(),
        **fields,
    )
    return store.runs.insert(run)


def subscribe(store: Store, name: str, env: str = "HOOK_URL", **fields: Any) -> Notification:
    notification = Notification(name=name, webhookEnv=env, **store.scope.stamp(), **fields)
    return store.notifications.insert(notification)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Any:
    with receiving() as receiver:
        monkeypatch.setenv("HOOK_URL", receiver.url)
        yield receiver


def everything_stored(client: mongomock.MongoClient) -> str:
    db = client["db"]
    return json.dumps(
        {name: list(db[name].find({}, {"_id": False})) for name in db.list_collection_names()},
        default=str,
    )


def assert_secret_nowhere(receiver: Receiver, *texts: str) -> None:
    for text in texts:
        assert receiver.token not in text and receiver.url not in text


FAILED = VerdictReason(kind=ReasonKind.THRESHOLD, message="p95 was 42ms, above 10ms (p95<10ms)",
                       expression="p95<10ms")
REGRESSED = VerdictReason(kind=ReasonKind.BASELINE, message="p95 is 30% worse than the baseline")


# -- what a run end is, and who it is for -----------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "reasons", "extra", "previous", "expected"),
    [
        (Verdict.PASSED, [], {}, None, set()),
        (None, [], {}, None, set()),
        (Verdict.FAILED, [FAILED], {}, None, {"failed"}),
        (Verdict.ERROR, [], {}, None, {"error"}),
        (Verdict.ABORTED, [], {}, None, {"aborted"}),
        (Verdict.FAILED, [REGRESSED], {}, None, {"failed", "regression"}),
        (Verdict.FAILED, [], {"baselineChecks": [{"metric": "p95", "regressed": True}]}, None,
         {"failed", "regression"}),
        (Verdict.FAILED, [], {"trendChecks": [{"metric": "rps", "regressed": True}]}, None,
         {"failed", "regression"}),
        (Verdict.PASSED, [], {"baselineChecks": [{"metric": "p95", "regressed": False}]}, None,
         set()),
        (Verdict.PASSED, [], {}, "failed", {"change"}),
        (Verdict.FAILED, [FAILED], {}, "passed", {"failed", "change"}),
        (Verdict.FAILED, [FAILED], {}, "failed", {"failed"}),
        (Verdict.PASSED, [], {}, "none", {"change"}),
        (None, [], {}, "none", set()),
    ],
)
def test_run_events(
    store: Store,
    verdict: Verdict | None,
    reasons: list[VerdictReason],
    extra: dict[str, Any],
    previous: str | None,
    expected: set[str],
) -> None:
    run = add_run(store, add_test(store), verdict, reasons=reasons, **extra)
    assert run_events(run, previous) == expected


def test_matching_by_events_test_and_tag(store: Store) -> None:
    test = add_test(store, tags=["nightly"])
    other = add_test(store, "other")
    run = add_run(store, test, Verdict.FAILED, reasons=[FAILED])
    events = {"failed", "change"}
    assert matching_events(Notification(name="a", webhookEnv="X"), run, events, ["nightly"]) == [
        "failed"
    ]
    both = Notification(name="b", webhookEnv="X", on=["change", "failed"])
    assert matching_events(both, run, events, []) == ["failed", "change"]
    only_errors = Notification(name="c", webhookEnv="X", on=["error"])
    assert matching_events(only_errors, run, events, []) == []
    mine = Notification(name="d", webhookEnv="X", testId=test.id)
    theirs = Notification(name="e", webhookEnv="X", testId=other.id)
    assert matching_events(mine, run, events, []) == ["failed"]
    assert matching_events(theirs, run, events, []) == []
    tagged = Notification(name="f", webhookEnv="X", tag="nightly")
    assert matching_events(tagged, run, events, ["nightly"]) == ["failed"]
    assert matching_events(tagged, run, events, ["weekly"]) == []


# -- the run end step ---------------------------------------------------------------------


def test_one_notification_per_matching_run_end_recorded_on_the_run(
    store: Store, client: mongomock.MongoClient, receiver: Receiver
) -> None:
    test = add_test(store)
    subscribe(store, "team")
    subscribe(store, "only-errors", on=["error"])
    run = add_run(store, test, Verdict.FAILED, reasons=[FAILED])
    said: list[str] = []
    notify_run_end(store, run, said.append)
    assert len(receiver.received) == 1
    sent = receiver.received[0]
    assert sent["notification"] == "team" and sent["events"] == ["failed"]
    assert sent["run"]["id"] == run.id and sent["run"]["verdict"] == "failed"
    assert sent["run"]["reasons"] == [FAILED.message]
    assert sent["test"] == {"id": test.id, "name": "checkout"}
    assert sent["numbers"] == {"requests": 100, "failures": 2, "errorRate": 0.02, "rps": 19.5,
                               "p95Ms": 42.0}
    assert sent["command"] == f"loadmgr runs show {run.id}"
    stored = store.runs.find_by_id(run.id)
    assert stored is not None and stored.verdict == Verdict.FAILED
    assert stored.verdictReasons == run.verdictReasons
    [outcome] = stored.notifications or []
    assert outcome["name"] == "team" and outcome["ok"] is True and outcome["attempts"] == 1
    assert outcome["status"] == 200 and outcome["error"] is None and outcome["events"] == ["failed"]
    # The caller's run reads as stored (but for the dates' time zone, on mongomock).
    assert [{**o, "at": None} for o in run.notifications or []] == [{**outcome, "at": None}]
    assert said == ["notification 'team' (failed): sent"]
    # Called again (a second collector, a retry): the end was announced already.
    notify_run_end(store, store.runs.find_by_id(run.id), said.append)
    assert len(receiver.received) == 1
    assert_secret_nowhere(receiver, everything_stored(client), *said)


def test_a_passed_run_matches_nothing_by_default_and_is_left_alone(
    store: Store, client: mongomock.MongoClient, receiver: Receiver
) -> None:
    subscribe(store, "team")
    run = add_run(store, add_test(store), Verdict.PASSED)
    before = everything_stored(client)
    notify_run_end(store, run, lambda _: None)
    assert receiver.received == [] and everything_stored(client) == before


def test_change_compares_with_the_previous_ended_run(store: Store, receiver: Receiver) -> None:
    test = add_test(store)
    subscribe(store, "changes", on=["change"])
    first = add_run(store, test, Verdict.PASSED, ago=60)
    notify_run_end(store, first, lambda _: None)  # the test's first run: no change
    assert receiver.received == []
    add_run(store, test, None, ago=30, status=RunStatus.RUNNING)  # not ended: not compared
    second = add_run(store, test, Verdict.FAILED, reasons=[FAILED], ago=10)
    notify_run_end(store, second, lambda _: None)
    third = add_run(store, test, Verdict.PASSED)
    notify_run_end(store, third, lambda _: None)
    assert [(r["run"]["id"], r["previousVerdict"]) for r in receiver.received] == [
        (second.id, "passed"),
        (third.id, "failed"),
    ]
    assert all(r["events"] == ["change"] for r in receiver.received)


def test_subscriptions_reach_only_runs_of_their_tenant_and_env(
    client: mongomock.MongoClient, receiver: Receiver
) -> None:
    tenant_a = Store(client["db"], Scope("a", "prod"), "mongodb://x")
    tenant_b = Store(client["db"], Scope("b", "prod"), "mongodb://x")
    everyone = Store(client["db"], Scope(), "mongodb://x")
    subscribe(tenant_a, "a-team")
    run_b = add_run(tenant_b, add_test(tenant_b), Verdict.FAILED)
    notify_run_end(everyone, run_b, lambda _: None)
    notify_run_end(tenant_b, run_b, lambda _: None)
    assert receiver.received == []
    run_a = add_run(tenant_a, add_test(tenant_a), Verdict.ERROR)
    notify_run_end(tenant_b, run_a, lambda _: None)  # outside that store's scope
    assert receiver.received == []
    notify_run_end(everyone, run_a, lambda _: None)
    assert [r["run"]["id"] for r in receiver.received] == [run_a.id]
    assert receiver.received[0]["command"] == (
        f"loadmgr --tenant a --env prod runs show {run_a.id}"
    )


def test_test_and_tag_filters(store: Store, receiver: Receiver) -> None:
    nightly = add_test(store, "nightly", tags=["nightly"])
    adhoc = add_test(store, "adhoc")
    subscribe(store, "by-test", testId=adhoc.id)
    subscribe(store, "by-tag", tag="nightly")
    notify_run_end(store, add_run(store, nightly, Verdict.ABORTED), lambda _: None)
    notify_run_end(store, add_run(store, adhoc, Verdict.ABORTED), lambda _: None)
    assert [(r["notification"], r["test"]["name"]) for r in receiver.received] == [
        ("by-tag", "nightly"),
        ("by-test", "adhoc"),
    ]


def test_failed_deliveries_are_recorded_without_the_url(
    store: Store, client: mongomock.MongoClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = add_test(store)
    subscribe(store, "gone", env="UNSET_HOOK")
    subscribe(store, "broken")
    monkeypatch.delenv("UNSET_HOOK", raising=False)
    monkeypatch.setattr(webhooks, "BACKOFF_SEC", 0.05)
    said: list[str] = []
    with receiving(Answer(500, body="oops")) as receiver:
        monkeypatch.setenv("HOOK_URL", receiver.url)
        run = add_run(store, test, Verdict.ERROR)
        notify_run_end(store, run, said.append)
    outcomes = {o["name"]: o for o in store.runs.find_by_id(run.id).notifications or []}
    assert outcomes["broken"]["ok"] is False and outcomes["broken"]["status"] == 500
    assert outcomes["broken"]["attempts"] == webhooks.MAX_ATTEMPTS
    assert outcomes["broken"]["error"] == "HTTP 500: oops"
    assert outcomes["gone"]["ok"] is False and outcomes["gone"]["attempts"] == 0
    assert outcomes["gone"]["error"].startswith("environment variable UNSET_HOOK is not set")
    assert "notification 'broken' (error): NOT sent (HTTP 500: oops)" in said
    assert_secret_nowhere(receiver, everything_stored(client), *said)


def test_a_receiver_that_holds_on_is_given_up_at_the_bound(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "DELIVERY_BOUND_SEC", 1.0)  # the step's wait, not the POST's
    test = add_test(store)
    subscribe(store, "slow")
    subscribe(store, "down", env="DOWN_HOOK")
    from loadmgr.store.embedded import free_port

    monkeypatch.setenv("DOWN_HOOK", f"http://127.0.0.1:{free_port()}/x")
    with receiving(Answer(hang=True)) as receiver:
        monkeypatch.setenv("HOOK_URL", receiver.url)
        run = add_run(store, test, Verdict.FAILED)
        started = time.monotonic()
        notify_run_end(store, run, lambda _: None)
        took = time.monotonic() - started
    assert took < 1.0 + service.JOIN_GRACE_SEC + 0.5
    outcomes = {o["name"]: o for o in store.runs.find_by_id(run.id).notifications or []}
    assert outcomes["slow"]["error"] == "gave up after 1 s" and outcomes["slow"]["attempts"] == 1
    assert outcomes["down"]["ok"] is False
    assert len(receiver.received) == 1


def test_the_step_never_raises(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise DatabaseError("MongoDB is away")

    monkeypatch.setattr(store.notifications, "for_scope", broken)
    said: list[str] = []
    notify_run_end(store, add_run(store, add_test(store), Verdict.FAILED), said.append)
    assert said == ["notifications not sent: MongoDB is away"]


# -- the bodies ---------------------------------------------------------------------------


def documented_keys() -> set[str]:
    """The keys docs/notifications.md documents for the JSON body (`run.id`, …)."""
    text = (REPO / "docs" / "notifications.md").read_text()
    section = text.split("## The JSON body", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z0-9.]+)` \|", section, flags=re.MULTILINE))


def body_keys(body: dict[str, Any]) -> set[str]:
    keys = set()
    for key, value in body.items():
        keys.add(key)
        if isinstance(value, dict) and key != "trigger":
            keys |= {f"{key}.{inner}" for inner in value}
    return keys


def test_every_key_of_the_json_body_is_documented(store: Store) -> None:
    run = add_run(store, add_test(store), Verdict.FAILED, reasons=[FAILED])
    body = json_body(Message("team", ["failed"], run, "checkout"))
    assert body_keys(body) == documented_keys()
    assert body["schema"] == "loadmgr.notification/v1" and body["sample"] is False
    assert body["run"]["finishedAt"].endswith("Z")
    json.dumps(body)  # JSON as it is


def test_slack_body_is_an_incoming_webhook_message(store: Store) -> None:
    test = add_test(store, "<b>&checkout")
    run = add_run(store, test, Verdict.FAILED, reasons=[FAILED, REGRESSED])
    body = slack_body(Message("team", ["failed", "regression"], run, test.name, "passed"))
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(":x: loadmgr: test '&lt;b&gt;&amp;checkout', run ")
    assert body["text"].endswith(" failed")
    summary = body["blocks"][0]["text"]["text"]
    assert "&lt;b&gt;&amp;checkout" in summary and "<b>" not in summary
    assert FAILED.message.replace(">", "&gt;").replace("<", "&lt;") in summary
    assert [b["type"] for b in body["blocks"]] == ["section", "section", "context"]
    fields = " ".join(f["text"] for f in body["blocks"][1]["fields"])
    assert "100 (2.00% failed)" in fields and "19.5/s" in fields and "42ms" in fields
    context = body["blocks"][2]["elements"][0]["text"]
    assert show_command(run) in context and "previous run: passed" in context


def test_formats_are_a_registry_a_third_party_can_extend(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loadmgr.models.notifications import FORMATS
    from loadmgr.service.notifications import bodies

    assert bodies.body_formats() == FORMATS  # what a stored notification may say
    run = add_run(store, add_test(store), Verdict.FAILED, reasons=[FAILED])
    message = Message("team", ["failed"], run, "checkout")
    assert bodies.body(" Slack ", message) == slack_body(message)
    monkeypatch.setattr(bodies, "BODIES", dict(bodies.BODIES))
    bodies.register_body("plain", lambda m: {"text": m.notification})
    assert bodies.body("plain", message) == {"text": "team"}
    assert bodies.body_formats() == (*FORMATS, "plain")
    with pytest.raises(ValidationFailed, match="formats: json, slack, plain"):
        bodies.check_format("xml")


def test_the_sample_is_marked_as_one() -> None:
    message = sample_message("team", "a", None)
    body = json_body(message)
    assert body["sample"] is True and body["events"] == ["test"]
    assert body_keys(body) == documented_keys()
    assert slack_body(message)["text"].startswith(":x: [sample] loadmgr:")


def test_nothing_in_a_slack_message_is_read_as_markup(client: mongomock.MongoClient) -> None:
    store = Store(client["db"], Scope("<!here>", "a&b"), "mongodb://x")
    test = add_test(store, "<!channel>")
    run = add_run(store, test, Verdict.FAILED, reasons=[FAILED])
    # Slack reads `text` and the blocks' mrkdwn alike: `<!channel>` would ping everyone.
    text = json.dumps(slack_body(Message("team", ["failed"], run, test.name)))
    assert "<!here>" not in text and "<!channel>" not in text
    assert "&lt;!here&gt;" in text and "&lt;!channel&gt;" in text


def test_a_run_end_tells_a_bounded_number_of_subscriptions(store: Store) -> None:
    """Bounded documents and threads (issue 21, items 1 and 3), reached through the
    notifications: a writer of the database can add any number of subscriptions, each with
    a variable name of any length. A run end told every one of them, on a thread each, and
    recorded an outcome for each on the run (at 20,000 with long names: past 16 MB, and
    every outcome lost). At most MAX_TOLD are told; one more outcome counts the rest; each
    outcome's error is cut."""
    from loadmgr.service.notifications.subscriptions import MAX_OUTCOME_ERROR, MAX_TOLD

    test = add_test(store)
    long_name = "UNSET_" + "X" * 100_000
    for i in range(MAX_TOLD + 50):
        subscribe(store, f"team-{i:03d}", env=long_name)
    run = add_run(store, test, Verdict.FAILED, reasons=[FAILED])
    said: list[str] = []
    notify_run_end(store, run, said.append)
    stored = store.runs.find_by_id(run.id)
    assert stored is not None
    outcomes = stored.notifications or []
    assert len(outcomes) == MAX_TOLD + 1
    assert all(len(o["error"] or "") <= MAX_OUTCOME_ERROR for o in outcomes)
    assert outcomes[-1]["ok"] is False and "50" in outcomes[-1]["error"]
    assert len(said) == MAX_TOLD + 1 and "50" in said[-1]
