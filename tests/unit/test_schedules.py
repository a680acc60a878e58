# ruff: noqa: F811
"""Schedules without a server: cron and time zones, slots, the commands on mongomock,
counting failures, and what `schedules install` prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import mongomock
import pytest

from loadmgr.config import Settings
from loadmgr.models import LoadTestRun, RunStatus, Scope, Verdict
from loadmgr.models.schedules import (
    Schedule,
    check_cron,
    check_timezone,
    occurrences_after,
    runs_by_elapsed_time,
    slots_due,
)
from loadmgr.service.scheduling.install import crontab_text, systemd_text
from loadmgr.service.scheduling.schedules import schedule_run_ended
from loadmgr.store import Store
from tests.conftest import CliResult, create_test_argv, documents_of, error_line

# The CLI tests' mongomock store and locustfile fixtures, shared (hence the redefinitions).
from tests.unit.test_cli_unit import Captured, locustfile, mock_store  # noqa: F401

# Most schedules here run on `local`, which a tick starts only where the machine allows it.
pytestmark = pytest.mark.usefixtures("tick_local")

Cli = Callable[..., CliResult]
UTC = timezone.utc
PARIS = "Europe/Paris"
COLLECTIONS = ("schedules", "schedule_slots", "load_test_runs")


# --- cron expressions, time zones, slots ---------------------------------------------------


@pytest.mark.parametrize("expression", ["0 3 * * *", "*/15 * * * *", "@daily", "0 3 * * MON-FRI"])
def test_valid_cron(expression: str) -> None:
    assert check_cron(f"  {expression} ") == expression


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        ("", "empty"),
        ("* * *", "must have 5 fields"),
        ("0 3 * * * 5", "must have 5 fields"),  # croniter's seconds field: not for a tick
        ("61 * * * *", "out of range"),
        ("0 3 * * 8", "out of range"),
        ("*/0 * * * *", "invalid cron"),
        ("@sometimes", "invalid cron"),
        ("0 3 31 2 *", "names no date"),
    ],
)
def test_invalid_cron(expression: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        check_cron(expression)


@pytest.mark.parametrize("name", ["Mars/Base", "", "../etc/passwd", "/etc/localtime", "utc"])
def test_unknown_time_zones(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        check_timezone(name)


def test_occurrences_in_a_time_zone() -> None:
    after = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert occurrences_after("0 3 * * *", PARIS, after, 2) == [
        datetime(2026, 7, 2, 1, 0, tzinfo=UTC),  # 03:00 in Paris, summer time
        datetime(2026, 7, 3, 1, 0, tzinfo=UTC),
    ]


def test_dst_gap_slot_moves_to_the_first_minute_after_it() -> None:
    # 2026-03-29: Paris skips 02:00-03:00; a 02:30 slot runs at 03:00 that day, once.
    after = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert occurrences_after("30 2 * * *", PARIS, after, 2) == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    ]


def test_dst_overlap_fixed_time_slot_comes_once() -> None:
    # 2026-10-25: Paris lives 02:00-03:00 twice; a 02:30 slot runs in the first pass only
    # (+02:00), like Vixie cron's fixed-time jobs; croniter alone yields it twice.
    after = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    assert occurrences_after("30 2 * * *", PARIS, after, 2) == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]
    # Several fixed hours: each wall-clock time once, 02:30 in the first pass.
    assert occurrences_after("30 1-3 * * *", PARIS, after, 3) == [
        datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 30, tzinfo=UTC),
    ]
    assert occurrences_after("@daily", PARIS, after, 2)[1] == datetime(2026, 10, 25, 23, tzinfo=UTC)


def test_a_tick_in_the_second_pass_finds_nothing_due() -> None:
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 +02:00
    second_pass = datetime(2026, 10, 25, 1, 45, tzinfo=UTC)  # 02:45 +01:00
    assert slots_due("30 2 * * *", PARIS, first, second_pass, 10) == [first]
    following = datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    assert occurrences_after("30 2 * * *", PARIS, first, 1) == [following]
    assert slots_due("30 2 * * *", PARIS, following, second_pass, 10) == []


@pytest.mark.parametrize(
    ("cron", "per_hour"), [("*/15 * * * *", 4), ("0 * * * *", 1), ("@hourly", 1)]
)
def test_dst_overlap_elapsed_time_slots_run_through_the_repeated_hour(
    cron: str, per_hour: int
) -> None:
    # From 00:00 to 04:00 Paris time on the fall-back night: five real hours, every one run.
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    slots = occurrences_after(cron, PARIS, start - timedelta(seconds=1), 5 * per_hour)
    assert slots == [start + timedelta(minutes=60 // per_hour * i) for i in range(5 * per_hour)]
    assert slots_due(cron, PARIS, slots[0], slots[-1], 50) == slots


@pytest.mark.parametrize(
    ("cron", "elapsed"),
    [
        ("*/15 * * * *", True),
        ("0 * * * *", True),
        ("0 */2 * * *", True),
        ("@hourly", True),
        ("30 2 * * *", False),
        ("0,30 1-3 * * *", False),
        ("0 3 * * MON-FRI", False),
        ("@daily", False),
    ],
)
def test_which_crons_run_by_elapsed_time(cron: str, elapsed: bool) -> None:
    assert runs_by_elapsed_time(cron) is elapsed


@pytest.mark.parametrize(
    "night", [datetime(2026, 3, 28, 22, tzinfo=UTC), datetime(2026, 10, 24, 22, tzinfo=UTC)]
)
@pytest.mark.parametrize(
    "cron", ["30 2 * * *", "*/30 * * * *", "0 * * * *", "0,30 1-3 * * *", "0 */2 * * *"]
)
def test_slots_due_walked_back_match_the_slots_walked_forward(night: datetime, cron: str) -> None:
    # A tick walks back from now; `add` and `show` walk forward: across a DST night too.
    forward = occurrences_after(cron, PARIS, night - timedelta(seconds=1), 30)
    end = night + timedelta(hours=6)
    expected = [slot for slot in forward if slot <= end]
    assert slots_due(cron, PARIS, expected[0], end, 50) == expected


def test_slots_due_includes_the_stored_slot_and_is_bounded() -> None:
    first = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    assert slots_due("0 * * * *", "UTC", first, first, 10) == [first]
    assert slots_due("0 * * * *", "UTC", first, first - timedelta(seconds=1), 10) == []
    due = slots_due("0 * * * *", "UTC", first, first + timedelta(hours=2, minutes=5), 10)
    assert due == [first, first + timedelta(hours=1), first + timedelta(hours=2)]
    # A year of minutes is not walked: only the newest `limit` slots.
    many = slots_due("* * * * *", "UTC", first, first + timedelta(days=365), 3)
    assert many[-1] == first + timedelta(days=365) and len(many) == 3


# --- the commands on mongomock -------------------------------------------------------------


def _test(cli: Cli, locustfile: Path, *extra: str) -> dict[str, Any]:
    result = cli(
        *create_test_argv("api", "http://127.0.0.1:1", locustfile),
        "--max-duration",
        "10m",
        "-o",
        "json",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _db(mock_store: Captured) -> Any:
    assert mock_store.client is not None and mock_store.settings is not None
    return mock_store.client[mock_store.settings.database]


def test_add_show_list_pause_resume_remove(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
) -> None:
    test = _test(cli, locustfile)
    added = cli(
        "schedules",
        "add",
        "api",
        "--cron",
        "0 3 * * *",
        "--timezone",
        PARIS,
        "--users",
        "5",
        "--duration",
        "2m",
        "--threshold",
        "p95<500ms",
        "--meta",
        "team=core",
        "-o",
        "json",
    )
    assert added.exit_code == 0, added.stderr
    schedule = json.loads(added.stdout)
    assert schedule["name"] == "api" and schedule["loadTestId"] == test["id"]
    assert schedule["overrides"]["durationSeconds"] == 120
    assert schedule["overrides"]["metadata"] == {"team": "core"}
    assert schedule["paused"] is False and schedule["failureLimit"] == 3
    assert schedule["createdBy"] == "tester"
    assert "next slots:" in added.stderr
    slot = datetime.fromisoformat(schedule["nextSlotAt"].replace("Z", "+00:00"))
    assert slot > datetime.now(UTC) and slot.minute == 0 and slot.hour in (1, 2)
    shown = json.loads(cli("schedules", "show", schedule["id"][:8], "-o", "json").stdout)
    assert (
        len(shown["nextOccurrences"]) == 5 and shown["nextOccurrences"][0] == schedule["nextSlotAt"]
    )
    table = cli("schedules", "list")
    assert table.exit_code == 0 and "0 3 * * *" in table.stdout
    paused = json.loads(
        cli("schedules", "pause", "api", "--reason", "holidays", "-o", "json").stdout
    )
    assert paused["paused"] is True and paused["pausedReason"] == "holidays"
    assert "paused" in cli("schedules", "list").stdout
    resumed = json.loads(cli("schedules", "resume", "api", "-o", "json").stdout)
    assert resumed["paused"] is False and resumed["pausedReason"] is None
    assert cli("schedules", "show", "api").exit_code == 0  # the view for people
    removed = cli("schedules", "remove", "api", "-q")
    assert removed.exit_code == 0 and removed.stdout.strip() == schedule["id"]
    assert _db(mock_store).schedules.count_documents({}) == 0


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("--cron", "61 * * * *"), 2, "out of range"),
        (("--cron", "* * *"), 2, "must have 5 fields"),
        (("--cron", "0 3 * * *", "--timezone", "Mars/Base"), 2, "unknown time zone"),
        (("--cron", "0 3 * * *", "--users", "0"), 2, "--users"),
        (("--cron", "0 3 * * *", "--duration", "1h"), 2, "above the test's maximum"),
        (("--cron", "0 3 * * *", "--duration", "soon"), 2, "--duration"),
        (("--cron", "0 3 * * *", "--threshold", "p95<<3"), 2, "threshold"),
        (("--cron", "0 3 * * *", "--threshold", "p95>500ms"), 2, "lower is better"),
        (("--cron", "0 3 * * *", "--meta", "novalue"), 2, "--meta"),
        (("--cron", "0 3 * * *", "--grace", "later"), 2, "--grace"),
        (("--cron", "0 3 * * *", "--failure-limit", "0"), 2, "--failure-limit"),
        (("--cron", "0 3 * * *", "--saturation-cpu", "5"), 2, "--saturation-cpu"),
        (("--cron", "0 3 * * *", "--saturation-cpu", "nan"), 2, "--saturation-cpu"),
        (("--cron", "0 3 * * *", "--cluster", "nowhere"), 4, "cluster 'nowhere' not found"),
    ],
)
def test_add_refuses_bad_input_and_writes_nothing(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
    args: tuple[str, ...],
    code: int,
    needle: str,
) -> None:
    _test(cli, locustfile)
    before = documents_of(_db(mock_store), COLLECTIONS)
    line = error_line(cli("schedules", "add", "api", *args), code)
    assert needle in line
    assert documents_of(_db(mock_store), COLLECTIONS) == before


def test_unknown_test_or_schedule_is_4_and_duplicate_name_is_5(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
) -> None:
    _test(cli, locustfile)
    assert "test 'nope' not found" in error_line(
        cli("schedules", "add", "nope", "--cron", "0 3 * * *"), 4
    )
    assert cli("schedules", "add", "api", "--cron", "0 3 * * *").exit_code == 0
    before = documents_of(_db(mock_store), COLLECTIONS)
    assert "already exists" in error_line(cli("schedules", "add", "api", "--cron", "@daily"), 5)
    assert documents_of(_db(mock_store), COLLECTIONS) == before
    for command in ("show", "pause", "resume", "remove", "history"):
        assert "schedule 'ghost' not found" in error_line(cli("schedules", command, "ghost"), 4)


def test_tick_with_nothing_due_prints_nothing(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
) -> None:
    _test(cli, locustfile)
    assert cli("schedules", "add", "api", "--cron", "0 3 * * *").exit_code == 0
    quiet = cli("schedules", "tick")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert json.loads(cli("schedules", "tick", "-o", "json").stdout) == []
    assert "--now" in error_line(cli("schedules", "tick", "--now", "yesterday"), 2)


def test_a_tick_starts_local_code_only_where_the_machine_allows_it(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Any writer of the database can schedule a `local` run: its locustfile is Python that
    # would run on the ticking machine. Unless the machine says so, the tick leaves the slot
    # unclaimed (a machine that allows it may take it) and says why.
    _test(cli, locustfile)
    added = json.loads(cli("schedules", "add", "api", "--cron", "0 3 * * *", "-o", "json").stdout)
    slot = datetime.fromisoformat(added["nextSlotAt"].replace("Z", "+00:00"))
    later = slot + timedelta(hours=2)  # beyond the grace: missed, never a run
    db = _db(mock_store)
    before = documents_of(db, COLLECTIONS)
    for refused in ("", "0", "no"):
        monkeypatch.setenv("LOADMGR_TICK_LOCAL", refused)
        result = cli("schedules", "tick", "--now", later.isoformat(), "-o", "json")
        assert result.exit_code == 0 and json.loads(result.stdout) == []
        assert "schedule 'api': not started here" in result.stderr
        assert "LOADMGR_TICK_LOCAL=1" in result.stderr
        assert documents_of(db, COLLECTIONS) == before  # not claimed, nothing recorded
    monkeypatch.setenv("LOADMGR_TICK_LOCAL", "1")
    result = cli("schedules", "tick", "--now", later.isoformat(), "-o", "json")
    assert [s["outcome"] for s in json.loads(result.stdout)] == ["missed"]
    assert db.schedules.find_one({"id": added["id"]})["lastOutcome"] == "missed"


def test_a_stored_second_pass_is_moved_on_without_a_run(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
) -> None:
    # Stored before fixed-time slots ran once at a fall-back: 02:30 +01:00 on 2026-10-25.
    _test(cli, locustfile)
    added = cli("schedules", "add", "api", "--cron", "30 2 * * *", "--timezone", PARIS, "-q")
    second_pass = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    _db(mock_store).schedules.update_one(
        {"id": added.stdout.strip()}, {"$set": {"nextSlotAt": second_pass}}
    )
    now = second_pass + timedelta(seconds=5)
    result = cli("schedules", "tick", "--now", now.isoformat(), "-o", "json")
    assert result.exit_code == 0, result.stderr
    db = _db(mock_store)
    assert json.loads(result.stdout) == [] and db.schedule_slots.count_documents({}) == 0
    stored = db.schedules.find_one({"id": added.stdout.strip()})
    assert stored["nextSlotAt"] == datetime(2026, 10, 26, 1, 30)  # mongomock: naive UTC
    assert stored["lastOutcome"] is None and stored["lastSlotAt"] is None


def test_a_slot_whose_test_was_deleted_is_an_error_and_counts(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
) -> None:
    _test(cli, locustfile)
    added = json.loads(
        cli(
            "schedules", "add", "api", "--cron", "* * * * *", "--failure-limit", "1", "-o", "json"
        ).stdout
    )
    # Deleted behind loadmgr's back (`tests delete` refuses while schedules exist).
    assert _db(mock_store).load_tests.delete_one({"name": "api"}).deleted_count == 1
    # A stored schedule loadmgr cannot read does not keep the others from starting.
    broken = {
        "id": "broken",
        "name": "broken",
        "cron": "nonsense",
        "paused": False,
        "loadTestId": "x",
        "nextSlotAt": datetime(2020, 1, 1, tzinfo=UTC),
    }
    _db(mock_store).schedules.insert_one(broken)
    slot = datetime.fromisoformat(added["nextSlotAt"].replace("Z", "+00:00"))
    result = cli(
        "schedules", "tick", "--now", (slot + timedelta(seconds=2)).isoformat(), "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    [handled] = json.loads(result.stdout)
    assert handled["outcome"] == "error" and "not found" in handled["reason"]
    assert "stored Schedule 'broken' cannot be read" in result.stderr
    # The slot is written as every date is (issue 15: one format).
    assert f"schedule 'api': slot {added['nextSlotAt']} could not start" in result.stderr
    stored = _db(mock_store).schedules.find_one({"id": added["id"]})
    assert stored["paused"] is True and "1 failure in a row" in stored["pausedReason"]


def refused_delete(cli: Cli, db: Any, test: str) -> list[str]:
    """`tests delete TEST --yes` refused for the test's schedules (exit 5, nothing
    changed): its error and hint lines."""
    collections = ["load_tests", "schedules", "schedule_slots"]
    before = documents_of(db, collections)
    refused = cli("tests", "delete", test, "--yes")
    error_line(refused, 5)
    assert documents_of(db, collections) == before
    return refused.stderr.splitlines()


def test_deleting_a_test_with_schedules_needs_force_which_removes_them(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
) -> None:
    _test(cli, locustfile)
    other = cli(
        "tests", "create", "--name", "other", "--target-url", "http://127.0.0.1:1",
        "--locustfile", str(locustfile), "--max-duration", "10m",
    )
    assert other.exit_code == 0, other.stderr
    for name, test in (("nightly", "api"), ("hourly", "api"), ("kept", "other")):
        added = cli("schedules", "add", test, "--cron", "0 3 * * *", "--name", name)
        assert added.exit_code == 0, added.stderr
    # Missed slots in each schedule's history (a day and an hour after now).
    later = datetime.now(UTC) + timedelta(days=1, hours=1)
    assert cli("schedules", "tick", "--now", later.isoformat()).exit_code == 0
    db = _db(mock_store)
    assert db.schedule_slots.count_documents({}) == 3
    refused = refused_delete(cli, db, "api")
    assert refused[0] == "error: test 'api' has 2 schedule(s): 'hourly', 'nightly'"
    assert refused[1].startswith("hint: loadmgr schedules remove NAME")

    assert cli("schedules", "remove", "hourly").exit_code == 0
    refused = refused_delete(cli, db, "api")
    assert refused == [
        "error: test 'api' has 1 schedule(s): 'nightly'",
        "hint: loadmgr schedules remove nightly (or --force: delete them with the test)",
    ]

    deleted = cli("tests", "delete", "api", "--yes", "--force")
    assert deleted.exit_code == 0, deleted.stderr
    assert "with 1 schedule(s)" in deleted.stderr
    assert [s["name"] for s in db.schedules.find()] == ["kept"]
    kept = db.schedules.find_one({"name": "kept"})["id"]
    assert [s["scheduleId"] for s in db.schedule_slots.find()] == [kept]


# --- counting a schedule's runs ------------------------------------------------------------


@pytest.fixture
def store() -> Store:
    return Store(mongomock.MongoClient(tz_aware=True)["db"], Scope(), "mongodb://x")


def _schedule(store: Store, limit: int = 3) -> Schedule:
    schedule = Schedule(
        name="nightly",
        loadTestId="t1",
        cron="0 3 * * *",
        failureLimit=limit,
        nextSlotAt=datetime(2026, 1, 2, 3, 0, tzinfo=UTC),
    )
    return store.schedules.insert(schedule)


def _ended(schedule_id: str | None, verdict: Verdict | None, status: RunStatus) -> LoadTestRun:
    trigger = {"schedule": schedule_id, "slot": datetime(2026, 1, 1, 3, tzinfo=UTC)}
    return LoadTestRun(
        loadTestId="t1",
        targetUsers=1,
        spawnRate=1,
        durationSeconds=5,
        status=status,
        verdict=verdict,
        trigger=trigger if schedule_id else {"user": "alice"},
    )


def test_failures_in_a_row_pause_and_a_pass_resets(store: Store) -> None:
    schedule = _schedule(store)
    failed = (Verdict.FAILED, RunStatus.FINISHED)
    for verdict, status in (failed, (Verdict.ERROR, RunStatus.FAILED)):
        schedule_run_ended(store, _ended(schedule.id, verdict, status))
    assert store.schedules.find_by_id(schedule.id).consecutiveFailures == 2  # type: ignore[union-attr]
    schedule_run_ended(store, _ended(schedule.id, Verdict.ABORTED, RunStatus.FINISHED))
    schedule_run_ended(store, _ended(None, *failed))  # by hand: never counts
    assert store.schedules.find_by_id(schedule.id).consecutiveFailures == 2  # type: ignore[union-attr]
    schedule_run_ended(store, _ended(schedule.id, Verdict.PASSED, RunStatus.FINISHED))
    assert store.schedules.find_by_id(schedule.id).consecutiveFailures == 0  # type: ignore[union-attr]
    for _ in range(3):
        schedule_run_ended(store, _ended(schedule.id, *failed))
    paused = store.schedules.find_by_id(schedule.id)
    assert paused is not None and paused.paused and paused.consecutiveFailures == 3
    assert paused.pausedReason and paused.pausedReason.startswith("3 failures in a row")


def test_inconclusive_runs_are_no_failure_but_three_in_a_row_warn(store: Store) -> None:
    schedule = _schedule(store)
    failed = (Verdict.FAILED, RunStatus.FINISHED)
    inconclusive = (Verdict.INCONCLUSIVE, RunStatus.FINISHED)
    schedule_run_ended(store, _ended(schedule.id, *failed))
    for count in (1, 2):
        schedule_run_ended(store, _ended(schedule.id, *inconclusive))
        now = store.schedules.find_by_id(schedule.id)
        # Neither a failure nor a pass: the failures in a row stand, nothing pauses.
        assert now is not None and (now.consecutiveFailures, now.paused) == (1, False)
        assert (now.consecutiveInconclusive, now.warning) == (count, None)
    schedule_run_ended(store, _ended(schedule.id, *inconclusive))
    warned = store.schedules.find_by_id(schedule.id)
    assert warned is not None and not warned.paused and warned.consecutiveFailures == 1
    assert warned.warning and warned.warning.startswith("3 inconclusive runs in a row")
    schedule_run_ended(store, _ended(schedule.id, Verdict.PASSED, RunStatus.FINISHED))
    passed = store.schedules.find_by_id(schedule.id)
    assert passed is not None and passed.warning is None
    assert (passed.consecutiveInconclusive, passed.consecutiveFailures) == (0, 0)


def test_a_slot_is_claimed_once(store: Store) -> None:
    schedule = _schedule(store)
    later = {"nextSlotAt": schedule.nextSlotAt + timedelta(days=1)}
    assert store.schedules.claim(schedule.id, schedule.nextSlotAt, later) is True
    assert store.schedules.claim(schedule.id, schedule.nextSlotAt, later) is False


# --- schedules install ---------------------------------------------------------------------


def test_crontab_line_masks_the_password(tmp_path: Path) -> None:
    settings = Settings(
        mongo_uri="mongodb://bob:s3cret@db.example:27017/?authSource=admin",
        database="perf",
        tenant="team-a",
        home=tmp_path,
    )
    text, notes = crontab_text(settings)
    assert "s3cret" not in text and "s3cret" not in " ".join(notes)
    assert "LOADMGR_MONGO_URI=mongodb://bob:***@db.example:27017/" in text
    assert "LOADMGR_DATABASE=perf" in text and "LOADMGR_TENANT=team-a" in text
    line = text.splitlines()[-1]
    assert line.startswith("* * * * * /") and " schedules tick >> " in line
    assert line.endswith("schedules-tick.log 2>&1")
    assert any("LOADMGR_MONGO_PASSWORD_FILE" in note for note in notes)


def test_a_password_from_the_environment_is_never_printed(tmp_path: Path) -> None:
    settings = Settings(
        mongo_uri="mongodb://bob@db.example/", mongo_password="pa55word", home=tmp_path
    )
    text, notes = crontab_text(settings)
    assert "pa55word" not in text + " ".join(notes)
    assert "LOADMGR_MONGO_URI=mongodb://bob@db.example/" in text
    assert any("LOADMGR_MONGO_PASSWORD is not printed" in note for note in notes)


def test_systemd_units_let_the_runs_outlive_the_tick(tmp_path: Path) -> None:
    text, notes = systemd_text(Settings(home=tmp_path))
    assert "KillMode=process" in text and "OnCalendar=*-*-* *:*:00" in text
    assert "Type=oneshot" in text and "schedules tick" in text
    assert any("this machine only" in note for note in notes)


def test_install_command_prints_without_connecting(cli: Cli) -> None:
    result = cli("schedules", "install")
    assert result.exit_code == 0, result.stderr
    assert "* * * * * " in result.stdout and "note: no MongoDB URI" in result.stderr


def test_nothing_outside_the_scope_is_seen_or_ticked(
    cli: Cli, mock_store: Captured, locustfile: Path
) -> None:
    _test(cli, locustfile, "--tenant", "a")
    added = cli("schedules", "add", "api", "--cron", "* * * * *", "--tenant", "a", "-o", "json")
    assert added.exit_code == 0, added.stderr
    schedule = json.loads(added.stdout)
    assert schedule["tenantId"] == "a"
    assert json.loads(cli("schedules", "list", "--tenant", "b", "-o", "json").stdout) == []
    for command in ("show", "pause", "resume", "remove", "history"):
        assert "not found in tenant 'b'" in error_line(
            cli("schedules", command, schedule["id"], "--tenant", "b"), 4
        )
    assert "test 'api' not found" in error_line(
        cli("schedules", "add", "api", "--cron", "@daily", "--name", "x", "--tenant", "b"), 4
    )
    before = documents_of(_db(mock_store), COLLECTIONS)
    later = datetime.fromisoformat(schedule["nextSlotAt"].replace("Z", "+00:00"))
    ticked = cli("schedules", "tick", "--tenant", "b", "--now", later.isoformat(), "-o", "json")
    assert json.loads(ticked.stdout) == []
    assert documents_of(_db(mock_store), COLLECTIONS) == before


def test_show_prints_each_next_slot_on_its_own_line(
    cli: Cli, mock_store: Captured, locustfile: Path
) -> None:
    """Issue 20, item 12: the next slots were joined by a literal `\\n` (escaped as data)."""
    _test(cli, locustfile)
    assert cli("schedules", "add", "api", "--cron", "0 3 * * *").exit_code == 0
    shown = cli("schedules", "show", "api")
    assert shown.exit_code == 0, shown.stderr
    assert "\\n" not in shown.stdout
    slots = [line for line in shown.stdout.splitlines() if "T03:00:00.000Z" in line]
    assert len(slots) == 5, shown.stdout


def test_thresholds_are_stored_in_their_canonical_form(
    cli: Cli, mock_store: Captured, locustfile: Path
) -> None:
    """Issue 20, item 14: `p95 < 500` was stored verbatim; it is stored as it is meant."""
    test = _test(cli, locustfile, "--threshold", "p95 < 500", "--threshold", "rps >= 5/s")
    assert test["thresholds"] == ["p95<500ms", "rps>=5"]
    added = cli("schedules", "add", "api", "--cron", "@daily", "--threshold", "p99<1 S")
    assert added.exit_code == 0, added.stderr
    assert _db(mock_store).schedules.find_one()["overrides"]["thresholds"] == ["p99<1s"]


def test_saturation_cpu_is_stored_in_the_overrides_and_used_by_its_runs(
    cli: Cli, mock_store: Captured, locustfile: Path
) -> None:
    """`schedules add --saturation-cpu PCT`: a slot's run is planned with it, over the
    test's own level."""
    from loadmgr.models.schedules import Schedule
    from loadmgr.service.scheduling.schedules import run_options

    _test(cli, locustfile, "--saturation-cpu", "95")
    added = cli("schedules", "add", "api", "--cron", "@daily", "--saturation-cpu", "70")
    assert added.exit_code == 0, added.stderr
    stored = _db(mock_store).schedules.find_one({}, {"_id": False})
    assert stored["overrides"]["saturationCpuPct"] == 70.0
    assert run_options(Schedule.model_validate(stored).overrides).saturation_cpu == 70.0
    assert "saturationCpuPct" in cli("schedules", "show", "api").stdout


