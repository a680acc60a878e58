"""LocustClient against recorded Locust 2.47 answers (`responses`): routes, auth, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses

import loadmgr.locust.client as client_module
from loadmgr.errors import ClusterBusy, ClusterError, ExitCode, ValidationFailed
from loadmgr.locust.client import LocustClient
from loadmgr.locust.protocol import redact_url
from loadmgr.models import ClusterAuth, LocustCluster
from tests.secret_allowance import allow_secrets


@pytest.fixture(autouse=True)
def _machine_allows_these_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables (and files) these tests name: allowed, as a machine's owner allows them."""
    allow_secrets(
        monkeypatch,
        "LOCUST_TOKEN", "TOK", "NOT_SET_ANYWHERE", "LOCUST_USER", "LOCUST_PASS", "X", "U",
        directory=tmp_path,
    )

BASE = "http://locust.test:8089"
SECRET = "s3cr3t-token-value"
INDEX_HTML = (
    '<html><script>window.templateArgs = {"available_user_classes": ["U"], '
    '"is_distributed": false, "state": "ready", "version": "2.47.0", "worker_count": 0}'
    "</script></html>"
)
CSV_TEXT = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,"
    "75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\r\n"
    "GET,/,1349,0,2,2.70,1.9,9.1,6.0,90.1,0.0,2,3,3,3,4,5,6,6,9,9,9\r\n"
    "GET,/café,1,0,2,2.70,1.9,9.1,6.0,90.1,0.0,2,3,3,3,4,5,6,6,9,9,9\r\n"
    ",Aggregated,1349,0,2,2.70,1.9,9.1,6.0,90.1,0.0,2,3,3,3,4,5,6,6,9,9,9\r\n"
)


def stats_payload(
    state: str = "ready", *, workers: int | None = None, users: int = 0
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "current_response_time_percentiles": {
            "response_time_percentile_0.5": None,
            "response_time_percentile_0.95": None,
        },
        "errors": [],
        "state": state,
        "stats": [{"name": "Aggregated", "method": "", "num_requests": 0, "num_failures": 0}],
        "total_rps": 0.0,
        "user_count": users,
    }
    if workers is not None:
        body["worker_count"] = workers
        body["workers"] = [
            {"id": f"w{i}", "state": "ready", "user_count": 0} for i in range(workers)
        ]
    return body


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def form(call: Any) -> list[tuple[str, str]]:
    return parse_qsl(call.request.body)


def sent_options(call: Any) -> dict[str, Any]:
    """The keyword arguments requests got (timeout, verify), as `responses` records them."""
    options: dict[str, Any] = call.request.req_kwargs
    return options


# -- routes ------------------------------------------------------------------------------


