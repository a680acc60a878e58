"""Short ids (issue 15.1): a unique prefix (8+ characters) of a run's or test's id names it,
on the real wire server; an ambiguous one is exit 5 listing the candidates, in the scope."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models import LoadTest, LoadTestRun, Scope
from loadmgr.store import Store
from tests.conftest import CliResult, documents_of, error_line, ok

pytestmark = pytest.mark.integration

COLLECTIONS = ("load_tests", "load_test_runs", "metrics_timeseries")
TEST_ID = "7e57a1d0-1111-4111-8111-111111111111"


@pytest.fixture
def store(mongo_uri: str) -> Iterator[Store]:
    from loadmgr.service.migration.schema import ensure_schema

    opened = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    opened.ensure_indexes()
    ensure_schema(opened, "tester", lambda _: None)  # no upgrade note in the outputs below
    yield opened
    opened.close()


@pytest.fixture
def seeded(store: Store, tmp_path: Path) -> dict[str, Any]:
    """A test and runs whose ids share prefixes: `abcdef12` (two, in tenant a and b),
    `11112222` (one), `99990000` (twelve, all in tenant a)."""
    store.tests.insert(
        LoadTest(
            id=TEST_ID,
            name="api",
            targetUrl="http://127.0.0.1:1",
            locustfile="locustfile.py",
            locustfileContent="from locust import HttpUser\n",
            tenantId="a",
            envId="dev",
        )
    )
    ids = {
        "abcdef12-aaaa-4000-8000-000000000001": "a",
        "abcdef12-bbbb-4000-8000-000000000002": "b",
        "11112222-cccc-4000-8000-000000000003": "a",
        **{f"99990000-{n:04d}-4000-8000-000000000000": "a" for n in range(12)},
    }
    for run_id, tenant in ids.items():
        store.runs.insert(
            LoadTestRun(
                id=run_id,
                loadTestId=TEST_ID,
                name="seeded",
                targetUsers=1,
                spawnRate=1,
                durationSeconds=5,
                status="Finished",
                tenantId=tenant,
                envId="dev",
            )
        )
    return {"ids": ids}


def test_a_unique_prefix_names_a_run_in_every_command(cli: Any, seeded: dict[str, Any]) -> None:
    full = "11112222-cccc-4000-8000-000000000003"
    for prefix in ("11112222", "11112222-cc", full):
        shown = ok(cli("runs", "show", prefix, "-o", "json")).json()
        assert shown["id"] == full
    assert ok(cli("metrics", "show", "11112222", "-o", "json")).stdout
    assert ok(cli("runs", "list", "--test", "7e57a1d0", "-q")).stdout.split()
    stopped = ok(cli("runs", "stop", "11112222"))
    assert "already Finished" in stopped.stderr


def test_a_unique_prefix_names_a_test_after_its_name(cli: Any, seeded: dict[str, Any]) -> None:
    assert ok(cli("tests", "show", "7e57a1d0", "-o", "json")).json()["id"] == TEST_ID
    assert ok(cli("tests", "show", "api", "-o", "json")).json()["id"] == TEST_ID


def test_an_ambiguous_prefix_is_exit_5_listing_the_candidates(
    cli: Any, seeded: dict[str, Any], mongo_db: Any
) -> None:
    before = documents_of(mongo_db, COLLECTIONS)
    line = error_line(cli("runs", "show", "abcdef12"), 5)
    assert "ambiguous" in line
    assert "abcdef12-aaaa-4000-8000-000000000001" in line
    assert "abcdef12-bbbb-4000-8000-000000000002" in line
    # A longer prefix settles it.
    assert ok(cli("runs", "show", "abcdef12-b", "-o", "json")).json()["tenantId"] == "b"
    # Many candidates: ten listed, then an ellipsis; still one line.
    many = error_line(cli("runs", "stop", "99990000"), 5)
    assert many.count("99990000-") == 10 and many.endswith("…")
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_prefixes_stay_in_the_scope(cli: Any, seeded: dict[str, Any]) -> None:
    # Tenant a sees one `abcdef12` run: the prefix is unique there.
    shown = ok(cli("--tenant", "a", "runs", "show", "abcdef12", "-o", "json")).json()
    assert shown["id"] == "abcdef12-aaaa-4000-8000-000000000001"
    line = error_line(cli("--tenant", "b", "runs", "show", "11112222"), 4)
    assert "not found" in line and "tenant 'b'" in line
    assert error_line(cli("--tenant", "b", "tests", "show", "7e57a1d0"), 4)


@pytest.mark.parametrize(
    "ref",
    [
        "abcdef1",  # 7 characters: too short to be a prefix
        "........",  # would match anything as a regex
        ".*",
        "^abcdef12",
        "abcdef12.*",
        '{"$gt": ""}',
        "abcdef12\\",
        "(abcdef12",
        "x" * 101,
    ],
)
def test_what_is_no_prefix_is_not_found(
    cli: Any, seeded: dict[str, Any], mongo_db: Any, ref: str
) -> None:
    before = documents_of(mongo_db, COLLECTIONS)
    for args in (("runs", "show", ref), ("tests", "show", ref), ("metrics", "show", ref)):
        result: CliResult = cli(*args)
        assert "not found" in error_line(result, 4), args
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_the_prefix_query_uses_the_id_index(seeded: dict[str, Any], store: Store) -> None:
    """What the server plans for the query `ids_starting_with` sends: an index scan."""
    from loadmgr.service.refs import id_by_prefix

    assert id_by_prefix(store.runs, "11112222", "run", "") == (
        "11112222-cccc-4000-8000-000000000003"
    )
    sent: list[Any] = []
    find = store.runs.collection.find
    store.runs.collection.find = lambda query, *a, **k: sent.append(query) or find(query, *a, **k)
    assert id_by_prefix(store.runs, "11112222", "run", "")
    try:
        plan = find(sent[0]).explain()
    except Exception as exc:  # a server without explain: nothing to check there
        pytest.skip(f"the server does not explain queries: {exc}")
    text = str(plan.get("queryPlanner", plan))
    if "IXSCAN" not in text and "COLLSCAN" not in text:
        pytest.skip("the server's explain output names no plan stages")
    assert "IXSCAN" in text and "COLLSCAN" not in text, text
