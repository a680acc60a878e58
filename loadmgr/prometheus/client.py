"""A small client for Prometheus' HTTP API (`/api/v1/query`, `query_range`, `buildinfo`).

Every request has one deadline for its whole answer (a server that drips its answer in
is given up at the deadline), a bounded body, and no redirect to another host (it would
carry the bearer token there). Every failure is one `SourceError` line, never a secret.
Credentials are read when a request is sent, from the references the source names,
through `loadmgr.secret_refs` (the machine's own allowance), never stored.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from loadmgr.errors import SourceError, ValidationFailed
from loadmgr.secret_refs import (
    SecretRefused,
    check_env_reference,
    mask_secrets,
    read_file_secret,
)

MAX_BODY_BYTES = 8_000_000  # a range query over a long run is a few hundred kB
DEFAULT_TIMEOUT_SEC = 5.0
MAX_REDIRECTS = 3
_MESSAGE_MAX = 160
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class QueryRefused(SourceError):
    """Prometheus answered, and refused the query itself (its parser or evaluator)."""


@dataclass(frozen=True)
class Credentials:
    """Where a source's credentials are read from (names only; values read when sent)."""

    bearer_token_env: str | None = None
    bearer_token_file: str | None = None
    header_name: str | None = None
    header_env: str | None = None

    def headers(self) -> dict[str, str]:
        """The headers to send, read now (a rotated token is used without a restart)."""
        headers: dict[str, str] = {}
        if self.bearer_token_env:
            headers["Authorization"] = f"Bearer {_env_secret(self.bearer_token_env)}"
        elif self.bearer_token_file:
            headers["Authorization"] = f"Bearer {_file_secret(self.bearer_token_file)}"
        if self.header_name and self.header_env:
            headers[self.header_name] = _env_secret(self.header_env)
        return headers


def _env_secret(name: str) -> str:
    import os

    try:
        check_env_reference(name, "source credentials")
    except SecretRefused as exc:
        raise SourceError(exc.message, hint=exc.hint) from None
    value = os.environ.get(name, "").strip()
    if not value:
        raise SourceError(f"source credentials: environment variable {name} is not set")
    return value


def _file_secret(path: str) -> str:
    try:
        return read_file_secret(path, "source credentials")
    except ValidationFailed as exc:  # refused here, or no file that can serve
        raise SourceError(exc.message, hint=exc.hint) from None


@dataclass(frozen=True)
class Reading:
    """One number of one query: `value`, or None with the reason it is missing."""

    value: float | None
    reason: str | None = None


def one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MESSAGE_MAX else line[: _MESSAGE_MAX - 1] + "…"


def sample_reading(raw: Any) -> Reading:
    """A sample's `[timestamp, "value"]` as a number; NaN and ±Inf are missing."""
    try:
        value = float(raw[1])
    except (TypeError, ValueError, IndexError):
        return Reading(None, "Prometheus sent a sample that is not a number")
    if math.isnan(value):
        return Reading(None, "the query gave NaN")
    if math.isinf(value):
        return Reading(None, f"the query gave {'+' if value > 0 else '-'}Inf")
    return Reading(value)


def series_reading(result: list[Any], what: str) -> Reading | dict[str, Any]:
    """The one series of `result`, or why there is not exactly one."""
    if not result:
        return Reading(None, f"the query gave no series {what}")
    if len(result) > 1:
        return Reading(
            None,
            f"the query gave {len(result)} series, not one (aggregate it, e.g. sum(...))",
        )
    item = result[0]
    return item if isinstance(item, dict) else Reading(None, "Prometheus sent a bad series")