def test_stats_parses_json(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", users=3))
    payload = LocustClient(BASE).stats()
    assert payload["state"] == "running" and payload["user_count"] == 3


def test_base_path_prefixes_every_route(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/locust/stats/requests", json=stats_payload())
    mock.get(f"{BASE}/locust/worker-count", json={"worker_count": 2})
    client = LocustClient(f"{BASE}/locust/")
    assert client.stats()["state"] == "ready"
    assert client.worker_count() == 2


def test_swarm_is_form_encoded_and_always_sends_run_time(mock: responses.RequestsMock) -> None:
    mock.post(
        f"{BASE}/swarm",
        json={"success": True, "message": "Swarming started", "host": "http://t", "run_time": 30},
    )
    answer = LocustClient(BASE).swarm(10, 2.5, "http://target:8000", 30)
    assert answer["success"] is True
    call = mock.calls[0]
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(call) == [
        ("user_count", "10"),
        ("spawn_rate", "2.5"),
        ("host", "http://target:8000"),
        ("run_time", "30s"),
    ]


def test_swarm_without_host_keeps_locusts_host(mock: responses.RequestsMock) -> None:
    mock.post(f"{BASE}/swarm", json={"success": True, "message": "Swarming started"})
    LocustClient(BASE).swarm(0, 1, None, 5)
    assert dict(form(mock.calls[0])) == {"user_count": "0", "spawn_rate": "1.0", "run_time": "5s"}


def test_swarm_refusal_is_http_200_with_success_false(mock: responses.RequestsMock) -> None:
    message = "Missing or invalid user_count or spawn_rate from /swarm request"
    mock.post(f"{BASE}/swarm", json={"success": False, "message": message, "host": "x"})
    with pytest.raises(ClusterError) as caught:
        LocustClient(BASE).swarm(1, 1.0, None, 10)
    assert caught.value.message == f"Locust at {BASE} refused the swarm: {message}"
    assert caught.value.exit_code == ExitCode.CLUSTER


@pytest.mark.parametrize(
    ("users", "rate", "run_time", "host"),
    [
        (-1, 1.0, 10, None),
        (True, 1.0, 10, None),
        (2.5, 1.0, 10, None),
        (1, 0, 10, None),
        (1, -2, 10, None),
        (1, float("inf"), 10, None),
        (1, float("nan"), 10, None),
        (1, 1.0, 0, None),
        (1, 1.0, 1.5, None),
        (1, 1.0, 10, "http://<evil>"),
    ],
)
def test_bad_swarm_arguments_are_refused_before_sending(
    mock: responses.RequestsMock, users: Any, rate: Any, run_time: Any, host: Any
) -> None:
    # A rejected /swarm would still cancel Locust's run_time timer: never send one.
    with pytest.raises(ValidationFailed):
        LocustClient(BASE).swarm(users, rate, host, run_time)
    assert len(mock.calls) == 0


def test_swarm_custom_argument_error_is_http_500_text(mock: responses.RequestsMock) -> None:
    mock.post(
        f"{BASE}/swarm",
        body="invalid literal for int() with base 10: 'abc'",
        status=500,
        content_type="text/html",
    )
    with pytest.raises(ClusterError, match=r"HTTP 500: invalid literal for int\(\)"):
        LocustClient(BASE).swarm(1, 1.0, None, 10)


def test_stop_posts_with_the_long_timeout(mock: responses.RequestsMock) -> None:
    mock.post(f"{BASE}/stop", json={"success": True, "message": "Test stopped"})
    assert LocustClient(BASE, timeout=3, stop_timeout=120).stop()["success"] is True
    assert sent_options(mock.calls[0])["timeout"] == (3, 120)


def test_reset_stats_posts(mock: responses.RequestsMock) -> None:
    mock.post(f"{BASE}/stats/reset", body="ok", content_type="text/html")
    LocustClient(BASE).reset_stats()
    assert mock.calls[0].request.method == "POST"


def test_version_comes_from_the_index_template_args(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/", body=INDEX_HTML, content_type="text/html")
    assert LocustClient(BASE).version() == "2.47.0"


def test_version_ignores_a_custom_argument_named_version(mock: responses.RequestsMock) -> None:
    html = INDEX_HTML.replace('"available_user_classes"', '"extra_options": {"version": "v9"}, "a"')
    mock.get(f"{BASE}/", body=html, content_type="text/html")
    assert LocustClient(BASE).version() == "2.47.0"


def test_version_is_none_when_not_found(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/", body="<html>hello</html>", content_type="text/html")
    assert LocustClient(BASE).version() is None


def test_requests_csv_rows(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests/csv", body=CSV_TEXT.encode(), content_type="text/csv")
    rows = LocustClient(BASE).requests_csv()
    assert [(r["Type"], r["Name"], r["Request Count"]) for r in rows] == [
        ("GET", "/", "1349"),
        ("GET", "/café", "1"),
        ("", "Aggregated", "1349"),
    ]
    assert rows[1]["90%"] == "4" and rows[1]["99.99%"] == "9"


def test_exceptions(mock: responses.RequestsMock) -> None:
    item = {"count": 3, "msg": "boom", "traceback": "tb", "nodes": "local"}
    mock.get(f"{BASE}/exceptions", json={"exceptions": [item]})
    assert LocustClient(BASE).exceptions() == [item]


def test_check_reports_a_master(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", workers=2, users=10))
    mock.get(f"{BASE}/", body=INDEX_HTML, content_type="text/html")
    status = LocustClient(BASE).check()
    assert status.to_dict() == {
        "reachable": True,
        "version": "2.47.0",
        "state": "running",
        "workerCount": 2,
        "userCount": 10,
        "isDistributed": True,
        "pluginVersion": None,
        "error": None,
    }


def test_check_reports_a_standalone_without_worker_count(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload())
    mock.get(f"{BASE}/", body="<html></html>", content_type="text/html")
    status = LocustClient(BASE).check()
    assert status.reachable and status.isDistributed is False and status.workerCount is None


def test_check_reports_the_plugin_version(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload())
    mock.get(f"{BASE}/", body=INDEX_HTML, content_type="text/html")
    mock.get(f"{BASE}/loadmgr/v1/info", json={"plugin": "loadmgr", "version": 7})
    assert LocustClient(BASE).check().pluginVersion == 7


def test_check_counts_an_unreadable_plugin_as_absent(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload())
    mock.get(f"{BASE}/", body=INDEX_HTML, content_type="text/html")
    mock.get(f"{BASE}/loadmgr/v1/info", body="boom", status=500)
    status = LocustClient(BASE).check()
    assert status.reachable and status.pluginVersion is None


def test_check_never_raises(mock: responses.RequestsMock) -> None:
    status = LocustClient(BASE).check()
    assert not status.reachable
    assert status.error == f"cannot reach Locust at {BASE}: connection refused"


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            requests.exceptions.ConnectionError("[Errno 111] Connection refused"),
            "connection refused",
        ),
        (
            requests.exceptions.ConnectionError(
                "NameResolutionError: Failed to resolve 'nope' ([Errno -2] Name or service "
                "not known)"
            ),
            "host name not found",
        ),
        (requests.exceptions.ConnectTimeout("timed out"), "connection timed out after 10s"),
        (
            requests.exceptions.SSLError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
            ),
            "TLS certificate verification failed",
        ),
        (
            requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER]"),
            "TLS handshake failed (is it http, not https?)",
        ),
        (requests.exceptions.ConnectionError("something odd"), "connection failed"),
        (
            OSError("Could not find a suitable TLS CA certificate bundle"),
            "Could not find a suitable TLS CA certificate bundle",
        ),
    ],
)
def test_connection_failures_are_short_cluster_errors(
    mock: responses.RequestsMock, error: Exception, reason: str
) -> None:
    mock.get(f"{BASE}/stats/requests", body=error)
    with pytest.raises(ClusterError) as caught:
        LocustClient(BASE).stats()
    assert caught.value.message == f"cannot reach Locust at {BASE}: {reason}"
    assert "\n" not in caught.value.message


def test_read_timeout_names_the_route(mock: responses.RequestsMock) -> None:
    mock.post(f"{BASE}/stop", body=requests.exceptions.ReadTimeout())
    with pytest.raises(ClusterError, match=r"did not answer POST /stop within 90s"):
        LocustClient(BASE).stop()


def test_redirect_to_login_means_authentication_required(mock: responses.RequestsMock) -> None:
    mock.get(
        f"{BASE}/stats/requests",
        status=302,
        headers={"Location": "/login?next=%2Fstats%2Frequests"},
    )
    with pytest.raises(ClusterError, match="requires authentication") as caught:
        LocustClient(BASE).stats()
    assert caught.value.hint is not None
    assert len(mock.calls) == 1  # redirects are not followed to a 200 login page


def test_html_from_a_json_route_is_not_the_api(mock: responses.RequestsMock) -> None:
    mock.get(
        f"{BASE}/stats/requests",
        body="Locust auth exception: no user_loader",
        content_type="text/html",
    )
    with pytest.raises(ClusterError, match="answered /stats/requests with text/html, not JSON"):
        LocustClient(BASE).stats()


def test_unexpected_json_is_refused(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json={"hello": "world"})
    with pytest.raises(ClusterError, match="unexpected stats payload"):
        LocustClient(BASE).stats()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "HTTP 401 (authentication failed)"),
        (403, "HTTP 403 (authentication failed)"),
        (404, "has no /stats/requests (HTTP 404)"),
        (405, "HTTP 405: Method Not Allowed"),
    ],
)
def test_http_errors(mock: responses.RequestsMock, status: int, expected: str) -> None:
    flask_405 = (
        "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n"
        "<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>"
    )
    body = flask_405 if status == 405 else ""
    mock.get(f"{BASE}/stats/requests", body=body, status=status, content_type="text/html")
    with pytest.raises(ClusterError, match=re.escape(expected)):
        LocustClient(BASE).stats()


