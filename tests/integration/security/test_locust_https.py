"""Locust over https: a CA bundle, a missing CA (exit 6), insecure with a warning."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import error_line as one_error
from tests.conftest import ok
from tests.integration.security.conftest import Cli
from tests.secure_servers import Certificates, LocustProxy

pytestmark = pytest.mark.integration


# --- Locust over https -----------------------------------------------------------------------


@pytest.fixture
def https_locust(locust: Any, certificates: Certificates, mongo_uri: str) -> Iterator[LocustProxy]:
    with LocustProxy(locust.base_url, certificate=certificates.server) as proxy:
        yield proxy


def test_https_cluster_with_a_ca_bundle(
    cli: Cli, https_locust: LocustProxy, certificates: Certificates
) -> None:
    ok(
        cli(
            "clusters",
            "add",
            "tls",
            "--url",
            https_locust.url,
            "--ca-bundle",
            str(certificates.ca_file),
        )
    )
    checked = ok(cli("clusters", "check", "tls", "-o", "json"))
    report = checked.json()
    assert isinstance(report, dict)
    assert report["reachable"] is True and report["state"] in ("ready", "stopped")
    assert "warning" not in checked.stderr


def test_https_cluster_without_the_ca_is_exit_6(
    cli: Cli, https_locust: LocustProxy, certificates: Certificates
) -> None:
    ok(cli("clusters", "add", "untrusted", "--url", https_locust.url))
    line = one_error(cli("clusters", "check", "untrusted"), 6)
    assert "TLS certificate verification failed" in line
    ok(
        cli(
            "clusters",
            "add",
            "wrong-ca",
            "--url",
            https_locust.url,
            "--ca-bundle",
            str(certificates.other_ca_file),
        )
    )
    assert "TLS certificate verification failed" in one_error(
        cli("clusters", "check", "wrong-ca"), 6
    )


def test_insecure_https_works_but_warns(cli: Cli, https_locust: LocustProxy) -> None:
    added = ok(cli("clusters", "add", "lax", "--url", https_locust.url, "--insecure", "-q"))
    assert added.stdout.strip() == "lax"
    assert "warning:" in added.stderr and "not be verified" in added.stderr
    checked = ok(cli("clusters", "check", "lax", "-o", "json"))
    assert checked.json()["reachable"] is True  # type: ignore[index]
    assert "warning:" in checked.stderr and "not verified" in checked.stderr
    shown = ok(cli("clusters", "show", "lax"))
    assert "NOT verified" in shown.stdout


def test_ca_bundle_and_insecure_together_are_refused(cli: Cli, mongo_db: Any) -> None:
    line = one_error(
        cli(
            "clusters",
            "add",
            "both",
            "--url",
            "https://127.0.0.1:1",
            "--ca-bundle",
            "ca.pem",
            "--insecure",
        ),
        2,
    )
    assert "--insecure" in line
    assert mongo_db.locust_clusters.count_documents({}) == 0
