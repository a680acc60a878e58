"""Webhook notifications: subscriptions (add, list, show, remove, test) and the step that
tells them when a run ends.

The run end step (`notify_run_end`) never raises into the run and never holds it up for
long: lookups and the recording of outcomes are bounded, deliveries run side by side,
each within `webhooks.DELIVERY_BOUND_SEC`, and whatever has not answered by then is
recorded as given up. Its whole cost to a run's end is at most NOTIFY_BOUND_SEC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import LoadmgrError, ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, utcnow
from loadmgr.models.notifications import Notification
from loadmgr.models.verdicts import ReasonKind
from loadmgr.service.documents import by_id_or_name, new_document
from loadmgr.service.notifications.bodies import Message, body, sample_message

if TYPE_CHECKING:
    from loadmgr.store import Store
    from loadmgr.webhooks import Delivery

LOOKUP_BOUND_SEC = 2.0  # reading subscriptions, the test, the previous run
# A run end tells at most this many subscriptions (the first by name), each on a thread of
# its own and each an outcome on the run: any writer of the database may add any number,
# and the run's document must stay within MongoDB's 16 MB. One more outcome counts the rest.
MAX_TOLD = 100
MAX_OUTCOME_ERROR = 500  # characters of an outcome's error kept on the run
RECORD_BOUND_SEC = 2.0  # appending the outcomes to the run
JOIN_GRACE_SEC = 0.5
# Lookups + deliveries (side by side) + recording, rounded up: documented.
NOTIFY_BOUND_SEC = 15.0

OPTION_NAMES = {
    "name": "NAME",
    "webhookEnv": "--webhook-env",
    "webhookFile": "--webhook-file",
    "format": "--format",
    "on": "--on",
    "tag": "--tag",
}


@dataclass(frozen=True)
class NotificationSpec:
    """What `notify add` was given: where the webhook URL is read from, the body's format,
    the events (None: the default ones) and which runs (one test's, a tag's, all)."""

    name: str
    webhook_env: str | None = None
    webhook_file: str | None = None
    body_format: str = "json"
    on: list[str] | None = None
    test: str | None = None  # its id or name
    tag: str | None = None


def add_notification(store: Store, user: str, spec: NotificationSpec) -> Notification:
    """Check and store a subscription. Its webhook must hold an http(s) URL now (a typo in
    a variable's name would otherwise show only when a run fails); `test` is resolved to
    the test's id."""
    notification = prepare_notification(store, user, spec)
    store.ensure_indexes()
    store.notifications.ensure_indexes()
    return store.notifications.insert(notification)


def prepare_notification(
    store: Store, user: str, spec: NotificationSpec, test: LoadTest | None = None
) -> Notification:
    """The subscription `spec` describes, checked as `add_notification` checks it, not
    stored; `test`: the test it is limited to as it will be stored (`apply`), else
    `spec.test` is looked up."""
    from loadmgr.models.notifications import DEFAULT_EVENTS
    from loadmgr.webhooks import webhook_url

    webhook_file = spec.webhook_file
    if webhook_file:
        webhook_file = str(Path(webhook_file).expanduser().absolute())
    fields: dict[str, Any] = {
        "name": spec.name,
        "webhookEnv": spec.webhook_env,
        "webhookFile": webhook_file,
        "format": spec.body_format,
        "on": list(spec.on) if spec.on else list(DEFAULT_EVENTS),
        "testId": spec.test,
        "tag": spec.tag,
    }
    notification = new_document(Notification, store, user, fields, OPTION_NAMES)
    webhook_url(notification.webhookEnv, notification.webhookFile)
    if test is not None:
        notification.testId = test.id
    elif notification.testId:
        from loadmgr.service.definitions.tests import get_test

        notification.testId = get_test(store, notification.testId).id
    return notification


def get_notification(store: Store, ref: str) -> Notification:
    """A subscription by id, else by name (unique within tenant and environment)."""
    repository = store.notifications
    return by_id_or_name(store, ref, "notification", repository.find_by_id, repository.find_by_name)


def list_notifications(store: Store) -> list[Notification]:
    return store.notifications.find_many()


def remove_notification(store: Store, ref: str) -> Notification:
    notification = get_notification(store, ref)
    store.notifications.delete(notification.id)
    return notification


def names_of_tests(store: Store, notifications: list[Notification]) -> dict[str, str]:
    """Test id → name, for the subscriptions limited to one test (a deleted one: absent)."""
    names: dict[str, str] = {}
    for test_id in {n.testId for n in notifications if n.testId}:
        test = store.tests.find_by_id(test_id)
        if test is not None:
            names[test_id] = test.name
    return names


def send_test(store: Store, ref: str) -> dict[str, Any]:
    """Send a sample message through a subscription; its outcome (never the URL).

    ValidationFailed when its webhook no longer holds a URL; the caller decides what a
    failed delivery means (the outcome's `ok`)."""
    from loadmgr.webhooks import webhook_url

    notification = get_notification(store, ref)
    webhook_url(notification.webhookEnv, notification.webhookFile)  # exit 2 when none now
    message = sample_message(notification.name, notification.tenantId, notification.envId)
    # As a run end sends it: in a thread given up at the bound, since a receiver that
    # answers a byte at a time passes every read timeout and would hold us for minutes.
    return deliver_all([(notification, message)])[0]


# -- the run end step ------------------------------------------------------------------

Say = Callable[[str], None]


def notify_run_end(store: Store, run: LoadTestRun, message: Say) -> None:
    """Tell every matching subscription that `run` ended, and record how each delivery
    went on the run (`notifications[]`, also set on `run`). Never raises; bounded by
    NOTIFY_BOUND_SEC."""
    try:
        _notify(store, run, message)
    except Exception as exc:  # a run end is never failed by its notifications
        text = exc.message if isinstance(exc, LoadmgrError) else type(exc).__name__
        _say(message, f"notifications not sent: {text}")


def _notify(store: Store, run: LoadTestRun, message: Say) -> None:
    if run.status.is_active:
        return
    with store.bounded(LOOKUP_BOUND_SEC):
        candidates = store.notifications.for_scope(run.tenantId, run.envId)
        if not candidates:
            return
        previous: str | None = None  # the previous run's verdict, "none" if it had none
        if any("change" in n.on for n in candidates):
            found = store.runs.previous_ended(run)
            if found is not None:
                verdict = found.get("verdict")
                previous = str(getattr(verdict, "value", verdict) or "none")
        tags: list[str] = []
        test_name = run.testName or run.loadTestId
        if any(n.tag for n in candidates) or not run.testName:
            test = store.tests.find_by_id(run.loadTestId)
            if test is not None:
                tags, test_name = test.tags, test.name
        events = run_events(run, previous)
        matched = [
            (n, chosen) for n in candidates if (chosen := matching_events(n, run, events, tags))
        ]
        if not matched or not store.runs.claim_notifications(run.id):
            return
    shown_previous = previous if previous != "none" else None
    outcomes = deliver_all(
        [
            (n, Message(n.name, chosen, run, test_name, shown_previous))
            for n, chosen in matched[:MAX_TOLD]
        ]
    )
    if len(matched) > MAX_TOLD:
        outcomes.append(_left_out(len(matched) - MAX_TOLD))
    for outcome in outcomes:
        state = "sent" if outcome["ok"] else f"NOT sent ({outcome['error']})"
        _say(message, f"notification {outcome['name']!r} ({', '.join(outcome['events'])}): {state}")
    with store.bounded(RECORD_BOUND_SEC):
        store.runs.record_notifications(run.id, outcomes)
    # The caller's run reads as stored now (`runs start` prints it).
    run.notifications = [*(run.notifications or []), *outcomes]


def run_events(run: LoadTestRun, previous_verdict: str | None) -> set[str]:
    """What a run's end is: its verdict if failed, inconclusive, error or aborted; `regression` if a
    baseline or trend check regressed; `change` if its verdict differs from the previous
    ended run's of its test (`previous_verdict`: None when there is none, "none" when
    that run had no verdict)."""
    events: set[str] = set()
    verdict = run.verdict.value if run.verdict else None
    if verdict in ("failed", "inconclusive", "error", "aborted"):
        events.add(verdict)
    stored = run.model_dump(mode="python")
    checks = [*(stored.get("baselineChecks") or []), *(stored.get("trendChecks") or [])]
    if any(isinstance(c, dict) and c.get("regressed") is True for c in checks) or any(
        r.kind in (ReasonKind.BASELINE, ReasonKind.TREND) for r in run.verdictReasons
    ):
        events.add("regression")
    if previous_verdict is not None and previous_verdict != (verdict or "none"):
        events.add("change")
    return events


def matching_events(
    notification: Notification, run: LoadTestRun, events: set[str], tags: list[str]
) -> list[str]:
    """The events of this run end that `notification` asked for (empty: not for it)."""
    if notification.testId and notification.testId != run.loadTestId:
        return []
    if notification.tag and notification.tag not in tags:
        return []
    return [event for event in notification.on if event in events]


def deliver_all(messages: list[tuple[Notification, Message]]) -> list[dict[str, Any]]:
    """Send every message side by side; each one's outcome once it is done or its time is
    up (a receiver still holding on is left to its daemon thread, and given up)."""
    from loadmgr.webhooks import DELIVERY_BOUND_SEC, Delivery

    jobs: list[tuple[Notification, Message, Delivery, threading.Thread]] = []
    for notification, message in messages:
        progress = Delivery()
        thread = threading.Thread(
            target=_deliver,
            args=(notification, message, progress),
            name=f"notify-{notification.name}",
            daemon=True,
        )
        thread.start()
        jobs.append((notification, message, progress, thread))
    deadline = time.monotonic() + DELIVERY_BOUND_SEC + JOIN_GRACE_SEC
    outcomes = []
    for notification, message, progress, thread in jobs:
        thread.join(max(0.0, deadline - time.monotonic()))
        if not progress.finished:
            progress.ok = False
            progress.error = f"gave up after {DELIVERY_BOUND_SEC:g} s"
            progress.seconds = DELIVERY_BOUND_SEC
        outcomes.append(_outcome(notification, message.events, progress))
    return outcomes


def _deliver(notification: Notification, message: Message, progress: Delivery) -> None:
    from loadmgr.webhooks import post_json, webhook_url

    try:
        url = webhook_url(notification.webhookEnv, notification.webhookFile)
    except ValidationFailed as exc:  # its message names the variable or file, never a URL
        progress.error = exc.message
        progress.finished = True
        return
    try:
        post_json(url, body(notification.format, message), progress=progress)
    except Exception as exc:  # post_json never raises; if it did, its text could hold the URL
        progress.error = f"not sent ({type(exc).__name__})"
        progress.finished = True


def _outcome(notification: Notification, events: list[str], delivery: Delivery) -> dict[str, Any]:
    """What is recorded on the run: everything but the URL; the error cut (it may name a
    variable or a file of any length, as stored)."""
    error = delivery.error
    if error is not None and len(error) > MAX_OUTCOME_ERROR:
        error = error[: MAX_OUTCOME_ERROR - 1] + "…"
    return {
        "name": notification.name,
        "notificationId": notification.id,
        "events": list(events),
        "at": utcnow(),
        "ok": delivery.ok,
        "attempts": delivery.attempts,
        "status": delivery.status,
        "error": error,
        "seconds": delivery.seconds,
    }


def _left_out(count: int) -> dict[str, Any]:
    """The outcome counting the subscriptions past MAX_TOLD: none of them was told."""
    return {
        "name": f"({count} more)",
        "notificationId": None,
        "events": [],
        "at": utcnow(),
        "ok": False,
        "attempts": 0,
        "status": None,
        "error": f"{count} more subscriptions match than the {MAX_TOLD} a run end tells",
        "seconds": 0.0,
    }


def _say(message: Say, text: str) -> None:
    try:
        message(text)
    except Exception:  # a closed log or terminal must not fail the run's end
        pass
