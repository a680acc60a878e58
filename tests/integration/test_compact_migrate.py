"""Issue 26: `db migrate` makes a database's plain intervals, and those in the first compact
form (encoding 1), compact in the current form (encoding 2) in place.

Idempotent (a second run changes nothing), resumable (killed with SIGKILL mid-way, a run
again finishes, and no interval is ever half converted), with progress on stderr; what
every reader shows is the same before and after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import zlib
from typing import Any

import pytest

from loadmgr.models.documents.compact import ENCODING, JSON_ENCODING
from tests.conftest import loadmgr_command, ok, reaped
from tests.metrics_data import (
    in_encoding_1,
    in_encoding_2,
    make_run,
    make_test,
    plugin_snapshots,
    snapshots,
    store_all,
)
from tests.polling import wait_for

pytestmark = pytest.mark.integration

COMPACT = {"encoding": ENCODING}
OLD = {"encoding": JSON_ENCODING}
TOTAL = 2000


def _views(cli: Any, run_id: str) -> list[str]:
    return [
        ok(cli("metrics", "show", run_id, "-o", "json")).stdout,
        ok(cli("metrics", "show", run_id, "--view", "timeseries", "-o", "json")).stdout,
        ok(cli("metrics", "show", run_id, "--from", "0s", "-o", "json")).stdout,
        ok(cli("metrics", "show", run_id, "--view", "requests", "-o", "json")).stdout,
        ok(cli("metrics", "show", run_id, "--view", "scatter", "-o", "json")).stdout,
        ok(cli("metrics", "export", run_id, "--requests", "-o", "csv")).stdout,
    ]


def test_migrate_makes_intervals_compact_once_and_reads_the_same(mongo_db: Any, cli: Any) -> None:
    test = make_test()
    plugin_run = make_run(test, collectionMode="plugin")
    stats_run = make_run(test, name="stats")
    old_run = make_run(test, name="old", collectionMode="plugin")
    second_run = make_run(test, name="second", collectionMode="plugin")
    runs = (plugin_run, stats_run, old_run, second_run)
    store_all(
        mongo_db,
        test,
        list(runs),
        plugin_snapshots(plugin_run, 12) + snapshots(stats_run, 5),
    )
    # Intervals in the first compact form (encoding 1: `histZ` as JSON), as an older
    # loadmgr stored them: read as they are, and converted too.
    mongo_db["metrics_timeseries"].insert_many(
        [in_encoding_1(s.model_dump(mode="python")) for s in plugin_snapshots(old_run, 6)]
        # and in the second (encoding 2: `requestStatsZ` one JSON object)
        + [in_encoding_2(s.model_dump(mode="python")) for s in plugin_snapshots(second_run, 4)]
    )
    before = {run.id: _views(cli, run.id) for run in runs}
    plain_bytes = mongo_db.command("collStats", "metrics_timeseries").get("size")

    dry = ok(cli("db", "migrate", "--dry-run", "-o", "json"))
    assert dry.json()["compactIntervals"] == {"examined": 27, "changed": 0}
    assert mongo_db["metrics_timeseries"].count_documents(COMPACT) == 0

    first = ok(cli("db", "migrate", "-o", "json"))
    assert first.json()["compactIntervals"] == {"examined": 27, "changed": 27}
    assert "27 plain or older-form intervals examined, 27 made compact" in first.stderr
    assert mongo_db["metrics_timeseries"].count_documents(COMPACT) == 27
    assert mongo_db["metrics_timeseries"].count_documents({"requestStats": {"$exists": True}}) == 0
    assert _halves(mongo_db) == 0
    if plain_bytes:
        assert mongo_db.command("collStats", "metrics_timeseries")["size"] < plain_bytes
    assert {run.id: _views(cli, run.id) for run in runs} == before

    again = ok(cli("db", "migrate", "-o", "json"))
    assert again.json()["compactIntervals"] == {"examined": 0, "changed": 0}


def _halves(db: Any) -> int:
    """Intervals half converted: marked compact with plain fields left, or the reverse, or
    with a `histZ` or `requestStatsZ` not of the form their mark says (`histZ` packed
    integers in encodings 2 and 3, a width byte first, JSON in encoding 1;
    `requestStatsZ` a JSON object in encodings 1 and 2, a header's length first in 3)."""
    collection = db["metrics_timeseries"]
    halves = collection.count_documents(
        {
            "$or": [
                {"encoding": {"$exists": True}, "hist": {"$type": "string", "$ne": ""}},
                {"encoding": {"$exists": False}, "requestStatsZ": {"$exists": True}},
                {"encoding": {"$exists": False}, "histZ": {"$exists": True}},
            ]
        }
    )
    for doc in collection.find({"histZ": {"$exists": True}}, {"encoding": 1, "histZ": 1}):
        json_form = zlib.decompress(doc["histZ"])[:1] == b"["
        halves += json_form != (doc["encoding"] == JSON_ENCODING)
    fields = {"encoding": 1, "requestStatsZ": 1}
    for doc in collection.find({"requestStatsZ": {"$exists": True}}, fields):
        json_form = zlib.decompress(doc["requestStatsZ"])[:1] == b"{"
        halves += json_form != (doc["encoding"] != ENCODING)
    return halves


@pytest.mark.parametrize("form", ["plain", "encoding 1", "encoding 2"])
def test_migrate_killed_mid_way_finishes_when_run_again(mongo_db: Any, cli: Any, form: str) -> None:
    test = make_test()
    run = make_run(test, collectionMode="plugin")
    intervals = plugin_snapshots(run, TOTAL)
    if form == "plain":
        store_all(mongo_db, test, [run], intervals)
    else:
        store_all(mongo_db, test, [run])
        older = in_encoding_1 if form == "encoding 1" else in_encoding_2
        mongo_db["metrics_timeseries"].insert_many(
            [older(s.model_dump(mode="python")) for s in intervals]
        )
    before = ok(cli("metrics", "show", run.id, "--from", "0s", "-o", "json")).stdout
    collection = mongo_db["metrics_timeseries"]

    with reaped(
        subprocess.Popen(
            [*loadmgr_command(), "db", "migrate"],
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    ) as process:
        assert wait_for(lambda: collection.count_documents(COMPACT) > 0, timeout=60)
        process.send_signal(signal.SIGKILL)
        process.communicate()
    done = collection.count_documents(COMPACT)
    assert 0 < done < TOTAL, "the kill came too late to test a resume"
    assert _halves(mongo_db) == 0

    again = ok(cli("db", "migrate", "-o", "json"))
    # What was done is not done again (the server may finish the write it was sent
    # after the kill: a page more than counted).
    assert 0 < again.json()["compactIntervals"]["changed"] <= TOTAL - done
    assert "intervals examined" in again.stderr
    assert collection.count_documents(COMPACT) == TOTAL and _halves(mongo_db) == 0
    assert ok(cli("metrics", "show", run.id, "--from", "0s", "-o", "json")).stdout == before
