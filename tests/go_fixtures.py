"""The Go control plane's documents and indexes (shared/go-control-plane/), loaded into a
test database as the Go service left them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# The fixtures live beside the repository (in the shared folder of the workspace).
GO_FIXTURES = REPO / ".." / "shared" / "go-control-plane"
GO_COLLECTIONS = ("load_tests", "load_test_runs", "script_revisions", "metrics_timeseries")


def require_fixtures() -> Path:
    if not (GO_FIXTURES / "indexes.json").is_file():
        pytest.skip(f"the Go control plane fixtures are missing ({GO_FIXTURES})")
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
