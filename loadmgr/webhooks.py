"""Posting a JSON message to a webhook: bounded in time, retried with backoff, never raising.

This is the one place outside `loadmgr/locust/` that imports `requests`: a webhook is not
a Locust master, and its client shares nothing with that one but the library. Import it
lazily (from the service), so `loadmgr --help` stays light.

The URL is a secret (Slack's carries its token in the path): it is read from where a
subscription points, used for the request, and never put in a message. `requests`' own
exception texts quote the URL, so none of them is ever shown: every error here is one of
our own words, and `mask` scrubs anything else that could still carry a piece of it.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from loadmgr import __version__
from loadmgr.errors import ValidationFailed
from loadmgr.local_files import read_regular_file
from loadmgr.secret_refs import check_env_reference, check_file_reference, mask_secrets

# One delivery (all its attempts) ends within DELIVERY_BOUND_SEC, whatever the receiver.
DELIVERY_BOUND_SEC = 10.0
CONNECT_TIMEOUT_SEC = 3.0
READ_TIMEOUT_SEC = 5.0
MAX_ATTEMPTS = 4
BACKOFF_SEC = 0.5  # then 1 s, 2 s: doubled after each failed attempt
ANSWER_SHOWN_MAX = 200  # characters of a refusing receiver's answer kept in the outcome
URL_FILE_MAX_BYTES = 64_000
MASK = "<webhook>"
SECRET_PIECE_MIN = 6  # a path segment or query value this long may be a token: masked too


@dataclass
class Delivery:
    """How one message fared: `ok`, the attempts made, the last HTTP status, the error."""

    ok: bool = False
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    seconds: float = 0.0
    finished: bool = field(default=False, repr=False)


def webhook_url(env: str | None, path: str | None) -> str:
    """The URL held by environment variable `env`, or else by the file at `path`.

    ValidationFailed naming the variable or file (never their content) when it is unset,
    unreadable, or not an http(s) URL.
    """
    import os

    # Whoever writes the database chose these names: read only what this machine allows.
    if env:
        check_env_reference(env, "webhook")
        value = os.environ.get(env, "").strip()
        where = f"environment variable {env}"
        if not value:
            raise ValidationFailed(f"{where} is not set (it must hold the webhook URL)")
    else:
        file = check_file_reference(path, "webhook")
        where = f"webhook file {str(file)!r}"
        data = read_regular_file(file, "webhook file", max_bytes=URL_FILE_MAX_BYTES)
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValidationFailed(f"{where} is not UTF-8 text") from None
        if not value:
            raise ValidationFailed(f"{where} is empty (it must hold the webhook URL)")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(
        c.isspace() for c in value
    ):
        raise ValidationFailed(f"{where} does not hold an http(s) URL")
    return value


def mask(text: str, url: str) -> str:
    """`text` with the URL, and each part of it that could be its secret, replaced in every
    form (`secret_refs.mask_secrets`): a receiver's error page may quote its path, or only
    the token at its end, percent-decoded or not."""
    parts = urlsplit(url)
    secrets = [url, url.rstrip("/"), parts.path, parts.query, parts.netloc, parts.password]
    pieces = re.split(r"[/?&=#;]", f"{parts.path}?{parts.query}")
    secrets += [piece for piece in pieces if len(piece) >= SECRET_PIECE_MIN]
    return mask_secrets(text, secrets, MASK)


def post_json(
    url: str,
    body: dict[str, Any],
    *,
    bound: float = DELIVERY_BOUND_SEC,
    progress: Delivery | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST `body` to `url` until it is accepted (2xx), refused (another 4xx or 3xx), or
    `bound` seconds have passed. Connection errors, 5xx and 429 are retried, with backoff
    (a 429's or 503's Retry-After honoured when it fits in the bound); a receiver that
    accepted the connection but does not answer in time is not (it may have the message).

    Never raises. `progress`, when given, is filled in as attempts are made, so a caller
    that stops waiting still knows how far it got.
    """
    delivery = progress or Delivery()
    started = time.monotonic()
    deadline = started + bound
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": f"loadmgr/{__version__}"}
    wait = BACKOFF_SEC
    with requests.Session() as session:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                delivery.error = f"{delivery.error or 'not sent'}; gave up after {bound:g} s"
                break
            delivery.attempts += 1
            retry_after = _attempt(session, url, payload, headers, remaining, delivery)
            if delivery.ok or retry_after is None or delivery.attempts >= MAX_ATTEMPTS:
                break
            pause = retry_after if retry_after > 0 else wait
            if time.monotonic() + pause >= deadline:
                delivery.error = f"{delivery.error}; no retry: it would pass the {bound:g} s bound"
                break
            sleep(pause)
            wait *= 2
    delivery.seconds = round(time.monotonic() - started, 3)
    if delivery.error:
        delivery.error = mask(delivery.error, url)
    delivery.finished = True
    return delivery


def _attempt(
    session: requests.Session,
    url: str,
    payload: bytes,
    headers: dict[str, str],
    remaining: float,
    delivery: Delivery,
) -> float | None:
    """One POST. Fills `delivery`; returns the pause before a retry (0: the usual backoff)
    or None when there is nothing to retry."""
    timeout = (min(CONNECT_TIMEOUT_SEC, remaining), min(READ_TIMEOUT_SEC, remaining))
    try:
        with session.post(
            url, data=payload, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            delivery.status = response.status_code
            if 200 <= response.status_code < 300:
                delivery.ok, delivery.error = True, None
                return None
            answer = _answer(response, url)
            delivery.error = f"HTTP {response.status_code}{answer}"
            if response.status_code == 429 or response.status_code >= 500:
                return _retry_after(response.headers.get("Retry-After"))
            if 300 <= response.status_code < 400:
                delivery.error += " (redirects are not followed)"
            return None
    except requests.exceptions.ConnectTimeout:
        delivery.error = f"no connection within {timeout[0]:g} s"
        return 0.0
    except requests.exceptions.ReadTimeout:
        delivery.error = f"no answer within {timeout[1]:g} s"
        return None
    except requests.exceptions.SSLError:
        delivery.error = "TLS error (certificate or handshake)"
        return None
    except requests.exceptions.ConnectionError as exc:
        delivery.error = _connection_problem(exc)
        return 0.0
    except (requests.exceptions.RequestException, ValueError) as exc:  # an invalid URL
        delivery.error = f"request not sent ({type(exc).__name__})"
        return None


def _answer(response: requests.Response, url: str) -> str:
    """`: <first characters of the body>` of a refusal, one line; read within a limit.

    Masked before it is cut: cut first, a secret the cut runs through would keep its
    start, which no mask then recognises."""
    try:
        # Beyond what is shown, enough to hold a whole URL the shown part may begin.
        raw = response.raw.read(ANSWER_SHOWN_MAX * 4 + len(url) * 3, decode_content=True) or b""
    except Exception:  # the answer is a bonus; its absence is no error of ours
        return ""
    text = mask(" ".join(raw.decode("utf-8", "replace").split()), url)[:ANSWER_SHOWN_MAX]
    return f": {text}" if text else ""


def _retry_after(value: str | None) -> float:
    """Seconds a Retry-After header asks for (seconds or an HTTP date); 0 when absent."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def _connection_problem(exc: BaseException) -> str:
    """What went wrong connecting, in our words (the exception's text holds the URL)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, TimeoutError):
            return "connection timed out"
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = getattr(cause, "reason", None) or nested or cause.__cause__ or cause.__context__
    text = str(exc)
    for words, said in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "the receiver closed the connection without answering"),
    ):
        if words in text:
            return said
    return "connection failed"
