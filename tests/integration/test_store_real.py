"""Repository behaviour that needs the real wire server (mongomock lacks it)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pymongo
import pytest

from loadmgr.models import MetricSnapshot, Scope
from loadmgr.store import Store

pytestmark = pytest.mark.integration


def test_retried_interval_writes_never_duplicate(mongo_uri):
    store = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    try:
        store.ensure_indexes()
        now = datetime.now(timezone.utc)
        snapshots = [
            MetricSnapshot(loadTestRunId="r1", timestamp=now, seq=seq, totalRequests=seq * 10)
            for seq in range(1, 6)
        ]
        store.metrics.save(snapshots[:3])
        store.metrics.save(snapshots)  # a retry after a failure part-way: 1-3 again, then 4-5
        store.metrics.save(snapshots[2:])
        stored = store.metrics.find_for_run("r1")
        assert [s["seq"] for s in stored] == [1, 2, 3, 4, 5]
        assert [s["totalRequests"] for s in stored] == [10, 20, 30, 40, 50]
        assert store.metrics.last_seq("r1") == 5
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            store.db["metrics_timeseries"].insert_one({"loadTestRunId": "r1", "seq": 1})
    finally:
        store.close()
