"""Hostile and odd input: operator injection, Unicode and control characters, long values.

Every argument is a plain string in every query: nothing that looks like a MongoDB operator
finds or changes anything. Data is stored byte for byte and shown without letting it steer
the terminal. Limits are the constants of `loadmgr.models.documents`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models.documents import DESCRIPTION_MAX, META_VALUE_MAX, NAME_MAX, TAG_MAX, URL_MAX
from tests.conftest import CliResult, create_test_argv, documents_of, ok
from tests.conftest import error_line as refused
from tests.integration.conftest import COLLECTIONS, Cli

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mongo_uri")]

INJECTIONS = [
    '{"$gt": ""}',
    '{"$ne": null}',
    "$where",
    "this.name.length > 0",
    "a.b",
    "$regex",
    '{"$regex": ".*"}',
    ".*",
    "^",
    "$",
    "id",
    "",
]
# Characters a terminal would act on: escape sequences, bell, carriage return, C1 CSI,
# and a bidirectional override that reorders what follows.
TERMINAL_BYTES = ("\x1b", "\x07", "\r", "\x9b", "\u202e")
ODD = "🚀 负载 テスト مرحبا שלום e\u0301 \x1b[31mred\x1b[0m \x07bell\rret \x9b2J \u202eevil"


@pytest.fixture
def seeded(cli: Cli, mongo_db: Any, locustfile: Path) -> dict[str, str]:
    """A test, a cluster, a finished run with intervals: things an injection must not reach."""
    test = ok(
        cli(
            *create_test_argv("api", "http://127.0.0.1:1", locustfile),
            "--tag",
            "nightly",
            "-o",
            "json",
        )
    ).json()
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:1"))
    assert isinstance(test, dict)
    now = datetime.now(timezone.utc)
    mongo_db.load_test_runs.insert_one(
        {
            "id": "run-1",
            "loadTestId": test["id"],
            "testName": "api",
            "name": "api run",
            "tenantId": None,
            "envId": None,
            "targetUsers": 1,
            "spawnRate": 1.0,
            "durationSeconds": 5,
            "status": "Finished",
            "stopReason": "duration",
            "locustClusterId": "k8s",
            "createdAt": now,
            "createdBy": "t",
            "updatedAt": now,
            "updatedBy": "t",
            "metadata": {},
            "lastMetrics": {},
            "startedAt": now,
            "finishedAt": now,
        }
    )
    mongo_db.metrics_timeseries.insert_one(
        {
            "loadTestRunId": "run-1",
            "seq": 1,
            "timestamp": now,
            "tenantId": None,
            "envId": None,
            "totalRPS": 1.0,
            "requestStats": [],
        }
    )
    return {"test": test["id"], "run": "run-1", "cluster": "k8s"}


@pytest.fixture
def unchanged(mongo_db: Any, seeded: dict[str, str]) -> Iterator[None]:
    before = documents_of(mongo_db, COLLECTIONS)
    yield
    assert documents_of(mongo_db, COLLECTIONS) == before


# --- operator injection ------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("value", INJECTIONS)
def test_injected_refs_find_nothing_and_change_nothing(cli: Cli, value: str) -> None:
    commands = [
        ("tests", "show", value),
        ("tests", "update", value, "--users", "3"),
        ("tests", "delete", value, "--yes"),
        ("tests", "delete", value, "--yes", "--force"),
        ("runs", "show", value),
        ("runs", "stop", value),
        ("runs", "follow", value),
        ("runs", "start", value),
        ("runs", "list", "--test", value),
        ("metrics", "show", value),
        ("metrics", "export", value),
        ("clusters", "show", value),
        ("clusters", "remove", value),
        ("clusters", "check", value),
        ("runs", "start", "api", "--cluster", value),
        (
            *create_test_argv("new", "http://h", "x.py", "--cluster", value),
        ),
        ("tests", "update", "api", "--cluster", value),
    ]
    for args in commands:
        line = refused(cli(*args), 4)
        assert "not found" in line, (args, line)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("value", INJECTIONS)
def test_injected_filters_list_nothing(cli: Cli, value: str) -> None:
    for option in ("--tag", "--name", "--cluster"):
        if value == "" and option in ("--name", "--cluster"):
            continue  # an empty filter filters nothing, as an empty substring matches all
        listed = ok(cli("tests", "list", option, value, "-o", "json"))
        assert listed.json() == [], (option, value)
    line = refused(cli("runs", "list", "--status", value), 2)
    assert "--status" in line


def test_operator_looking_values_are_stored_as_plain_strings(
    cli: Cli, mongo_db: Any, locustfile: Path, seeded: dict[str, str]
) -> None:
    created = ok(
        cli(
            *create_test_argv('{"$gt": ""}', "http://127.0.0.1:1", locustfile),
            "--tag",
            "$where",
            "--tag",
            "a.b",
            "--description",
            '{"$ne": null}',
            "--meta",
            'query={"$gt": ""}',
            "-o",
            "json",
        )
    ).json()
    assert isinstance(created, dict)
    stored = mongo_db.load_tests.find_one({"id": created["id"]})
    assert stored["name"] == '{"$gt": ""}' and stored["tags"] == ["$where", "a.b"]
    assert stored["description"] == '{"$ne": null}'
    assert stored["metadata"] == {"query": '{"$gt": ""}'}
    assert ok(cli("tests", "list", "--tag", "$where", "-q")).stdout.split() == [created["id"]]
    assert ok(cli("tests", "list", "--name", "$gt", "-q")).stdout.split() == [created["id"]]
    assert ok(cli("tests", "show", '{"$gt": ""}', "-q")).stdout.strip() == created["id"]
    assert mongo_db.load_tests.count_documents({}) == 2


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("pair", ["$where=1", "$set=x", "a.b=1", ".x=1", "=v", "novalue"])
def test_operator_looking_meta_keys_are_refused(cli: Cli, locustfile: Path, pair: str) -> None:
    for args in (
        (
            *create_test_argv("meta", "http://127.0.0.1:1", locustfile),
            "--meta",
            pair,
        ),
        ("tests", "update", "api", "--meta", pair),
        ("runs", "start", "api", "--meta", pair),
    ):
        assert "--meta" in refused(cli(*args), 2)


# --- Unicode and control characters --------------------------------------------------------


def assert_terminal_safe(text: str) -> None:
    for byte in TERMINAL_BYTES:
        assert byte not in text, f"{byte!r} reached the terminal in {text[:300]!r}"


def test_odd_characters_are_stored_intact_and_shown_safely(
    cli: Cli, mongo_db: Any, locustfile: Path
) -> None:
    description = f"line one\nline two {ODD}"
    tag = "\x1b]0;title\x07tag🚀"
    meta_value = f"{ODD}\x00nul"
    created = ok(
        cli(
            *create_test_argv(ODD, "http://127.0.0.1:1", locustfile),
            "--description",
            description,
            "--tag",
            tag,
            "--meta",
            f"owner={meta_value}",
            "--threshold",
            f"GET /{ODD}:p95<1s",
            "-o",
            "json",
        )
    )
    doc = created.json()
    assert isinstance(doc, dict)
    stored = mongo_db.load_tests.find_one({"id": doc["id"]})
    assert stored["name"].encode() == ODD.encode()
    assert stored["description"].encode() == description.encode()
    assert [t.encode() for t in stored["tags"]] == [tag.encode()]
    assert stored["metadata"]["owner"].encode() == meta_value.encode()
    assert stored["thresholds"] == [f"GET /{ODD}:p95<1s"]

    # JSON is the stored document: control characters escaped, the rest as it is.
    for output in (
        created,
        ok(cli("tests", "show", doc["id"], "-o", "json")),
        ok(cli("tests", "list", "-o", "jsonl")),
    ):
        assert "\x1b" not in output.stdout and "\x07" not in output.stdout
        assert "\r" not in output.stdout and "\\u001b" in output.stdout
    assert ok(cli("tests", "show", doc["id"], "-o", "json")).json()["name"] == ODD  # type: ignore[index]
    # Tables and messages: nothing from the data steers the terminal; letters survive.
    shown = ok(cli("tests", "show", doc["id"]))
    listed = ok(cli("tests", "list"))
    for output in (shown, listed):
        assert_terminal_safe(output.stdout + output.stderr)
        assert "负载" in output.stdout and "مرحبا" in output.stdout and "e\u0301" in output.stdout
        assert "\\x1b[31mred" in output.stdout
    missing = cli("tests", "show", ODD + "x")
    assert "not found" in refused(missing, 4)
    assert_terminal_safe(missing.stderr)
    quiet = ok(cli("tests", "list", "-q", "--name", "负载"))
    assert quiet.stdout.split() == [doc["id"]]
    # The ESC inside a name is matched as a plain character, too.
    assert ok(cli("tests", "list", "-q", "--name", "\x1b[31m")).stdout.split() == [doc["id"]]


def test_odd_run_and_cluster_data_are_shown_safely(
    cli: Cli, mongo_db: Any, seeded: dict[str, str]
) -> None:
    """Data written by anyone (another tool, the Go service) is shown safely too."""
    now = datetime.now(timezone.utc)
    mongo_db.load_test_runs.insert_one(
        {
            "id": "odd-run",
            "loadTestId": seeded["test"],
            "testName": ODD,
            "name": ODD,
            "targetUsers": 1,
            "spawnRate": 1.0,
            "durationSeconds": 5,
            "status": "Failed",
            "stopReason": "error",
            "error": f"boom {ODD}",
            "verdict": "failed",
            "locustClusterId": "k8s",
            "targetUrl": "http://127.0.0.1:1",
            "thresholdResults": [
                {
                    "expression": f"GET /{ODD}:p95<1s",
                    "metric": "p95",
                    "scope": ODD,
                    "op": "<",
                    "limit": 1000.0,
                    "actual": 2000.0,
                    "passed": False,
                }
            ],
            "createdAt": now,
            "createdBy": ODD,
            "updatedAt": now,
            "updatedBy": ODD,
            "metadata": {"k": ODD},
            "lastMetrics": {},
        }
    )
    ok(cli("clusters", "add", "odd", "--url", "http://127.0.0.1:2", "--description", ODD))
    outputs = [
        ok(cli("runs", "show", "odd-run")),
        ok(cli("runs", "list")),
        ok(cli("clusters", "show", "odd")),
        ok(cli("clusters", "list")),
    ]
    for output in outputs:
        assert_terminal_safe(output.stdout + output.stderr)
    assert "负载" in outputs[0].stdout and "FAIL" in outputs[0].stdout
    as_json = ok(cli("runs", "show", "odd-run", "-o", "json"))
    assert "\x1b" not in as_json.stdout
    assert as_json.json()["error"] == f"boom {ODD}"  # type: ignore[index]


# --- long values -------------------------------------------------------------------------


def _long_cases() -> list[Any]:
    url_head = "http://127.0.0.1:1/"
    return [
        pytest.param("--name", "n" * NAME_MAX, "n" * (NAME_MAX + 1), "name", id="name"),
        pytest.param("--name", "🚀" * NAME_MAX, "🚀" * (NAME_MAX + 1), "name", id="emoji-name"),
        pytest.param(
            "--description",
            "d" * DESCRIPTION_MAX,
            "d" * (DESCRIPTION_MAX + 1),
            "description",
            id="description",
        ),
        pytest.param("--tag", "t" * TAG_MAX, "t" * (TAG_MAX + 1), "tags", id="tag"),
        pytest.param(
            "--meta",
            "k=" + "v" * META_VALUE_MAX,
            "k=" + "v" * (META_VALUE_MAX + 1),
            "metadata",
            id="meta",
        ),
        pytest.param(
            "--target-url",
            url_head + "u" * (URL_MAX - len(url_head)),
            url_head + "u" * (URL_MAX - len(url_head) + 1),
            "targetUrl",
            id="url",
        ),
    ]


@pytest.mark.parametrize(("option", "longest", "too_long", "stored_as"), _long_cases())
def test_long_values_up_to_the_limit(
    cli: Cli,
    mongo_db: Any,
    locustfile: Path,
    option: str,
    longest: str,
    too_long: str,
    stored_as: str,
) -> None:
    def create(value: str, name: str) -> CliResult:
        args = {"--name": name, "--target-url": "http://127.0.0.1:1", option: value}
        flat = [part for key, item in args.items() for part in (key, item)]
        return cli("tests", "create", *flat, "--locustfile", str(locustfile), "-q")

    refused_line = refused(create(too_long, "beyond"), 2)
    limit = len(longest.partition("=")[2] if option == "--meta" else longest)
    if option == "--target-url":
        limit = URL_MAX
    assert option in refused_line and f"{limit} characters" in refused_line, refused_line
    assert len(refused_line) < 400  # the value itself is not echoed back whole
    assert mongo_db.load_tests.count_documents({}) == 0
    test_id = ok(create(longest, "at-limit")).stdout.strip()
    stored = mongo_db.load_tests.find_one({"id": test_id})[stored_as]
    expected = longest.partition("=")[2] if option == "--meta" else longest
    value = stored["k"] if option == "--meta" else stored[0] if option == "--tag" else stored
    assert value == expected
    if option not in ("--name", "--target-url"):
        before = mongo_db.load_tests.find_one({"id": test_id}, {"_id": False})
        assert option in refused(cli("tests", "update", test_id, option, too_long), 2)
        assert mongo_db.load_tests.find_one({"id": test_id}, {"_id": False}) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("c" * (NAME_MAX + 1), "--url", "http://127.0.0.1:1"), "ID"),
        (
            ("c", "--url", "http://127.0.0.1:1", "--description", "d" * (DESCRIPTION_MAX + 1)),
            "--description",
        ),
    ],
)
def test_long_cluster_values_are_refused(
    cli: Cli, mongo_db: Any, args: tuple[str, ...], needle: str
) -> None:
    assert needle in refused(cli("clusters", "add", *args), 2)
    assert mongo_db.locust_clusters.count_documents({}) == 0
    ok(
        cli(
            "clusters",
            "add",
            "c" * NAME_MAX,
            "--url",
            "http://127.0.0.1:1",
            "--description",
            "d" * DESCRIPTION_MAX,
        )
    )


@pytest.mark.usefixtures("unchanged")
def test_huge_refs_are_simply_not_found(cli: Cli) -> None:
    huge = "x" * 100_000
    for args in (("tests", "show", huge), ("runs", "show", huge), ("clusters", "show", huge)):
        line = refused(cli(*args), 4)
        assert len(line) <= len("error: ") + 1_001
    assert ok(cli("tests", "list", "--name", huge, "-o", "json")).json() == []


# --- malformed config files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[profiles.default]\ntenant = "ok"\nenv = \n', 3),
        ('[profiles.default]\ntenant = "unterminated\n', 2),
        ('[profiles.default]\ntenant = "a"\ntenant = "b"\n', 3),
        ('default_profile = "x"\n\n[profiles.x\nenv = "e"\n', 3),
        ('[profiles.default]\nenv = "\x1b[31m"\n', 2),
    ],
)
def test_malformed_config_names_the_file_and_the_line(
    cli: Cli,
    mongo_db: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    line: int,
) -> None:
    path = tmp_path / "odd config.toml"
    path.write_text(text)
    for args in (["--config", str(path)], []):
        if not args:
            monkeypatch.setenv("LOADMGR_CONFIG", str(path))
        result = cli(
            *args,
            *create_test_argv("n", "http://h", "x.py", "--cluster", "k"),
        )
        message = refused(result, 2)
        assert str(path) in message and f"line {line}" in message
        assert "\x1b" not in result.stderr
    assert mongo_db.load_tests.count_documents({}) == 0


def test_config_that_is_not_text_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert str(path) in refused(cli("--config", str(path), "tests", "list"), 2)
    directory = tmp_path / "a-directory.toml"
    directory.mkdir()
    assert str(directory) in refused(cli("--config", str(directory), "tests", "list"), 2)