def test_urls_with_credentials_are_redacted(mock: responses.RequestsMock) -> None:
    assert redact_url("https://bob:pw@host:1/x") == "https://***@host:1/x"
    with pytest.raises(ClusterError) as caught:
        LocustClient("http://bob:hunter2@locust.test:8089").stats()
    assert "hunter2" not in caught.value.message and "***@locust.test" in caught.value.message


def test_long_error_bodies_are_one_short_line(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/worker-count", body="line one\nline two " + "x" * 500, status=500)
    with pytest.raises(ClusterError) as caught:
        LocustClient(BASE).worker_count()
    assert "\n" not in caught.value.message and len(caught.value.message) < 300


# -- TLS and construction ----------------------------------------------------------------


def test_ca_bundle_and_verify_flags_reach_requests(mock: responses.RequestsMock) -> None:
    url = "https://locust.test"
    mock.get(f"{url}/worker-count", json={"worker_count": 0})
    LocustClient(url, ca_bundle="/etc/ca.pem").worker_count()
    LocustClient(url, verify_tls=False).worker_count()
    assert [sent_options(c)["verify"] for c in mock.calls] == ["/etc/ca.pem", False]


def test_from_cluster_uses_its_url_auth_and_tls(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCUST_TOKEN", SECRET)
    cluster = LocustCluster(
        id="k8s",
        baseUrl="https://locust.test/base/",
        auth=ClusterAuth(type="header", headerName="X-Token", secretEnv="LOCUST_TOKEN"),
        caBundle="/ca.pem",
    )
    mock.get("https://locust.test/base/worker-count", json={"worker_count": 1})
    client = LocustClient.from_cluster(cluster, timeout=2.0)
    assert client.worker_count() == 1
    assert mock.calls[0].request.headers["X-Token"] == SECRET
    options = sent_options(mock.calls[0])
    assert options["verify"] == "/ca.pem" and options["timeout"] == (2.0, 2.0)


@pytest.mark.parametrize(
    "auth",
    [
        ClusterAuth(type="basic"),
        ClusterAuth(type="header", secretEnv="X"),
        ClusterAuth(type="header", headerName="X-Token"),
        ClusterAuth(type="login", usernameEnv="U"),
    ],
)
def test_unusable_auth_is_a_validation_error(auth: ClusterAuth) -> None:
    with pytest.raises(ValidationFailed):
        LocustClient(BASE, auth=auth)


# -- header auth -------------------------------------------------------------------------


def test_header_secret_is_read_at_request_time(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock.get(f"{BASE}/worker-count", json={"worker_count": 0})
    client = LocustClient(
        BASE, auth=ClusterAuth(type="header", headerName="Authorization", secretEnv="TOK")
    )
    monkeypatch.setenv("TOK", "Bearer one")
    client.worker_count()
    monkeypatch.setenv("TOK", "Bearer two")
    client.worker_count()
    assert [c.request.headers["Authorization"] for c in mock.calls] == ["Bearer one", "Bearer two"]


def test_header_secret_from_a_file(mock: responses.RequestsMock, tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET + "\n")
    mock.get(f"{BASE}/worker-count", json={"worker_count": 0})
    auth = ClusterAuth(type="header", headerName="X-Token", secretFile=str(secret_file))
    LocustClient(BASE, auth=auth).worker_count()
    assert mock.calls[0].request.headers["X-Token"] == SECRET


def test_missing_secret_names_where_it_should_be(
    mock: responses.RequestsMock, tmp_path: Path
) -> None:
    env_auth = ClusterAuth(type="header", headerName="X-Token", secretEnv="NOT_SET_ANYWHERE")
    with pytest.raises(ClusterError, match="environment variable NOT_SET_ANYWHERE is not set"):
        LocustClient(BASE, auth=env_auth).stats()
    file_auth = ClusterAuth(type="header", headerName="X-Token", secretFile=str(tmp_path / "nope"))
    with pytest.raises(ClusterError, match="cluster auth: secret file .*nope. not found"):
        LocustClient(BASE, auth=file_auth).stats()
    assert len(mock.calls) == 0


def test_secret_never_appears_in_errors(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOK", SECRET)
    mock.get(f"{BASE}/stats/requests", body=f"bad token {SECRET}", status=401)
    client = LocustClient(
        BASE, auth=ClusterAuth(type="header", headerName="X-Token", secretEnv="TOK")
    )
    with pytest.raises(ClusterError) as unauthorized:
        client.stats()
    assert SECRET not in unauthorized.value.message
    assert "authentication failed" in unauthorized.value.message


# -- login auth --------------------------------------------------------------------------

LOGIN_AUTH = ClusterAuth(type="login", usernameEnv="LOCUST_USER", passwordEnv="LOCUST_PASS")


@pytest.fixture
def login_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCUST_USER", "alice")
    monkeypatch.setenv("LOCUST_PASS", " pass word ")


def test_login_keeps_the_session_cookie(mock: responses.RequestsMock, login_env: None) -> None:
    mock.post(
        f"{BASE}/login_submit",
        status=302,
        headers={"Location": "/", "Set-Cookie": "session=abc123; Path=/; HttpOnly"},
    )
    mock.get(f"{BASE}/stats/requests", json=stats_payload())
    client = LocustClient(BASE, auth=LOGIN_AUTH)
    client.stats()
    client.stats()
    login, first, second = mock.calls
    assert form(login) == [("username", "alice"), ("password", " pass word ")]
    assert first.request.headers["Cookie"] == "session=abc123"
    assert second.request.headers["Cookie"] == "session=abc123"


def test_login_path_is_under_the_base_path(mock: responses.RequestsMock, login_env: None) -> None:
    auth = LOGIN_AUTH.model_copy(update={"loginPath": "custom/login_post"})
    mock.post(f"{BASE}/locust/custom/login_post", status=302, headers={"Location": "/locust/"})
    mock.get(f"{BASE}/locust/worker-count", json={"worker_count": 0})
    assert LocustClient(f"{BASE}/locust", auth=auth).worker_count() == 0


def test_rejected_login(mock: responses.RequestsMock, login_env: None) -> None:
    mock.post(f"{BASE}/login_submit", status=302, headers={"Location": "/login"})
    with pytest.raises(ClusterError, match="login to Locust at .* was rejected") as caught:
        LocustClient(BASE, auth=LOGIN_AUTH).stats()
    assert "pass word" not in caught.value.message


def test_expired_session_logs_in_again_once(mock: responses.RequestsMock, login_env: None) -> None:
    mock.post(
        f"{BASE}/login_submit", status=302, headers={"Location": "/", "Set-Cookie": "session=a"}
    )
    mock.get(f"{BASE}/stats/requests", status=302, headers={"Location": "/login"})
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running"))
    assert LocustClient(BASE, auth=LOGIN_AUTH).stats()["state"] == "running"
    paths = [c.request.path_url for c in mock.calls]
    assert paths == ["/login_submit", "/stats/requests", "/login_submit", "/stats/requests"]


def test_login_that_never_sticks_is_an_auth_error(
    mock: responses.RequestsMock, login_env: None
) -> None:
    mock.post(f"{BASE}/login_submit", status=302, headers={"Location": "/"})
    mock.get(f"{BASE}/stats/requests", status=302, headers={"Location": "/login"})
    with pytest.raises(ClusterError, match="requires authentication"):
        LocustClient(BASE, auth=LOGIN_AUTH).stats()


def test_login_without_credentials_in_the_environment(mock: responses.RequestsMock) -> None:
    with pytest.raises(ClusterError, match="environment variable LOCUST_USER is not set"):
        LocustClient(BASE, auth=LOGIN_AUTH).stats()
    assert len(mock.calls) == 0


# -- start_swarm, wait_started, wait_final_stats -----------------------------------------


def test_start_swarm_on_an_idle_standalone(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.post(f"{BASE}/swarm", json={"success": True, "message": "Swarming started"})
    # The cached payload still says stopped for a while after the swarm.
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.get(f"{BASE}/stats/requests", json=stats_payload("spawning", users=2))
    payload = LocustClient(BASE).start_swarm(5, 1.0, "http://t", 10, poll_interval=0.01)
    assert payload["state"] == "spawning"
    assert [c.request.path_url for c in mock.calls] == [
        "/stats/requests",
        "/swarm",
        "/stats/requests",
        "/stats/requests",
    ]


def test_start_swarm_refuses_a_master_without_workers(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("ready", workers=0))
    mock.get(f"{BASE}/worker-count", json={"worker_count": 0})
    swarm = mock.post(f"{BASE}/swarm", json={"success": True})
    with pytest.raises(ClusterError, match="has no workers connected") as caught:
        LocustClient(BASE).start_swarm(5, 1.0, None, 10, poll_interval=0.01)
    assert caught.value.exit_code == ExitCode.CLUSTER
    assert swarm.call_count == 0


def test_start_swarm_waits_for_workers_to_come_back(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped", workers=0))
    mock.get(f"{BASE}/worker-count", json={"worker_count": 0})
    mock.get(f"{BASE}/worker-count", json={"worker_count": 2})
    mock.post(f"{BASE}/swarm", json={"success": True, "message": "Swarming started"})
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", workers=2, users=5))
    payload = LocustClient(BASE).start_swarm(
        5, 1.0, None, 10, worker_wait_sec=5, poll_interval=0.01
    )
    assert payload["state"] == "running"


def test_start_swarm_refuses_a_busy_locust(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "STATS_CACHE_SEC", 0.05)
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", users=50))
    swarm = mock.post(f"{BASE}/swarm", json={"success": True})
    with pytest.raises(ClusterBusy, match=r"already running a test \(state running, 50 users\)"):
        LocustClient(BASE).start_swarm(5, 1.0, None, 10, poll_interval=0.01)
    assert swarm.call_count == 0


def test_start_swarm_that_never_starts_is_stopped(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.post(f"{BASE}/swarm", json={"success": True, "message": "Swarming started"})
    stop = mock.post(f"{BASE}/stop", json={"success": True, "message": "Test stopped"})
    with pytest.raises(ClusterError, match=r"did not start the test within 0.1s \(state stopped"):
        LocustClient(BASE).start_swarm(5, 1.0, None, 10, start_timeout=0.1, poll_interval=0.01)
    assert stop.call_count == 1


def test_wait_started_hints_at_missing_workers(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("ready", workers=0))
    with pytest.raises(ClusterError) as caught:
        LocustClient(BASE).wait_started(0.05, poll_interval=0.01)
    assert caught.value.hint == "no workers are connected to the master"


def test_wait_final_stats_standalone_takes_the_first_stopped(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running"))
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    assert LocustClient(BASE).wait_final_stats(5, poll_interval=0.01)["state"] == "stopped"
    assert len(mock.calls) == 2


def test_wait_final_stats_on_a_master_lets_worker_reports_arrive(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "WORKER_REPORT_SEC", 0.05)
    monkeypatch.setattr(client_module, "STATS_CACHE_SEC", 0.05)
    early = stats_payload("stopped", workers=2)
    late = stats_payload("stopped", workers=2)
    late["stats"][0]["num_requests"] = 99
    mock.get(f"{BASE}/stats/requests", json=early)
    mock.get(f"{BASE}/stats/requests", json=late)
    payload = LocustClient(BASE).wait_final_stats(5, poll_interval=0.2)
    assert payload["stats"][0]["num_requests"] == 99


def test_wait_final_stats_gives_up(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running"))
    with pytest.raises(ClusterError, match=r"did not stop within 0.05s \(state running\)"):
        LocustClient(BASE).wait_final_stats(0.05, poll_interval=0.01)


# -- the loadmgr plugin's routes ---------------------------------------------------------

SECONDS_BODY: dict[str, Any] = {
    "plugin": "loadmgr",
    "version": 1,
    "now": 1795471460.25,
    "complete": 1795471460,
    "final": False,
    "oldest": 1795471455,
    "test_started": 1795471454.5,
    "state": "running",
    "user_count": 5,
    "worker_count": 2,
    "workers_without_plugin": 0,
    "seconds": [{"t": 1795471455, "entries": [["GET", "/", 3, 1, [[2, 2], [40, 1]]]]}],
    "more": False,
}


def test_plugin_version_reads_the_info_route(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/locust/loadmgr/v1/info", json={"plugin": "loadmgr", "version": 1})
    assert LocustClient(f"{BASE}/locust").plugin_version() == 1


def test_plugin_version_is_none_without_the_plugin(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/loadmgr/v1/info", body="<h1>Not Found</h1>", status=404,
             content_type="text/html")
    assert LocustClient(BASE).plugin_version() is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": 500, "body": "boom"}, "HTTP 500: boom"),
        ({"status": 302, "headers": {"Location": "/login"}}, "requires authentication"),
        ({"json": {"plugin": "other", "version": 1}}, "unexpected /loadmgr/v1/info answer"),
        ({"json": {"plugin": "loadmgr", "version": "1"}}, "unexpected /loadmgr/v1/info answer"),
        ({"body": "<html>login</html>", "content_type": "text/html"}, "text/html, not JSON"),
    ],
)
def test_plugin_version_other_failures_raise(
    mock: responses.RequestsMock, answer: dict[str, Any], expected: str
) -> None:
    mock.get(f"{BASE}/loadmgr/v1/info", **answer)
    with pytest.raises(ClusterError) as caught:
        LocustClient(BASE).plugin_version()
    assert expected in caught.value.message


def test_plugin_version_unreachable_raises(mock: responses.RequestsMock) -> None:
    with pytest.raises(ClusterError, match="connection refused"):
        LocustClient(BASE).plugin_version()


def test_seconds_returns_the_raw_answer(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/loadmgr/v1/seconds", json=SECONDS_BODY)
    assert LocustClient(BASE).seconds() == SECONDS_BODY
    assert parse_qsl(mock.calls[0].request.url.split("?", 1)[1]) == [("limit", "600")]


def test_seconds_sends_after_and_limit(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/locust/loadmgr/v1/seconds", json=SECONDS_BODY)
    LocustClient(f"{BASE}/locust/").seconds(after=1795471454, limit=3600)
    query = parse_qsl(mock.calls[0].request.url.split("?", 1)[1])
    assert query == [("after", "1795471454"), ("limit", "3600")]


@pytest.mark.parametrize("limit", [0, 3601, -1, True, 2.5])
def test_seconds_refuses_a_bad_limit_before_sending(
    mock: responses.RequestsMock, limit: Any
) -> None:
    with pytest.raises(ValidationFailed, match="limit"):
        LocustClient(BASE).seconds(limit=limit)
    assert not mock.calls


def test_seconds_bad_query_error_is_one_line(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/loadmgr/v1/seconds", status=400,
             json={"error": "after must be an integer, got 'x'"})
    with pytest.raises(ClusterError) as caught:
        LocustClient(BASE).seconds(after=1)
    assert caught.value.exit_code == ExitCode.CLUSTER
    assert caught.value.message.endswith("HTTP 400: after must be an integer, got 'x'")


def test_seconds_without_the_plugin_hints_at_it(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/loadmgr/v1/seconds", status=404, body="Not Found")
    with pytest.raises(ClusterError) as caught:
        LocustClient(BASE).seconds()
    assert "HTTP 404" in caught.value.message
    assert caught.value.hint and "loadmgr clusters plugin" in caught.value.hint


@pytest.mark.parametrize(
    "body",
    [
        {**SECONDS_BODY, "plugin": "other"},
        {**SECONDS_BODY, "seconds": None},
        {**SECONDS_BODY, "complete": 1.5},
        [SECONDS_BODY],
    ],
)
def test_seconds_unexpected_answer(mock: responses.RequestsMock, body: Any) -> None:
    mock.get(f"{BASE}/loadmgr/v1/seconds", json=body)
    with pytest.raises(ClusterError, match="unexpected"):
        LocustClient(BASE).seconds()


def test_seconds_behind_a_login_page(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/loadmgr/v1/seconds", status=302, headers={"Location": "/login"})
    with pytest.raises(ClusterError, match="requires authentication"):
        LocustClient(BASE).seconds()