def test_install_names_the_variables_the_notifications_need(
    cli: Cli, mock_store: Captured, locustfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20, item 13: the crontab line ran the tick without the webhook's variable, so
    every notification under cron was "NOT sent"."""
    _test(cli, locustfile)
    assert cli("schedules", "add", "api", "--cron", "@daily").exit_code == 0
    monkeypatch.setenv("LOADMGR_SECRET_TEAM_HOOK", "https://hooks.example/secret-path")
    added = cli(
        "notify", "add", "team", "--webhook-env", "LOADMGR_SECRET_TEAM_HOOK", "--on", "failed"
    )
    assert added.exit_code == 0, added.stderr
    for argv in (("schedules", "install"), ("schedules", "install", "--systemd")):
        result = cli(*argv)
        assert result.exit_code == 0, result.stderr
        assert "LOADMGR_SECRET_TEAM_HOOK" in result.stdout
        assert "LOADMGR_SECRET_TEAM_HOOK" in result.stderr
        assert "secret-path" not in result.stdout + result.stderr  # the name only
    assert "# LOADMGR_SECRET_TEAM_HOOK=\n" in cli("schedules", "install").stdout


def test_a_worker_count_no_machine_can_run_is_refused_everywhere(
    cli: Cli, mock_store: Captured, locustfile: Path
) -> None:
    # Stored by any writer, run by whichever machine ticks: bounded where it is given.
    _test(cli, locustfile)
    before = documents_of(_db(mock_store), COLLECTIONS)
    for argv in (
        ("schedules", "add", "api", "--cron", "* * * * *", "--workers", "1000000"),
        ("runs", "start", "api", "--workers", "1000000"),
        ("runs", "start", "api", "--workers", "-1"),
    ):
        assert "--workers" in error_line(cli(*argv), 2) or "workers" in cli(*argv).stderr
    assert documents_of(_db(mock_store), COLLECTIONS) == before
    from loadmgr.models import LOCAL_WORKERS_MAX
    from loadmgr.models.schedules import ScheduleOverrides

    with pytest.raises(ValueError):
        ScheduleOverrides(workers=LOCAL_WORKERS_MAX + 1)  # a stored one is read as refused


def test_a_tick_handles_a_bounded_number_of_due_schedules(
    cli: Cli,
    mock_store: Captured,
    locustfile: Path,
) -> None:
    # Bounded (issue 21, item 1 class), reached through the tick: any writer of the
    # database can store any number of due schedules, each on a cluster of its own, and a
    # tick started a detached collector (a process) for every one of them at once. A tick
    # handles at most MAX_SCHEDULES_PER_TICK (the longest due first); the next the rest.
    from loadmgr.service.lifecycle.tick import MAX_SCHEDULES_PER_TICK

    _test(cli, locustfile)
    added = json.loads(cli("schedules", "add", "api", "--cron", "0 3 * * *", "-o", "json").stdout)
    db = _db(mock_store)
    template = db.schedules.find_one({"id": added["id"]}, {"_id": False})
    more = 10
    for i in range(1, MAX_SCHEDULES_PER_TICK + more):
        db.schedules.insert_one({**template, "id": f"s{i:03d}", "name": f"n{i:03d}"})
    later = (template["nextSlotAt"] + timedelta(hours=2)).isoformat()  # past the grace
    first = cli("schedules", "tick", "--now", later, "-o", "json")
    assert first.exit_code == 0, first.stderr
    handled = {s["scheduleId"] for s in json.loads(first.stdout)}
    assert len(handled) == MAX_SCHEDULES_PER_TICK
    assert f"{more} more due schedules" in first.stderr
    second = cli("schedules", "tick", "--now", later, "-o", "json")
    rest = {s["scheduleId"] for s in json.loads(second.stdout)}
    assert len(rest) == more and not rest & handled and "more due" not in second.stderr
