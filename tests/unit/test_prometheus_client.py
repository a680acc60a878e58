"""Issue 23: every way a Prometheus answer can go wrong is one clear line (a SourceError,
or a reading marked missing with its reason), never a crash, never a secret, and
never a number that is not there (NaN, ±Inf, several series, none)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses

from loadmgr.errors import SourceError
from loadmgr.prometheus.client import Credentials, PrometheusClient, Reading

URL = "http://prom.test:9090"
QUERY = f"{URL}/api/v1/query"


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


READINGS = [
    # (answer's JSON, the reading it gives)
    (vector("1.5"), Reading(1.5)),
    (vector("0"), Reading(0.0)),  # a real zero stays a zero
    (vector(), Reading(None, "the query gave no series at that time")),
    (vector("1", "2"),
     Reading(None, "the query gave 2 series, not one (aggregate it, e.g. sum(...))")),
    (vector("NaN"), Reading(None, "the query gave NaN")),
    (vector("+Inf"), Reading(None, "the query gave +Inf")),
    (vector("-Inf"), Reading(None, "the query gave -Inf")),
    (vector("x"), Reading(None, "Prometheus sent a sample that is not a number")),
    ({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "2"]}}, Reading(2.0)),
    ({"status": "success", "data": {"resultType": "string", "result": [1.0, "a"]}},
     Reading(None, "the query gave a string, not one number")),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "reading"), READINGS)
@responses.activate
def test_each_answer_is_a_number_or_missing_with_its_reason(
    answer: dict[str, Any], reading: Reading
) -> None:
    responses.get(QUERY, json=answer)
    assert PrometheusClient(URL).query("up") == reading


FAULTS = [
    # (status, content type, body, what the one line says)
    (200, "text/html", "<html><title>502 Bad Gateway</title></html>",
     "text/html (502 Bad Gateway), not JSON"),
    (502, "text/html", "<title>Proxy error</title>", "HTTP 502 text/html (Proxy error)"),
    (400, "application/json", json.dumps({"status": "error", "errorType": "bad_data",
     "error": "1:5: parse error: unexpected"}), "Prometheus refused the query: 1:5: parse error"),
    (503, "application/json", json.dumps({"status": "error", "errorType": "unavailable",
     "error": "not ready"}), "HTTP 503: not ready"),
    (200, "application/json", "{not json", "invalid JSON"),
    (200, "application/json", "[1, 2]", "unexpected answer"),
    (302, "text/plain", "", "redirected to another host (evil.test)"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "kind", "body", "says"), FAULTS)
@responses.activate
def test_each_fault_is_one_line(status: int, kind: str, body: str, says: str) -> None:
    headers = {"Location": "http://evil.test/steal"} if status == 302 else {}
    responses.get(QUERY, status=status, body=body, content_type=kind, headers=headers)
    with pytest.raises(SourceError) as raised:
        PrometheusClient(URL).query("up")
    assert says in raised.value.message
    assert "\n" not in raised.value.message


@responses.activate
def test_a_redirect_on_the_same_host_is_followed() -> None:
    responses.get(QUERY, status=302, headers={"Location": "/prefix/api/v1/query?query=up"})
    responses.get(f"{URL}/prefix/api/v1/query", json=vector("3"))
    assert PrometheusClient(URL).query("up") == Reading(3.0)


@responses.activate
def test_the_token_is_sent_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "s3cr3t-token-value"
    monkeypatch.setenv("LOADMGR_SECRET_PROM", token)
    responses.get(
        QUERY,
        status=400,
        json={"status": "error", "errorType": "bad_data", "error": f"bad header {token}"},
    )
    client = PrometheusClient(URL, credentials=Credentials(bearer_token_env="LOADMGR_SECRET_PROM"))
    with pytest.raises(SourceError) as raised:
        client.query("up")
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {token}"
    assert token not in raised.value.message


def test_a_token_this_machine_does_not_allow_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "AKIA-value")
    client = PrometheusClient(
        URL, credentials=Credentials(bearer_token_env="AWS_SECRET_ACCESS_KEY")
    )
    with pytest.raises(SourceError) as raised:
        client.query("up")
    assert "AWS_SECRET_ACCESS_KEY" in raised.value.message and "AKIA" not in raised.value.message


class _Dripping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        for _ in range(50):  # a byte every 0.1 s: each read is quick, the whole is not
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dripping() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dripping)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_slow_answer_is_given_up_at_the_deadline(dripping: str) -> None:
    began = time.monotonic()
    with pytest.raises(SourceError) as raised:
        PrometheusClient(dripping, timeout=0.5).query("up")
    assert time.monotonic() - began < 2.0
    assert "did not answer" in raised.value.message and "0.5s" in raised.value.message
