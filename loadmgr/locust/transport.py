"""The Locust web API's transport: the one module of loadmgr/locust/ that imports `requests`.

One class owns the base URL (with any base path), timeouts, authentication, TLS and the
mapping of every failure to a one-line `ClusterError`; `client.py` builds the API's
calls on it. The comments name the pitfalls they guard against.
"""

from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from loadmgr.errors import ClusterError
from loadmgr.locust.auth import auth_headers, check_auth, login_rejected, login_request
from loadmgr.locust.protocol import redact_url
from loadmgr.locust.seconds import InvalidPayload
from loadmgr.models import ClusterAuth, LocustCluster
from loadmgr.secret_refs import mask_secrets

MAX_BODY_BYTES = 32_000_000  # a real master's full answer is a few MB at most
# Once the command is interrupted (Ctrl-C, SIGTERM), each request is given this long for
# its whole answer, and after one goes unanswered no more are sent: the signal's path
# (stop the load, record the run) then ends within a few seconds, whatever Locust does.
INTERRUPTED_ANSWER_SEC = 5.0
_REDIRECTS = (301, 302, 303, 307, 308)
PLUGIN_ROUTE = "/loadmgr/v1"  # the loadmgr plugin's routes (docs/plugin.md)
_MESSAGE_MAX = 200
_TITLE = re.compile(r"<title>.*?</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_CONNECTION_REASONS = (
    (("Connection refused", "Errno 111"), "connection refused"),
    (
        ("Name or service not known", "nodename nor servname", "Failed to resolve"),
        "host name not found",
    ),
    (("Temporary failure in name resolution", "NameResolutionError"), "host name not found"),
    (("Network is unreachable",), "network unreachable"),
    (("No route to host",), "no route to host"),
    (("Connection reset",), "connection reset"),
    (("RemoteDisconnected", "Connection aborted"), "connection closed by the server"),
    (("timed out",), "timed out"),
)


def one_line(text: str) -> str:
    """`text` on one line, cut to a short message."""
    line = " ".join(text.split())
    return line if len(line) <= _MESSAGE_MAX else line[: _MESSAGE_MAX - 1] + "…"


def _body_summary(response: Answer) -> str:
    """An error body on one line (uncut); Flask's HTML error pages lose their markup."""
    text = response.text
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type:
        text = _TAG.sub(" ", _TITLE.sub(" ", text))
    elif "json" in content_type:
        # The loadmgr plugin answers a bad query with {"error": "..."}.
        try:
            error = json.loads(text).get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, str):
            text = error
    return " ".join(text.split())  # cut only once masked (the caller's one_line)


def _connection_reason(exc: BaseException, timeout: float) -> str:
    """A short human reason for a connection failure (never the raw exception text)."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connection timed out after {timeout:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return "TLS certificate verification failed"
        if "WRONG_VERSION_NUMBER" in text:
            return "TLS handshake failed (is it http, not https?)"
        return "TLS handshake failed"
    if not isinstance(exc, requests.exceptions.RequestException):
        # requests raises a bare OSError for a CA bundle path that does not exist.
        return one_line(getattr(exc, "strerror", None) or text)
    for needles, reason in _CONNECTION_REASONS:
        if any(needle in text for needle in needles):
            return reason
    return "connection failed" if isinstance(exc, requests.ConnectionError) else type(exc).__name__


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer, read within its deadline: nothing of it is read later."""

    status_code: int
    reason: str
    headers: Mapping[str, str]  # requests' case-insensitive dict
    content: bytes

    @property
    def text(self) -> str:
        # Locust sends no charset; guessing Latin-1 for text/* would garble names.
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_redirect(self) -> bool:
        return self.status_code in _REDIRECTS and "location" in self.headers


