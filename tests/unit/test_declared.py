"""`loadmgr apply` / `loadmgr export` on mongomock: a plan first, idempotent, checked
before anything is written (each bad input: exit 2 naming file:line and key, nothing
written), field-level updates, `--prune` limited to the file's own, and the round trip
export → apply = "no changes" over every field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.service.declared.files import tomllib
from loadmgr.service.declared.locations import Locations, key_path, toml_string
from tests.conftest import CliResult, documents_of, error_line, ok
from tests.secret_allowance import allow_secrets
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - the fixture

Cli = Callable[..., CliResult]
COLLECTIONS = ("load_tests", "schedules", "notifications", "schedule_slots")


@pytest.fixture(autouse=True)
def _hooks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    allow_secrets(monkeypatch, "TEAM_HOOK", "OPS_HOOK", directory=tmp_path)
    monkeypatch.setenv("TEAM_HOOK", "https://hooks.example.com/T0/secret")
    monkeypatch.setenv("OPS_HOOK", "https://hooks.example.com/T1/secret")
    (tmp_path / "hook.url").write_text("https://hooks.example.com/T2/secret\n")


@pytest.fixture
def db(mock_store: Captured) -> Any:  # noqa: F811 - the imported fixture
    assert mock_store.client is not None
    return mock_store.client["loadmgr"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "locust").mkdir()
    (tmp_path / "locust" / "checkout.py").write_text("from locust import HttpUser\n")
    (tmp_path / "locust" / "search.py").write_text("from locust import HttpUser\n# s\n")
    return tmp_path


FULL = """\
[tests.checkout]
target_url = "http://127.0.0.1:1"
locustfile = "locust/checkout.py"
description = "The checkout flow"
tags = ["web", "nightly"]
users = 20
spawn_rate = 2.5
duration = "5m"
max_duration = "10m"
warmup = "30s"
max_users = 200
scenario = "checkout-v2"
thresholds = ["p95<500ms", "error_rate<1%"]
metadata = { team = "payments", ticket = "42" }
locust_options = { "exclude-tags" = "slow", "equal-weights" = "" }

[tests.search]
target_url = "http://127.0.0.1:2"
locustfile = "locust/search.py"

[schedules.checkout-nightly]
test = "checkout"
cron = "0 3 * * *"
timezone = "Europe/Paris"
users = 30
spawn_rate = 3.0
duration = "2m"
workers = 2
thresholds = ["p99<900ms"]
metadata = { why = "nightly" }
locust_options = { tags = "checkout" }
grace = "5m"
failure_limit = 5

[notifications.team]
webhook_env = "TEAM_HOOK"
format = "slack"
on = ["failed", "change"]
test = "checkout"