class PrometheusClient:
    """Queries to one Prometheus server; every failure a one-line SourceError."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        ca_file: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SEC,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc.lower()
        self.credentials = credentials or Credentials()
        self.verify: bool | str = ca_file or True
        self.timeout = timeout
        self._secrets: set[str] = set()

    # -- the API -------------------------------------------------------------------------

    def build_info(self) -> dict[str, Any]:
        """`/api/v1/status/buildinfo`'s data (version, revision)."""
        data = self._api("/api/v1/status/buildinfo", {})
        return data if isinstance(data, dict) else {}

    def query(self, expression: str, at: float | None = None) -> Reading:
        """The one number `expression` gives at `at` (unix seconds; None: now)."""
        params: dict[str, str] = {"query": expression}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return sample_reading(result)
        if kind != "vector" or not isinstance(result, list):
            return Reading(None, f"the query gave a {kind}, not one number")
        series = series_reading(result, "at that time")
        if isinstance(series, Reading):
            return series
        return sample_reading(series.get("value"))

    def query_range(
        self, expression: str, start: float, end: float, step: float
    ) -> dict[float, Reading]:
        """`expression` at `start`, `start + step`, … up to `end`: each time's reading
        (a time Prometheus has no point for is not in the answer)."""
        params = {
            "query": expression,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        data = self._api("/api/v1/query_range", params)
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise SourceError(f"Prometheus at {self.base_url} sent no matrix for a range query")
        series = series_reading(result, "over the run")
        if isinstance(series, Reading):
            return {}
        found: dict[float, Reading] = {}
        for sample in series.get("values") or []:
            try:
                found[round(float(sample[0]), 3)] = sample_reading(sample)
            except (TypeError, ValueError, IndexError):
                continue
        return found

    # -- one request ---------------------------------------------------------------------

    def _api(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """The `data` of a `status: success` answer; SourceError saying what came instead."""
        status, content_type, body = self._get(path, params)
        if "json" not in content_type:
            title = _TITLE.search(body.decode("utf-8", "replace"))
            # An auth proxy's page may echo the token: masked, then cut.
            shown = f" ({one_line(mask_secrets(title.group(1), self._secrets))})" if title else ""
            raise SourceError(
                f"Prometheus at {self.base_url} answered {path} with HTTP {status} "
                f"{content_type.split(';')[0] or 'no type'}{shown}, not JSON",
                hint="is the URL Prometheus' own (with its --web.route-prefix)?",
            )
        try:
            payload = json.loads(body)
        except ValueError:
            raise SourceError(f"Prometheus at {self.base_url} sent invalid JSON") from None
        if not isinstance(payload, dict):
            raise SourceError(f"Prometheus at {self.base_url} sent an unexpected answer")
        if payload.get("status") != "success":
            error = one_line(mask_secrets(str(payload.get("error") or ""), self._secrets))
            if payload.get("errorType") in ("bad_data", "execution"):
                raise QueryRefused(f"Prometheus refused the query: {error or f'HTTP {status}'}")
            raise SourceError(
                f"Prometheus at {self.base_url} failed {path}: HTTP {status}: {error}"
            )
        data = payload.get("data")
        if not isinstance(data, dict) and path != "/api/v1/status/buildinfo":
            raise SourceError(f"Prometheus at {self.base_url} sent no data for {path}")
        return data if isinstance(data, dict) else {}

    def _get(self, path: str, params: dict[str, str]) -> tuple[int, str, bytes]:
        """Status, content type and body of GET `path`, within one deadline."""
        headers = self.credentials.headers()
        # The token alone as well as `Bearer token`: an error page may echo either.
        self._secrets.update(headers.values())
        self._secrets.update(value.split(" ", 1)[-1] for value in headers.values())
        outcome: dict[str, Any] = {}
        done = threading.Event()
        worker = threading.Thread(
            target=self._exchange,
            args=(self.base_url + path, params, headers, outcome, done),
            name="loadmgr-prometheus-request",
            daemon=True,  # an abandoned request never keeps the process alive
        )
        worker.start()
        if not done.wait(self.timeout):
            outcome["abandoned"] = True
            raise SourceError(
                f"Prometheus at {self.base_url} did not answer {path} within {self.timeout:g}s"
            )
        error = outcome.get("error")
        if isinstance(error, BaseException):
            raise error
        answer: tuple[int, str, bytes] = outcome["answer"]
        return answer

    def _exchange(
        self,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        outcome: dict[str, Any],
        done: threading.Event,
    ) -> None:
        try:
            with requests.Session() as session:
                for _ in range(MAX_REDIRECTS + 1):
                    response = session.get(
                        url,
                        params=params,
                        headers=headers,
                        timeout=(self.timeout, self.timeout),
                        verify=self.verify,
                        allow_redirects=False,
                        stream=True,
                    )
                    with response:
                        location = response.headers.get("Location")
                        if response.status_code in (301, 302, 303, 307, 308) and location:
                            url = self._redirect(url, location)
                            params = {}  # a Location holds its own query
                            continue
                        body = self._capped(response, outcome)
                        kind = response.headers.get("Content-Type", "")
                        outcome["answer"] = (response.status_code, kind, body)
                        return
                raise SourceError(f"Prometheus at {self.base_url} redirected too many times")
        except SourceError as exc:
            outcome["error"] = exc
        except requests.exceptions.SSLError:
            outcome["error"] = SourceError(
                f"cannot reach Prometheus at {self.base_url}: TLS handshake or certificate failed"
            )
        except (requests.exceptions.RequestException, OSError) as exc:
            outcome["error"] = SourceError(
                f"cannot reach Prometheus at {self.base_url}: {_reason(exc)}"
            )
        except BaseException as exc:  # raised on the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    def _redirect(self, url: str, location: str) -> str:
        """Where a redirect leads, refused when it leaves the source's host (the token
        would follow it there)."""
        target = urljoin(url, location)
        host = urlsplit(target).netloc.lower()
        if host != self.host or urlsplit(target).scheme != urlsplit(url).scheme:
            raise SourceError(
                f"Prometheus at {self.base_url} redirected to another host ({host or target}); "
                "not followed",
                hint="register the source with the URL it redirects to, if it is yours",
            )
        return target

    def _capped(self, response: requests.Response, outcome: dict[str, Any]) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            if outcome.get("abandoned"):
                return b""
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise SourceError(
                    f"Prometheus at {self.base_url} sent more than {MAX_BODY_BYTES // 1_000_000} MB"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Errno 111", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("Failed to resolve", "host name not found"),
        ("timed out", "timed out"),
        ("RemoteDisconnected", "connection closed by the server"),
        ("Connection reset", "connection reset"),
    ):
        if needle in text:
            return reason
    return "connection failed" if isinstance(exc, requests.ConnectionError) else type(exc).__name__