class _Exchange:
    """One request and its whole answer, on a thread of its own, so that the caller can
    give up on it at its deadline: a server that answers a byte every few seconds keeps
    every single read within its timeout, and would otherwise hold the caller for ever."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.abandoned = False
        self.answer: Answer | None = None
        self.error: BaseException | None = None


_T = TypeVar("_T", bound="LocustTransport")


class LocustTransport:
    """Requests to a Locust master's (or standalone Locust's) web UI, errors mapped."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: ClusterAuth | None = None,
        ca_bundle: str | None = None,
        verify_tls: bool = True,
        timeout: float = 10.0,
        stop_timeout: float = 90.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.display_url = redact_url(self.base_url)
        self.auth = auth or ClusterAuth()
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        check_auth(self.auth)
        self._verify: bool | str = ca_bundle if ca_bundle else verify_tls
        if self._verify is False:
            # The user chose to skip verification; a warning on every poll adds nothing.
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        self._session = requests.Session()
        self._logged_in = False
        self._secrets: set[str] = set()  # what was sent that no message may show
        # Set by the caller (the collector's stop event): once it is set, a request in
        # flight is given up at once, and later ones get INTERRUPTED_ANSWER_SEC.
        self.interrupt: threading.Event | None = None
        self._unanswered_since_interrupt = False
        # Set by the caller: asked before every request, it raises to keep one unsent (a
        # local run's recorded address is checked to be its master's, each time).
        self.before_send: Callable[[], None] | None = None

    @classmethod
    def from_cluster(cls: type[_T], cluster: LocustCluster, **options: Any) -> _T:
        """A client for a registered cluster; `options` override timeouts."""
        return cls(
            cluster.baseUrl,
            auth=cluster.auth,
            ca_bundle=cluster.caBundle,
            verify_tls=cluster.verifyTls,
            **options,
        )

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _json(
        self,
        method: str,
        path: str,
        *,
        data: list[tuple[str, str]] | None = None,
        read_timeout: float | None = None,
    ) -> dict[str, Any]:
        response = self._request(method, path, data=data, read_timeout=read_timeout)
        return self._payload(response, path)

    def _payload(self, response: Answer, path: str) -> dict[str, Any]:
        """The JSON object of a response, or a ClusterError saying what came instead."""
        # A login page or an auth error page comes back as 200 text/html
        # (docs/locust-api.md, "Authentication").
        if "json" not in response.headers.get("Content-Type", ""):
            raise self._not_api(response, path, "JSON")
        try:
            payload = json.loads(response.content)
        except ValueError:
            raise InvalidPayload(
                f"Locust at {self.display_url} sent invalid JSON for {path}"
            ) from None
        if not isinstance(payload, dict):
            raise InvalidPayload(f"Locust at {self.display_url} sent an unexpected {path} answer")
        return payload

    def _request(
        self,
        method: str,
        path: str,
        *,
        data: list[tuple[str, str]] | None = None,
        read_timeout: float | None = None,
        missing_ok: bool = False,
    ) -> Answer:
        """A response with a 2xx status (or 404 if `missing_ok`); ClusterError otherwise."""
        if self.auth.type == "login" and not self._logged_in:
            self._login()
        response = self._send(method, path, data=data, read_timeout=read_timeout)
        if response.is_redirect and self.auth.type == "login":
            # The session may have expired; a redirected request was not executed, so one
            # retry after logging in again is safe even for /swarm.
            self._login()
            response = self._send(method, path, data=data, read_timeout=read_timeout)
        if 300 <= response.status_code < 400:
            raise ClusterError(
                f"Locust at {self.display_url} requires authentication "
                f"({method} {path} was redirected)",
                hint="register the cluster with its login or header authentication",
            )
        if response.status_code in (401, 403):
            raise ClusterError(
                f"Locust at {self.display_url} refused {method} {path}: "
                f"HTTP {response.status_code} (authentication failed)"
            )
        if response.status_code == 404:
            if missing_ok:
                return response
            raise ClusterError(
                f"Locust at {self.display_url} has no {path} (HTTP 404)",
                hint="load the loadmgr plugin on the master and workers (loadmgr clusters plugin)"
                if path.startswith(PLUGIN_ROUTE)
                else "check the URL and base path of the Locust web UI",
            )
        if response.status_code >= 400:
            # A proxy's error page may echo the header it was sent.
            # Masked before it is cut: cut first, a secret's start would stay unmasked.
            body = one_line(mask_secrets(_body_summary(response), self._secrets))
            body = body or response.reason or "no details"
            raise ClusterError(
                f"Locust at {self.display_url} failed {method} {path}: "
                f"HTTP {response.status_code}: {body}"
            )
        return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        data: list[tuple[str, str]] | None = None,
        read_timeout: float | None = None,
    ) -> Answer:
        """The whole answer (connection, headers, body) within one deadline: the read
        timeout given (else `timeout`), INTERRUPTED_ANSWER_SEC once interrupted."""
        if self.before_send is not None:
            self.before_send()
        seconds = read_timeout or self.timeout
        interrupt = self.interrupt
        hurried = interrupt is not None and interrupt.is_set()
        if hurried:
            if self._unanswered_since_interrupt:
                raise ClusterError(
                    f"Locust at {self.display_url} has not answered since the interrupt; "
                    f"{method} {path} not sent"
                )
            seconds = min(seconds, INTERRUPTED_ANSWER_SEC)
        # Read at request time, so a rotated secret is used without a restart; on this
        # thread, so a reference this machine refuses is raised here, not lost on another.
        headers = auth_headers(self.auth)
        self._secrets.update(headers.values())
        exchange = _Exchange()
        session = self._session
        worker = threading.Thread(
            target=self._exchange,
            args=(session, exchange, method, path, data, headers, seconds),
            name="loadmgr-locust-request",
            daemon=True,  # an abandoned request never keeps the process alive
        )
        deadline = time.monotonic() + seconds
        worker.start()
        interrupted = False
        while not exchange.done.wait(max(0.0, min(0.1, deadline - time.monotonic()))):
            interrupted = not hurried and interrupt is not None and interrupt.is_set()
            if interrupted or time.monotonic() >= deadline:
                break
        if not exchange.done.is_set():
            # Given up: the thread ends with the server's next byte (or its read timeout)
            # and closes its session; later requests use a new one.
            exchange.abandoned = True
            self._session = requests.Session()
            # One given its short deadline after the interrupt went unanswered: Locust is
            # not answering, and asking again would only make the signal's path longer.
            self._unanswered_since_interrupt = hurried
            raise ClusterError(
                f"interrupted while waiting for Locust at {self.display_url} ({method} {path})"
                if interrupted
                else f"Locust at {self.display_url} did not answer {method} {path} "
                f"within {seconds:g}s"
            )
        if exchange.error is not None:
            raise exchange.error
        assert exchange.answer is not None
        return exchange.answer

    def _exchange(
        self,
        session: requests.Session,
        exchange: _Exchange,
        method: str,
        path: str,
        data: list[tuple[str, str]] | None,
        headers: dict[str, str],
        seconds: float,
    ) -> None:
        """On the request's own thread: send, read the whole answer, map failures."""
        try:
            response = session.request(
                method,
                self.base_url + path,
                data=data,
                headers=headers,
                timeout=(min(self.timeout, seconds), seconds),
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
            with response:
                content = self._capped_body(response, path, exchange)
            exchange.answer = Answer(
                response.status_code, response.reason or "", response.headers, content
            )
        except requests.exceptions.ReadTimeout:
            exchange.error = ClusterError(
                f"Locust at {self.display_url} did not answer {method} {path} within {seconds:g}s"
            )
        except (requests.exceptions.RequestException, OSError) as exc:
            reason = _connection_reason(exc, min(self.timeout, seconds))
            exchange.error = ClusterError(f"cannot reach Locust at {self.display_url}: {reason}")
            exchange.error.__cause__ = exc
        except BaseException as exc:  # handed to the caller's thread, raised there
            exchange.error = exc
        finally:
            exchange.done.set()
            if exchange.abandoned:
                session.close()

    def _capped_body(self, response: requests.Response, path: str, exchange: _Exchange) -> bytes:
        """The body, refused past MAX_BODY_BYTES: a lying server must not exhaust memory."""
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            if exchange.abandoned:
                return b""  # nobody waits for it any more
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ClusterError(
                    f"Locust at {self.display_url} sent more than "
                    f"{MAX_BODY_BYTES // 1_000_000} MB for {path}"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _not_api(self, response: Answer, path: str, expected: str) -> ClusterError:
        content_type = response.headers.get("Content-Type", "").split(";")[0] or "no type"
        return ClusterError(
            f"Locust at {self.display_url} answered {path} with {content_type}, not {expected}",
            hint="the web UI may require a login, or the URL is not a Locust web UI",
        )

    def _login(self) -> None:
        path, form = login_request(self.auth)
        self._secrets.update(value for _, value in form)
        response = self._send("POST", path, data=form)
        if login_rejected(response.status_code, response.headers.get("Location", "")):
            raise ClusterError(
                f"login to Locust at {self.display_url} was rejected (HTTP {response.status_code})",
                hint="check the username and password the cluster's auth names",
            )
        self._logged_in = True
