"""The Locust web API's transport: the one module of loadmgr/locust/ that imports `requests`.

One class owns the base URL (with any base path), timeouts, authentication, TLS and the
mapping of every failure to a one-line `ClusterError`; `client.py` builds the API's
calls on it. The comments name the pitfalls they guard against.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any, TypeVar

import requests

from loadmgr.errors import ClusterError
from loadmgr.locust.auth import auth_headers, check_auth, login_rejected, login_request
from loadmgr.locust.protocol import redact_url
from loadmgr.locust.seconds import InvalidPayload
from loadmgr.models import ClusterAuth, LocustCluster
from loadmgr.secret_refs import mask_secrets

MAX_BODY_BYTES = 32_000_000  # a real master's full answer is a few MB at most
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


def _body_summary(response: requests.Response) -> str:
    """An error body as one short line; Flask's HTML error pages lose their markup."""
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
    return one_line(text)


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

    def _payload(self, response: requests.Response, path: str) -> dict[str, Any]:
        """The JSON object of a response, or a ClusterError saying what came instead."""
        # A login page or an auth error page comes back as 200 text/html
        # (docs/locust-api.md, "Authentication").
        if "json" not in response.headers.get("Content-Type", ""):
            raise self._not_api(response, path, "JSON")
        body = self._capped_body(response, path)
        try:
            payload = json.loads(body)
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
    ) -> requests.Response:
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
            body = mask_secrets(_body_summary(response), self._secrets)
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
    ) -> requests.Response:
        url = self.base_url + path
        # Read at request time, so a rotated secret is used without a restart.
        headers = auth_headers(self.auth)
        self._secrets.update(headers.values())
        try:
            return self._session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=(self.timeout, read_timeout or self.timeout),
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.ReadTimeout as exc:
            seconds = read_timeout or self.timeout
            raise ClusterError(
                f"Locust at {self.display_url} did not answer {method} {path} within {seconds:g}s"
            ) from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            reason = _connection_reason(exc, self.timeout)
            raise ClusterError(f"cannot reach Locust at {self.display_url}: {reason}") from exc

    def _capped_body(self, response: requests.Response, path: str) -> bytes:
        """The body, refused past MAX_BODY_BYTES: a lying server must not exhaust memory."""
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                response.close()
                raise ClusterError(
                    f"Locust at {self.display_url} sent more than "
                    f"{MAX_BODY_BYTES // 1_000_000} MB for {path}"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _not_api(self, response: requests.Response, path: str, expected: str) -> ClusterError:
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
