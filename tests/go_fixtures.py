"""The Go control plane's documents and indexes (tests/data/go-control-plane/), loaded into a
test database as the Go service left them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# Documents a real run of the Go service wrote (tests/data/README.md says how).
GO_FIXTURES = REPO / "tests" / "data" / "go-control-plane"
GO_COLLECTIONS = ("load_tests", "load_test_runs", "script_revisions", "metrics_timeseries")


def require_fixtures() -> Path:
    if not (GO_FIXTURES / "indexes.json").is_file():
        pytest.fail(f"the Go control plane fixtures are missing ({GO_FIXTURES})")
    return GO_FIXTURES


def go_documents(collection: str) -> list[dict[str, Any]]:
    from bson import json_util

    loaded: list[dict[str, Any]] = json_util.loads(
        (require_fixtures() / f"{collection}.json").read_text()
    )
    return loaded


def create_go_indexes(db: Any) -> None:
    """The Go service's indexes, with its names and options, as it creates them."""
    from bson import json_util

    indexes = json_util.loads((require_fixtures() / "indexes.json").read_text())
    for collection, infos in indexes.items():
        for name, info in infos.items():
            if name == "_id_":
                continue
            options = {"unique": True} if info.get("unique") else {}
            db[collection].create_index([tuple(k) for k in info["key"]], name=name, **options)


def load_go_documents(db: Any) -> None:
    for collection in GO_COLLECTIONS:
        db[collection].insert_many(go_documents(collection))


# The ids in the fixtures (tests/data/README.md).
GO_TEST = "go-test-3"
RUN_AUTO = "87027ee1-360c-450d-bf0a-1e0916fe9544"
RUN_MANUAL = "dd086155-d174-433b-968c-df2fa9104b4f"
RUN_STOPPED = "3270b5e0-79ad-41ca-96da-14c3e9b7a47b"


@pytest.fixture
def go_db(mongo_db: Any) -> Any:
    """This test's database holding what the Go service wrote, with its indexes."""
    require_fixtures()
    create_go_indexes(mongo_db)
    load_go_documents(mongo_db)
    return mongo_db
