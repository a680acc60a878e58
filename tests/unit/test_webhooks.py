"""The webhook sender against a real receiver on loopback: retries, backoff, its time
bound, and the URL (a secret) in no message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from loadmgr import webhooks
from loadmgr.errors import ValidationFailed
from loadmgr.store.embedded import free_port
from loadmgr.webhooks import MASK, mask, post_json, webhook_url
from tests.secret_allowance import allow_secrets
from tests.webhook_receiver import Answer, receiving


@pytest.fixture(autouse=True)
def _machine_allows_these_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables (and files) these tests name: allowed, as a machine's owner allows them."""
    allow_secrets(monkeypatch, "HOOK_URL", directory=tmp_path)

BODY = {"schema": "loadmgr.notification/v1", "events": ["failed"], "text": "é ✓"}


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter timeouts and backoff, so each case takes a second or two, not ten."""
    monkeypatch.setattr(webhooks, "READ_TIMEOUT_SEC", 1.0)
    monkeypatch.setattr(webhooks, "BACKOFF_SEC", 0.1)


def no_secret(delivery: webhooks.Delivery, url: str) -> None:
    text = repr(delivery)
    assert url not in text and url.split("/services/")[1] not in text


def test_a_fast_receiver_gets_the_body_once() -> None:
    with receiving() as receiver:
        delivery = post_json(receiver.url, BODY)
    assert delivery.ok and delivery.attempts == 1 and delivery.status == 200
    assert delivery.error is None and delivery.finished
    assert receiver.received == [BODY]
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["User-Agent"].startswith("loadmgr/")


def test_a_500_is_retried_then_sent() -> None:
    with receiving(Answer(500), Answer(200)) as receiver:
        delivery = post_json(receiver.url, BODY)
    assert delivery.ok and delivery.attempts == 2 and delivery.status == 200
    assert receiver.received == [BODY, BODY]


def test_always_500_gives_up_after_the_last_attempt_with_growing_pauses() -> None:
    pauses: list[float] = []
    with receiving(Answer(500, body="upstream broke")) as receiver:
        delivery = post_json(receiver.url, BODY, sleep=lambda s: pauses.append(s))
    assert not delivery.ok and delivery.attempts == webhooks.MAX_ATTEMPTS == 4
    assert delivery.status == 500 and delivery.error == "HTTP 500: upstream broke"
    assert pauses == [0.1, 0.2, 0.4]  # exponential backoff
    assert len(receiver.received) == 4
    no_secret(delivery, receiver.url)


def test_429_waits_as_retry_after_asks() -> None:
    with receiving(Answer(429, {"Retry-After": "1"}), Answer(200)) as receiver:
        started = time.monotonic()
        delivery = post_json(receiver.url, BODY)
        took = time.monotonic() - started
    assert delivery.ok and delivery.attempts == 2
    assert took >= 1.0


def test_a_retry_after_beyond_the_bound_is_not_waited_for() -> None:
    with receiving(Answer(429, {"Retry-After": "3600"})) as receiver:
        started = time.monotonic()
        delivery = post_json(receiver.url, BODY)
        took = time.monotonic() - started
    assert not delivery.ok and delivery.attempts == 1 and delivery.status == 429
    assert "no retry" in (delivery.error or "") and took < 2


@pytest.mark.parametrize("status", [400, 403, 404, 410, 302])
def test_other_refusals_are_not_retried(status: int) -> None:
    with receiving(Answer(status, {"Location": "http://127.0.0.1:1/"}, "no_service")) as receiver:
        delivery = post_json(receiver.url, BODY)
    assert not delivery.ok and delivery.attempts == 1 and delivery.status == status
    expected = "HTTP 302 (redirects are not followed)" if status == 302 else f"HTTP {status}"
    assert (delivery.error or "").startswith(expected)
    assert status == 302 or "no_service" in (delivery.error or "")  # what the receiver said
    assert len(receiver.received) == 1


def test_a_receiver_that_never_answers_costs_one_read_timeout_and_no_duplicate() -> None:
    with receiving(Answer(hang=True)) as receiver:
        started = time.monotonic()
        delivery = post_json(receiver.url, BODY)
        took = time.monotonic() - started
    assert not delivery.ok and delivery.attempts == 1
    assert delivery.error == "no answer within 1 s"
    assert took < 2.5
    assert len(receiver.received) == 1  # it may have the message: not sent twice
    no_secret(delivery, receiver.url)


def test_nothing_listening_is_retried_within_the_bound() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/not-a-real-token-123"
    started = time.monotonic()
    delivery = post_json(url, BODY, bound=2.0)
    took = time.monotonic() - started
    assert not delivery.ok and delivery.status is None
    assert delivery.attempts == webhooks.MAX_ATTEMPTS
    assert delivery.error == "connection refused"
    assert took < 2.5
    no_secret(delivery, url)


def test_the_bound_holds_whatever_the_receiver_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_SEC", 0.4)
    with receiving(Answer(503)) as receiver:
        started = time.monotonic()
        delivery = post_json(receiver.url, BODY, bound=1.0)
        took = time.monotonic() - started
    assert not delivery.ok and took < 1.5
    assert "bound" in (delivery.error or "")


def test_requests_own_error_texts_would_hold_the_url_and_are_never_used() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/xyzzy-secret"
    with pytest.raises(requests.ConnectionError) as raised:
        requests.post(url, json={}, timeout=2)
    assert "xyzzy-secret" in str(raised.value)  # why our own words are used instead
    assert "xyzzy-secret" not in mask(str(raised.value), url)
    assert post_json(url, {}, bound=0.5).error is not None
    assert "xyzzy-secret" not in (post_json(url, {}, bound=0.5).error or "")


def test_mask_replaces_the_url_and_its_secret_parts() -> None:
    url = "https://user:pw1234@hooks.example.com/services/T/B/abc?token=q123456"
    text = f"failed {url}; path /services/T/B/abc; query token=q123456; pw1234"
    masked = mask(text, url)
    for secret in ("/services/T/B/abc", "q123456", "pw1234", "hooks.example.com"):
        assert secret not in masked
    assert MASK in masked


def test_an_error_page_quoting_the_token_alone_does_not_show_it() -> None:
    with receiving(Answer(404)) as receiver:
        receiver.answers[0].body = f"unknown hook {receiver.token}"
        delivery = post_json(receiver.url, BODY)
    assert delivery.error == "HTTP 404: unknown hook <webhook>"
    no_secret(delivery, receiver.url)


def test_webhook_url_from_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_URL", " https://hooks.example.com/services/T/B/s3cr3t \n")
    assert webhook_url("HOOK_URL", None) == "https://hooks.example.com/services/T/B/s3cr3t"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "environment variable HOOK_URL is not set"),
        ("", "environment variable HOOK_URL is not set"),
        ("ftp://x/s3cr3t", "environment variable HOOK_URL does not hold an http(s) URL"),
        ("s3cr3t", "environment variable HOOK_URL does not hold an http(s) URL"),
        ("http:///s3cr3t", "environment variable HOOK_URL does not hold an http(s) URL"),
    ],
)
def test_a_variable_without_a_url_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    if value is None:
        monkeypatch.delenv("HOOK_URL", raising=False)
    else:
        monkeypatch.setenv("HOOK_URL", value)
    with pytest.raises(ValidationFailed) as raised:
        webhook_url("HOOK_URL", None)
    assert raised.value.message.startswith(expected)
    assert "s3cr3t" not in raised.value.message


def test_webhook_url_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "hook"
    path.write_text("https://hooks.example.com/s3cr3t\n")
    assert webhook_url(None, str(path)) == "https://hooks.example.com/s3cr3t"
    path.write_text("not a url s3cr3t")
    with pytest.raises(ValidationFailed, match="does not hold an http") as raised:
        webhook_url(None, str(path))
    assert "s3cr3t" not in raised.value.message
    path.write_text("")
    with pytest.raises(ValidationFailed, match="is empty"):
        webhook_url(None, str(path))
    with pytest.raises(ValidationFailed, match="not found"):
        webhook_url(None, str(tmp_path / "missing"))
    with pytest.raises(ValidationFailed, match="directory"):
        webhook_url(None, str(tmp_path))