[notifications.ops]
webhook_file = "hook.url"
tag = "nightly"
"""


def write(folder: Path, text: str, name: str = "loadtests.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def apply(cli: Cli, path: Path, *extra: str) -> CliResult:
    return cli("apply", "-f", str(path), *extra)


def test_apply_plans_creates_then_says_no_changes(cli: Cli, db: Any, folder: Path) -> None:
    path = write(folder, FULL)
    first = ok(apply(cli, path))
    for line in (
        "+ test checkout",
        "+ test search",
        "+ schedule checkout-nightly",
        "+ notification team",
        "+ notification ops",
        "5 to create",
    ):
        assert line in first.stdout
    stored = documents_of(db, COLLECTIONS)
    test = db.load_tests.find_one({"name": "checkout"})
    assert test["managedBy"] == "loadtests.toml" and test["locustfile"] == "locust/checkout.py"
    assert test["defaultSpawnRate"] == 2.5 and test["warmupSec"] == 30
    assert test["locustOptions"] == {"exclude-tags": "slow", "equal-weights": ""}
    assert db.schedules.find_one()["managedBy"] == "loadtests.toml"
    second = ok(apply(cli, path, "-o", "json"))
    assert second.json()["changes"] == [] and second.json()["applied"] is False
    assert documents_of(db, COLLECTIONS) == stored  # nothing written, not even a date
    assert "secret" not in str(stored) + first.stdout + first.stderr


def test_edited_file_changes_only_what_changed(cli: Cli, db: Any, folder: Path) -> None:
    path = write(folder, FULL)
    ok(apply(cli, path))
    before = {d["name"]: d for d in db.load_tests.find({}, {"_id": False})}
    schedule_before = db.schedules.find_one({}, {"_id": False})
    edited = (
        FULL.replace("\nusers = 20\n", "\nusers = 25\n")
        .replace('"p95<500ms", "error_rate<1%"', '"p95<400ms", "error_rate<1%"')
        .replace('cron = "0 3 * * *"', 'cron = "0 4 * * *"')
    )
    (folder / "locust" / "search.py").write_text("from locust import HttpUser\n# changed\n")
    result = ok(apply(cli, write(folder, edited), "-o", "json"))
    changes = {(c["kind"], c["name"]): c["fields"] for c in result.json()["changes"]}
    assert changes[("test", "checkout")] == [
        {"key": "users", "old": 20, "new": 25},
        {
            "key": "thresholds",
            "old": ["p95<500ms", "error_rate<1%"],
            "new": ["p95<400ms", "error_rate<1%"],
        },
    ]
    assert [f["key"] for f in changes[("test", "search")]] == ["locustfile content"]
    assert changes[("schedule", "checkout-nightly")] == [
        {"key": "cron", "old": "0 3 * * *", "new": "0 4 * * *"}
    ]
    assert len(changes) == 3  # the notifications are untouched
    after = {d["name"]: d for d in db.load_tests.find({}, {"_id": False})}
    bookkeeping = {"updatedAt", "updatedBy", "version"}
    differing = {k for k in after["checkout"] if after["checkout"][k] != before["checkout"][k]}
    assert differing - bookkeeping == {"defaultUsers", "thresholds"}
    differing = {k for k in after["search"] if after["search"][k] != before["search"][k]}
    assert differing - bookkeeping == {"locustfileSha256", "locustfileContent"}
    schedule = db.schedules.find_one({}, {"_id": False})
    differing = {k for k in schedule if schedule[k] != schedule_before[k]}
    assert differing - bookkeeping == {"cron", "nextSlotAt"}


def test_dry_run_writes_nothing(cli: Cli, db: Any, folder: Path) -> None:
    result = ok(apply(cli, write(folder, FULL), "--dry-run"))
    assert "5 to create" in result.stdout and "dry run, nothing written" in result.stdout
    assert all(not docs for docs in documents_of(db, COLLECTIONS).values())


# (text replaced in FULL, by what; the line and key path named; words of the error)
BAD_INPUTS = [
    ("users = 20", "users = 20\ncolour = 'red'", 7, "tests.checkout.colour", "unknown key"),
    ("users = 20", "users = '20'", 6, "tests.checkout.users", "must be a whole number"),
    ("users = 20", "users = true", 6, "tests.checkout.users", "must be a whole number"),
    ('tags = ["web", "nightly"]', "tags = ['a', 3]", 5, "tests.checkout.tags[1]", "must be a text"),
    ("users = 20", "users = 0", 6, "tests.checkout.users", "--users"),
    ('duration = "5m"', 'duration = "5x"', 8, "tests.checkout.duration", "--duration"),
]
BAD_TEXTS = [
    (
        FULL.replace('"p95<500ms", "error_rate<1%"', '"p95<500ms",\n  "p96<1s"'),
        14,
        "tests.checkout.thresholds[1]",
        "p96",
    ),
    (FULL.replace("[tests.search]", "[tests.checkout]"), 17, "", "checkout"),
    (
        FULL.replace('test = "checkout"\ncron', 'test = "nobody"\ncron'),
        22,
        "schedules.checkout-nightly.test",
        "neither declared",
    ),
    (
        FULL.replace("locust/search.py", "../elsewhere/search.py"),
        19,
        "tests.search.locustfile",
        "not found",
    ),
    (FULL.replace("locust/search.py", "locust/missing.py"), 17, "tests.search", "not found"),
    (
        FULL.replace("0 3 * * *", "0 3 31 2 *"),
        23,
        "schedules.checkout-nightly.cron",
        "names no date",
    ),
    (
        FULL.replace('webhook_env = "TEAM_HOOK"', 'webhook = "https://hooks.example.com/x"'),
        36,
        "notifications.team.webhook",
        "never given as a URL",
    ),
    (
        FULL.replace('webhook_env = "TEAM_HOOK"', 'webhook_env = "https://hooks.example.com/x"'),
        36,
        "notifications.team.webhook_env",
        "never given as a URL",
    ),
    (
        FULL.replace('"exclude-tags" = "slow"', 'users = "9"'),
        15,
        "tests.checkout.locust_options.users",
        "users",
    ),
    (
        FULL.replace('team = "payments"', '"$team" = "payments"'),
        14,
        'tests.checkout.metadata."$team"',
        "--meta",
    ),
    (
        FULL.replace('on = ["failed", "change"]', 'on = ["failed", "sometimes"]'),
        38,
        "notifications.team",
        "sometimes",
    ),
    (FULL + "\n[clusters.x]\n", FULL.count("\n") + 2, "clusters", "unknown section"),
]


@pytest.mark.parametrize(
    ("text", "line", "path", "words"),
    [
        *[
            (FULL.replace(old, new, 1), line, path, words)
            for old, new, line, path, words in BAD_INPUTS
        ],
        *BAD_TEXTS,
    ],
)
def test_each_bad_input_names_file_line_and_key_and_writes_nothing(
    cli: Cli, db: Any, folder: Path, text: str, line: int, path: str, words: str
) -> None:
    file = write(folder, text)
    message = error_line(apply(cli, file), 2)
    assert message.startswith(f"error: {file}:{line}: {path}"), message
    assert words in message
    assert "secret" not in message and "hooks.example.com" not in message
    assert all(not docs for docs in documents_of(db, COLLECTIONS).values())


def test_duplicate_test_across_files_of_a_folder(cli: Cli, db: Any, folder: Path) -> None:
    write(folder, FULL, "a.toml")
    write(
        folder,
        '\n[tests.search]\ntarget_url = "http://127.0.0.1:3"\nlocustfile = "locust/search.py"\n',
        "b.toml",
    )
    message = error_line(cli("apply", "-f", str(folder)), 2)
    assert f"{folder / 'b.toml'}:2: tests.search: duplicate test name" in message
    assert all(not docs for docs in documents_of(db, COLLECTIONS).values())


def test_prune_deletes_only_what_the_file_manages(cli: Cli, db: Any, folder: Path) -> None:
    ok(apply(cli, write(folder, FULL)))
    other = '[tests.other]\ntarget_url = "http://127.0.0.1:4"\nlocustfile = "locust/search.py"\n'
    ok(apply(cli, write(folder, other, "other.toml")))
    ok(
        cli(
            "tests",
            "create",
            "--name",
            "by-hand",
            "--target-url",
            "http://127.0.0.1:5",
            "--locustfile",
            str(folder / "locust" / "search.py"),
        )
    )
    shrunk = FULL.split("[tests.search]")[0]  # only checkout, no schedule or notification
    kept = ok(apply(cli, write(folder, shrunk), "--dry-run"))
    assert "- " not in kept.stdout  # without --prune nothing is deleted
    pruned = ok(apply(cli, write(folder, shrunk), "--prune", "-o", "json"))
    deleted = {(c["kind"], c["name"]) for c in pruned.json()["changes"] if c["action"] == "delete"}
    assert deleted == {
        ("test", "search"),
        ("schedule", "checkout-nightly"),
        ("notification", "team"),
        ("notification", "ops"),
    }
    assert sorted(d["name"] for d in db.load_tests.find()) == ["by-hand", "checkout", "other"]
    assert ok(apply(cli, write(folder, shrunk), "--prune")).stdout.startswith("no changes")


def test_an_entry_of_another_file_is_refused(cli: Cli, db: Any, folder: Path) -> None:
    ok(apply(cli, write(folder, FULL)))
    stored = documents_of(db, COLLECTIONS)
    message = error_line(apply(cli, write(folder, FULL, "copy.toml")), 5)
    assert "tests.checkout" in message and "managed by loadtests.toml" in message
    assert documents_of(db, COLLECTIONS) == stored


def test_a_test_made_by_hand_is_taken_over(cli: Cli, db: Any, folder: Path) -> None:
    ok(
        cli(
            "tests",
            "create",
            "--name",
            "search",
            "--target-url",
            "http://127.0.0.1:2",
            "--locustfile",
            str(folder / "locust" / "search.py"),
        )
    )
    result = ok(apply(cli, write(folder, FULL), "-o", "json"))
    search = next(c for c in result.json()["changes"] if c["name"] == "search")
    assert search["action"] == "update"
    assert {f["key"] for f in search["fields"]} == {"locustfile", "managed by"}


def test_tests_update_of_a_managed_test_warns(cli: Cli, db: Any, folder: Path) -> None:
    ok(apply(cli, write(folder, FULL)))
    result = ok(cli("tests", "update", "checkout", "--users", "3"))
    assert "managed by loadtests.toml" in result.stderr and "undo" in result.stderr
    by_hand = ok(
        cli(
            "tests",
            "create",
            "--name",
            "x",
            "--target-url",
            "http://127.0.0.1:5",
            "--locustfile",
            str(folder / "locust" / "search.py"),
        )
    )
    assert "managed" not in ok(cli("tests", "update", "x", "--users", "3")).stderr + by_hand.stderr
    assert "users: 3 → 20" in ok(apply(cli, folder / "loadtests.toml")).stdout


def _many(count: int) -> str:
    """20 tests, 5 schedules, 3 notifications over every key."""
    parts = []
    for index in range(count):
        parts.append(
            FULL.split("[schedules.")[0]
            .replace("[tests.checkout]", f"[tests.t{index}]")
            .replace("[tests.search]", f"[tests.s{index}]")
            .replace("users = 20", f"users = {20 + index}")
        )
    return "".join(parts)


def test_export_then_apply_is_no_changes_with_20_tests_5_schedules_3_notifications(
    cli: Cli, db: Any, folder: Path
) -> None:
    text = _many(10)  # 20 tests
    for index in range(5):
        text += (
            FULL.split("[schedules.checkout-nightly]")[1]
            .split("[notifications.")[0]
            .join([f"[schedules.nightly-{index}]", ""])
            .replace('test = "checkout"', f'test = "t{index}"')
        )
    text = text.replace('grace = "5m"', 'saturation_cpu = 80.0\ngrace = "5m"')
    text += FULL.split("[notifications.team]")[1].join(["[notifications.team]", ""])
    text = text.replace('test = "checkout"', 'test = "t1"')
    text += '\n[notifications.all]\nwebhook_env = "OPS_HOOK"\non = ["error"]\n'
    ok(apply(cli, write(folder, text)))
    assert db.load_tests.count_documents({}) == 20 and db.schedules.count_documents({}) == 5
    assert db.notifications.count_documents({}) == 3
    exported = ok(cli("export")).stdout
    stored = documents_of(db, COLLECTIONS)
    result = ok(apply(cli, write(folder, exported)))
    assert result.stdout.startswith("no changes"), result.stdout
    assert documents_of(db, COLLECTIONS) == stored
    # into an empty database, and out again: the same file
    ok(cli("--database", "copy", "apply", "-f", str(folder / "loadtests.toml")))
    assert ok(cli("--database", "copy", "export")).stdout == exported
    only = tomllib.loads(ok(cli("export", "--test", "t3", "--tag", "nightly")).stdout)
    assert set(only["tests"]) == {f"t{i}" for i in range(10)}
    assert set(only["schedules"]) == {f"nightly-{i}" for i in range(5)}


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_word = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tests=st.dictionaries(
        _word,
        st.fixed_dictionaries(
            {
                "users": st.integers(1, 1000),
                "spawn_rate": st.floats(0.01, 1000).map(lambda f: round(f, 2)),
                "duration": st.integers(60, 7200),
                "description": _text,
                "tags": st.lists(_word, max_size=3, unique=True),
                "metadata": st.dictionaries(_word, _text, max_size=3),
                "thresholds": st.lists(
                    st.sampled_from(
                        ["p95<500ms", "p50<=200ms", "error_rate<1%", "rps>=10", "GET /a:p99<1s"]
                    ),
                    max_size=3,
                    unique=True,
                ),
            },
            optional={
                "warmup": st.integers(1, 59),
                "max_users": st.integers(1000, 5000),
                "scenario": _word,
                "saturation_cpu": st.floats(10, 100).map(lambda f: round(f, 1)),
                "floors": st.dictionaries(
                    st.sampled_from(["p95", "p50", "rps", "error_rate", "server.cpu"]),
                    st.one_of(
                        st.integers(0, 500).map(str),  # in the metric's unit
                        st.floats(0, 50).map(lambda f: f"{round(f, 3)}%"),
                    ),
                    max_size=3,
                ),
                "steps": st.tuples(
                    st.lists(st.integers(1, 500), min_size=1, max_size=5),
                    st.integers(60, 600),  # longer than any warm-up drawn
                    st.one_of(st.none(), st.integers(0, 59)),
                ),
            },
        ),
        min_size=1,
        max_size=4,
    ),
    cron=st.sampled_from(["0 3 * * *", "*/15 * * * *", "@daily", "0 6 * * MON-FRI"]),
)
def test_round_trip_property(
    cli: Cli, folder: Path, tests: dict[str, dict[str, Any]], cron: str
) -> None:
    """Any definitions: apply to an empty database, export, apply that to another empty
    one, export again: equal; and applying the export back changes nothing."""
    import uuid

    lines = []
    for name, fields in tests.items():
        lines.append(
            f'[tests.{name}]\ntarget_url = "http://127.0.0.1:1"\nlocustfile = "locust/checkout.py"'
        )
        for key, value in fields.items():
            if key in ("duration", "warmup"):
                value = f"{value}s"
            if key == "steps":
                users, step_sec, settle = value
                lines.append(f'step_duration = "{step_sec}s"')
                if settle is not None:
                    lines.append(f'step_settle = "{settle}s"')
                value = users
            lines.append(f"{key} = {_toml(value)}")
    first = next(iter(tests))
    # a stepped test's steps say its users: a schedule of it may not
    users = "" if "steps" in tests[first] else "\nusers = 2"
    lines.append(f'[schedules.s]\ntest = "{first}"\ncron = "{cron}"{users}')
    lines.append('[notifications.n]\nwebhook_env = "TEAM_HOOK"\ntag = "x"')
    path = write(folder, "\n".join(lines) + "\n")
    one, two = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    ok(cli("--database", one, "apply", "-f", str(path)))
    exported = ok(cli("--database", one, "export")).stdout
    write(folder, exported)
    ok(cli("--database", two, "apply", "-f", str(path)))
    assert ok(cli("--database", two, "export")).stdout == exported
    again = ok(cli("--database", one, "apply", "-f", str(path)))
    assert again.stdout.startswith("no changes"), again.stdout


def test_every_field_of_a_test_is_declared_or_named_as_not_declarable() -> None:
    """A field added to `LoadTest` must be declared in the one table (so export and
    apply carry it) or listed, with its reason, as not declarable."""
    from loadmgr.models import LoadTest
    from loadmgr.service.declared.files import SECTIONS
    from loadmgr.service.declared.plan import TEST_FIELDS
    from loadmgr.service.declared.test_keys import DECLARED_TEST_FIELDS, NOT_DECLARED

    fields = set(LoadTest.model_fields)
    declared, excluded = set(DECLARED_TEST_FIELDS), set(NOT_DECLARED)
    assert not declared & excluded, declared & excluded
    assert fields - declared - excluded == set(), "neither declared nor excluded"
    assert (declared | excluded) - fields == set(), "named in the table but not a field"
    assert all(NOT_DECLARED.values())
    # the format and the plan read the table
    keys = {key for pairs in DECLARED_TEST_FIELDS.values() for key, _ in pairs}
    assert set(SECTIONS["tests"]) == keys
    assert declared <= set(TEST_FIELDS)


def test_export_writes_every_declared_field(cli: Cli, db: Any, folder: Path) -> None:
    """A test with every declarable field set: export writes a key for each, and the
    export applied to an empty database stores the same fields."""
    from loadmgr.service.declared.test_keys import DECLARED_TEST_FIELDS

    text = FULL.split("[tests.search]")[0] + (
        'saturation_cpu = 75.5\nfloors = { p95 = "2ms", rps = "1.5%", "server.cpu" = "3" }\n'
        'steps = [10, 20, 40]\nstep_duration = "1m"\nstep_settle = "5s"\n'
    )
    ok(apply(cli, write(folder, text)))
    exported = tomllib.loads(ok(cli("export")).stdout)["tests"]["checkout"]
    written = {key for pairs in DECLARED_TEST_FIELDS.values() for key, _ in pairs}
    # the local cluster is the default; server metrics have tests of their own
    assert written - set(exported) == {"cluster", "server_metrics", "source"}
    assert exported["floors"] == {"p95": "2ms", "rps": "1.5%", "server.cpu": "3"}
    assert exported["steps"] == [10, 20, 40] and exported["step_settle"] == "5s"
    stored = db.load_tests.find_one({"name": "checkout"})
    assert stored["saturationCpuPct"] == 75.5
    assert stored["steps"] == {"users": [10, 20, 40], "stepSec": 60, "settleSec": 5}
    assert stored["regressionFloors"]["rps"] == {"ofBaseline": 0.015}


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        ("saturation_cpu = 5", "tests.checkout.saturation_cpu", "invalid --saturation-cpu"),
        ('floors = { p96 = "2ms" }', "tests.checkout.floors.p96", "unknown metric"),
        ('floors = { p95 = "x" }', "tests.checkout.floors.p95", "invalid --floor"),
        ("steps = [10, 0]", "tests.checkout.steps", "invalid --steps"),
        ('steps = ["a"]', "tests.checkout.steps[0]", "must be a whole number"),
        ("steps = [10]", "tests.checkout.steps", "step_duration"),
        ('step_duration = "1m"', "tests.checkout.step_duration", "needs steps"),
        ('steps = [1]\nstep_duration = "5s"\nstep_settle = "5s"', "step_settle", "settle"),
    ],
)
def test_bad_new_fields_name_their_key_and_write_nothing(
    cli: Cli, db: Any, folder: Path, entry: str, where: str, message: str
) -> None:
    text = FULL.split("[tests.search]")[0] + entry + "\n"
    line = error_line(apply(cli, write(folder, text)), 2)
    assert where in line and message in line, line
    assert all(db[name].count_documents({}) == 0 for name in COLLECTIONS)


def _toml(value: Any) -> str:
    from loadmgr.service.declared.toml_text import value_text

    return value_text(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_text, _text, max_size=4), _text)
def test_any_text_is_written_as_toml_that_reads_back(table: dict[str, str], text: str) -> None:
    from loadmgr.service.declared.toml_text import toml_text

    data = {"tests": {text or "x": {"description": text, "metadata": table}}}
    assert tomllib.loads(toml_text(data)) == data


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(_text, st.lists(_text, max_size=3), st.booleans()),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
def test_every_key_is_found_on_its_line(items: list[tuple[str, list[str], bool]]) -> None:
    """The line scanner, over odd keys, multi-line arrays and strings with brackets."""
    lines = ["# a comment [not.a.table]", "[tests.'a b']"]
    expected = {}
    for key, values, spread in items:
        expected[("tests", "a b", key)] = len(lines) + 1
        if spread:
            lines.append(f"{toml_string(key)} = [")
            for index, value in enumerate(values):
                expected[("tests", "a b", key, index)] = len(lines) + 1
                lines.append(f"  {toml_string(value)},  # ] }} '")
            lines.append("]")
        else:
            lines.append(f"{toml_string(key)} = " + _toml(values))
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # valid TOML
    found = Locations(text)
    for path, line in expected.items():
        assert found.line_of(path) == line, (key_path(path), text)


def test_the_example_file_applies(cli: Cli, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import REPO

    monkeypatch.setenv("LOADMGR_SECRET_SLACK_WEBHOOK", "https://hooks.example.com/T9/secret")
    example = REPO / "examples" / "loadtests.toml"
    assert "3 to create" in ok(cli("apply", "-f", str(example))).stdout
    assert ok(cli("apply", "-f", str(example))).stdout.startswith("no changes")


def test_a_remote_cluster_may_name_a_locustfile_deployed_there_within_the_tree(
    cli: Cli, db: Any, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:1"))
    monkeypatch.chdir(folder)
    remote = '[tests.r]\ntarget_url = "http://127.0.0.1:1"\ncluster = "k8s"\nlocustfile = "{}"\n'
    write(folder, remote.format("deployed/checkout.py"))
    ok(cli("apply", "-f", "loadtests.toml"))
    assert db.load_tests.find_one({"name": "r"})["locustfile"] == "deployed/checkout.py"
    write(folder, remote.format("../elsewhere/checkout.py"))
    message = error_line(cli("apply", "-f", "loadtests.toml"), 2)
    assert message.startswith("error: loadtests.toml:4: tests.r.locustfile: locustfile")
