"""Issue 21, item 13: one rule for a load target's URL. `tests create` accepted
`http://host/<x>`, which `runs start` then refused ("characters Locust would strip"): the
test could never run. `tests create`, `tests update` and `clusters add --url` now check
the URL with the rule a run's /swarm checks its host with (`target_url_refusal`), so
whatever a test is created with, its run accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.errors import ValidationFailed
from loadmgr.locust.protocol import check_swarm_args
from loadmgr.models import Scope
from loadmgr.service.definitions.tests import TestChanges, TestSpec, change_test, create_test
from loadmgr.store import Store
from tests.conftest import CliResult, error_line
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - a fixture

Cli = Callable[..., CliResult]

# Each accepted by `tests create` before, each refused by `runs start`'s check or useless
# as a target (no request can carry it).
REFUSED = [
    "http://127.0.0.1:1/<x>",
    "http://127.0.0.1:1/a>b",
    "http://127.0.0.1:1/a b",
    "http://127.0.0.1:1/\x1b[31m",
    "http://127.0.0.1:1/\u202eevil",
    "http://127.0.0.1:1/a\tb",
    "http://127.0.0.1:99999/",
    "http://:80/",
]


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text("from locust import HttpUser\n")
    return path


@pytest.mark.parametrize("url", REFUSED)
def test_a_target_a_run_would_refuse_is_refused_at_create_update_and_clusters_add(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    locustfile: Path,
    url: str,
) -> None:
    create = ("tests", "create", "--name", "t", "--locustfile", str(locustfile))
    assert "--target-url" in error_line(cli(*create, "--target-url", url), 2)
    assert cli(*create, "--target-url", "http://127.0.0.1:1/").exit_code == 0
    assert "--target-url" in error_line(cli("tests", "update", "t", "--target-url", url), 2)
    assert "--url" in error_line(cli("clusters", "add", "k8s", "--url", url), 2)
    assert mock_store.client is not None
    db = mock_store.client["loadmgr"]
    assert [d["targetUrl"] for d in db["load_tests"].find()] == ["http://127.0.0.1:1/"]
    assert db["locust_clusters"].count_documents({}) == 0


PIECES = st.sampled_from([*"<> \t\r\n\x00\x7f\x85\u202e\u200b@:/?#%[]aé.", "99999"])
URLS = st.builds(
    lambda scheme, host, port, path, blank: f"{blank}{scheme}{host}{port}{path}{blank}",
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]),
    st.sampled_from(["127.0.0.1", "example.com", "[::1]", "", "é.example"]),
    st.sampled_from(["", ":1", ":8089", ":99999", ":x", ":"]),
    st.lists(PIECES | st.text(max_size=3), max_size=6).map("".join),
    st.sampled_from(["", " "]),
)


@settings(max_examples=300, deadline=None)
@given(url=URLS)
def test_whatever_create_and_update_accept_a_run_accepts(url: str) -> None:
    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    store.clusters.collection.insert_one({"id": "k8s", "baseUrl": "http://127.0.0.1:1"})
    try:
        test = create_test(store, "me", TestSpec(name="t", target_url=url, cluster="k8s"))
    except ValidationFailed:
        pass
    else:
        check_swarm_args(1, 1.0, test.targetUrl, 60)  # raises if the run would refuse it
    good = create_test(
        store, "me", TestSpec(name="u", target_url="http://127.0.0.1:1/", cluster="k8s")
    )
    try:
        changed = change_test(store, "me", good.id, TestChanges(target_url=url))
    except ValidationFailed:
        return
    check_swarm_args(1, 1.0, changed.targetUrl, 60)
