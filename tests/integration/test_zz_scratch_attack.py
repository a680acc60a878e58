"""Scratch (not committed): hostile stored documents through act/write commands."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from tests.integration.test_any_stored_document_reads import VALID, RUN, TEST, OTHER, INTERVALS
from tests.metrics_data import store_all

pytestmark = pytest.mark.integration

WRONGS = ["yesterday", -1, True, None, [], {"a": [1]}]


@pytest.mark.timeout(1500)
def test_scratch(cli: Any, mongo_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADMGR_SECRET_HOOK", "http://127.0.0.1:1/hook")
    r = cli("notify", "add", "n1", "--webhook-env", "LOADMGR_SECRET_HOOK", "-q")
    print("notify add", r.exit_code, r.stderr[-300:])
    base_notif = mongo_db["notifications"].find_one({})
    print("NOTIF", base_notif)
    NID = base_notif["id"]
    found = []
    for collection, docs in [("notifications", [base_notif]), *[(c, d) for c, d in VALID.items() if c in ("load_test_runs", "schedules", "load_tests")]]:
        for doc in docs:
            if doc is None:
                continue
            for key in sorted(k for k in doc if k != "_id"):
                for wrong in WRONGS:
                    for name in mongo_db.list_collection_names():
                        mongo_db[name].delete_many({})
                    for c2, d2 in VALID.items():
                        if c2 != collection:
                            mongo_db[c2].insert_many(copy.deepcopy(d2))
                    spoiled = copy.deepcopy(doc)
                    spoiled[key] = wrong
                    if collection != "cluster_leases":
                        spoiled["_id"] = ObjectId()
                    try:
                        mongo_db[collection].insert_one(spoiled)
                    except Exception as exc:  # noqa: BLE001
                        continue
                    for argv in (
                        ["notify", "list"], ["notify", "show", NID],
                        ["notify", "test", NID],
                        ["notify", "remove", NID],
                        ["runs", "stop", RUN.id],
                        ["tests", "baseline", TEST.id, "set", RUN.id] ,
                        ["tests", "update", TEST.id, "--description", "x"],
                        ["tests", "delete", TEST.id, "--force"],
                        ["schedules", "tick"],
                        ["schedules", "remove", "nightly"],
                        ["clusters", "check", "k8s"],
                        ["clusters", "remove", "k8s"],
                        ["sources", "check", "prom"],
                        ["db", "prune"],
                        ["db", "migrate"],
                        ["metrics", "report", RUN.id, "--junit", str(tmp_path / "j.xml")],
                        ["metrics", "show", RUN.id, "--view", "server"],
                        ["tests", "trend", TEST.id, "--html", str(tmp_path / "t.html")],
                    ):
                        import time as _t; _s = _t.time(); r = cli(*argv)
                        if _t.time() - _s > 3: print('SLOW', argv, collection, key, _t.time() - _s)
                        if r.exit_code == 70 or "Traceback" in r.stderr:
                            found.append((collection, key, repr(wrong)[:40], argv, r.exit_code, r.stderr.strip().splitlines()[-1:] ))
                            print("FOUND", found[-1])
    print(len(found))
    assert not found
