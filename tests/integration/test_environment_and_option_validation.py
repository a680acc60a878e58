"""Odd environments, options and files: each case injected, its exit code, its one line, and
nothing written (or, where something must change, exactly that)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ok
from tests.integration.conftest import Cli, create, refused

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mongo_uri")]

# -- 6. no exit 70 on bad input ------------------------------------------------------------

# What Python makes of the bytes b"bad\xffutf" in argv: a lone surrogate for the bad byte.
BAD_UTF8 = b"bad\xffutf".decode("utf-8", "surrogateescape")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (("--name", BAD_UTF8), "--name"),
        ((f"--name={BAD_UTF8}",), "--name"),
        (("--description", BAD_UTF8), "--description"),
        (("--tag", BAD_UTF8), "--tag"),
        (("--meta", f"k={BAD_UTF8}"), "--meta"),
        (("--meta", f"{BAD_UTF8}=v"), "--meta"),
        (("--scenario", "\ud800x"), "--scenario"),
    ],
)
def test_invalid_utf8_in_any_option_is_a_usage_error(
    cli: Cli, locustfile: Path, extra: tuple[str, ...], option: str
) -> None:
    base = ["tests", "create", "--target-url", "http://127.0.0.1:1"]
    base += ["--locustfile", str(locustfile)]
    if "--name" not in option:
        base += ["--name", "fine"]
    line = refused(cli(*base, *extra))
    assert line.startswith(f"error: invalid {option}: not valid UTF-8 text (")
    assert "\\x" in line or "\\u" in line  # the bad byte, shown readably


@pytest.mark.usefixtures("unchanged")
def test_invalid_utf8_in_an_argument_or_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "not valid UTF-8" in refused(cli("tests", "show", BAD_UTF8))
    monkeypatch.setenv("LOADMGR_TENANT", BAD_UTF8)
    line = refused(cli("tests", "list"))
    assert line == "error: invalid LOADMGR_TENANT: not valid UTF-8 text (bad\\xffutf)"


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("since", ["10000000d", "99999999999999999999d", "9" * 400 + "d"])
def test_since_too_far_back_is_a_usage_error(cli: Cli, since: str) -> None:
    assert "invalid --since" in refused(cli("runs", "list", "--since", since))


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("group", ["tests", "runs"])
def test_huge_limit_is_a_usage_error(cli: Cli, group: str) -> None:
    line = refused(cli(group, "list", "--limit", "99999999999999999999"))
    assert "invalid --limit" in line


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "value", ["1e20", "100000000000000000", "9223372036854775807", "0", "-5", "true"]
)
def test_absurd_server_selection_timeout_in_a_profile(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.delenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS")  # or it beats the profile
    config = tmp_path / "config.toml"
    config.write_text(f"[profiles.default]\nserver_selection_timeout_ms = {value}\n")
    line = refused(cli("--config", str(config), "tests", "list"))
    assert "server_selection_timeout_ms" in line or "server selection timeout" in line
    assert "URI" not in line


@pytest.mark.usefixtures("unchanged")
def test_absurd_server_selection_timeout_option(cli: Cli) -> None:
    line = refused(cli("--server-selection-timeout", "99999999999999999999", "tests", "list"))
    assert "server selection timeout" in line
    assert "URI" not in line


# -- 8. CSV escapes control characters ----------------------------------------------------

HOSTILE_NAME = "t\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\x\x9b2J\x7f\u202eeman"


def test_csv_output_escapes_control_characters(cli: Cli, locustfile: Path) -> None:
    ok(create(cli, locustfile, "--tag", "\x1b[31mred", "--meta", "k=\x07bell", name=HOSTILE_NAME))
    for args in (("tests", "list", "-o", "csv"), ("tests", "show", HOSTILE_NAME, "-o", "csv")):
        out = ok(cli(*args)).stdout
        assert not any(ch in out for ch in "\x1b\x07\x9b\x7f\u202e"), out
        assert "t\\x1b]0;pwned\\x07" in out
        assert "\\x1b[31mred" in out
    # The data is stored intact: only what is shown is escaped.
    stored = ok(cli("tests", "show", HOSTILE_NAME, "-o", "json")).json()
    assert isinstance(stored, dict) and stored["name"] == HOSTILE_NAME


# -- 7. an empty scope given explicitly ----------------------------------------------------


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "args",
    [
        ("--tenant", "", "tests", "list"),
        ("--env", "", "tests", "list"),
        ("tests", "list", "--tenant", ""),
        ("--tenant=", "tests", "delete", "api", "--yes", "--force"),
        ("--env", "  ", "tests", "create", "--name", "x", "--target-url", "http://127.0.0.1:1"),
        # Not the default database, nor the embedded store, in place of the one meant.
        ("--database", "", "tests", "delete", "api", "--yes"),
        ("--mongo-uri", "", "tests", "list"),
    ],
)
def test_empty_scope_option_is_a_usage_error(cli: Cli, args: tuple[str, ...]) -> None:
    line = refused(cli(*args))
    assert "is given but empty" in line


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "variable", ["LOADMGR_TENANT", "LOADMGR_ENV", "LOADMGR_DATABASE", "LOADMGR_MONGO_URI"]
)
def test_empty_scope_variable_is_a_usage_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "")  # `LOADMGR_TENANT=$TEAM` with $TEAM unset
    result = cli("tests", "list", "-o", "json")
    line = refused(result)
    assert line.startswith("error: --") and "is given but empty" in line
    assert "hint: leave --" in result.stderr


def test_empty_scope_never_falls_back_to_the_profile(
    cli: Cli, tmp_path: Path, existing: dict[str, Any]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.default]\ntenant = "payments"\n')
    refused(cli("--config", str(config), "--tenant", "", "tests", "list"))
    # Leaving it out uses the profile's tenant: `api` (no tenant) is not listed.
    assert ok(cli("--config", str(config), "tests", "list", "-o", "json")).json() == []
    assert existing["tenantId"] is None


# -- 2. a MongoDB URI of any shape never shows its password; a malformed one is exit 2 ------

PASSWORD = "s3cret-7d1f"


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "uri",
    [
        f"MONGODB://bob:{PASSWORD}@127.0.0.1:1/",
        f"Mongodb://bob:{PASSWORD}@127.0.0.1:1/",
        f"mongo://bob:{PASSWORD}@127.0.0.1:1/",
        f"bob:{PASSWORD}@127.0.0.1:1",
        f"https://bob:{PASSWORD}@127.0.0.1:1/",
        f"\tMONGODB://bob:{PASSWORD}@127.0.0.1:1/",
        f"mongodb+srv://bob:{PASSWORD}@cluster.example.com:27017/",  # no port with +srv
        f"mongodb://bob:{PASSWORD}@127.0.0.1:notaport/",
        f"mongodb://bob:{PASSWORD}@127.0.0.1:1/?tlsCAfile=x&password={PASSWORD}",
        f"mongodb://127.0.0.1:1/?authMechanism=BAD&tlsCertificateKeyFilePassword={PASSWORD}",
        f"mongodb://bob:{PASSWORD}@127.0.0.1:1/?authMechanism=MONGODB-X509",
        "notauri",
        f"notauri?password={PASSWORD}",
    ],
)
@pytest.mark.usefixtures("unchanged")
def test_malformed_uri_is_a_usage_error_and_never_shows_its_password(
    cli: Cli, uri: str, debug: bool
) -> None:
    args = ["--mongo-uri", uri, "--server-selection-timeout", "60000"]
    # A usage error at once: no server selection (60 s here) is waited for.
    result = cli(*(["--debug"] if debug else []), *args, "tests", "list")
    assert result.exit_code == 2, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "invalid MongoDB URI" in result.stderr or "MongoDB TLS file" in result.stderr
    if not debug:
        refused(result)
    if "invalid MongoDB URI" in result.stderr and ("@" in uri or "password=" in uri):
        assert "***" in result.stderr


@pytest.mark.usefixtures("unchanged")
def test_malformed_uri_in_a_profile(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOADMGR_MONGO_URI")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.default]\nmongo_uri = " MONGODB://bob:{PASSWORD}@h/"\n')
    line = refused(cli("--config", str(config), "tests", "list"))
    assert PASSWORD not in line and "bob:***@h" in line
    debugged = cli("--config", str(config), "--debug", "tests", "list")
    assert debugged.exit_code == 2 and "Traceback" in debugged.stderr
    assert PASSWORD not in debugged.stdout + debugged.stderr


def test_blanks_around_a_good_uri_are_ignored(
    cli: Cli, mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOADMGR_MONGO_URI")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.default]\nmongo_uri = "  {mongo_uri}\\n"\n')
    ok(cli("--config", str(config), "tests", "list"))


# -- 11. a password apart from the URI: refused when it cannot be used safely --------------


def user_uri(mongo_uri: str, user: str = "bob") -> str:
    return mongo_uri.replace("mongodb://", f"mongodb://{user}@", 1)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "mongo-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_password_file_others_may_read_is_refused(
    cli: Cli, mongo_uri: str, password_file: Path, mode: int
) -> None:
    password_file.chmod(mode)
    result = cli(
        "--mongo-uri", user_uri(mongo_uri), "--mongo-password-file", str(password_file),
        "tests", "create", "--name", "x", "--target-url", "http://127.0.0.1:1",
    )
    line = refused(result)
    assert "may be read or changed by other users" in line and f"mode {mode:04o}" in line
    assert f"hint: chmod 600 {password_file}" in result.stderr
    assert PASSWORD not in result.stderr


@pytest.mark.usefixtures("unchanged")
def test_password_that_cannot_be_merged_is_refused(
    cli: Cli, mongo_uri: str, password_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_args = ("--mongo-password-file", str(password_file))
    cases = {
        "names no user": ("--mongo-uri", mongo_uri, *file_args),
        "already holds one": ("--mongo-uri", user_uri(mongo_uri, "bob:other"), *file_args),
        "is a directory": ("--mongo-uri", user_uri(mongo_uri), "--mongo-password-file", "."),
        "not found": ("--mongo-uri", user_uri(mongo_uri), "--mongo-password-file", "nope"),
    }
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    cases["is empty"] = ("--mongo-uri", user_uri(mongo_uri), "--mongo-password-file", str(empty))
    for needle, args in cases.items():
        result = cli(*args, "tests", "list")
        assert needle in refused(result), result.stderr
        assert PASSWORD not in result.stderr
    monkeypatch.setenv("LOADMGR_MONGO_PASSWORD", "")  # `=$PW` with $PW unset
    assert "set but empty" in refused(cli("--mongo-uri", user_uri(mongo_uri), "tests", "list"))
    monkeypatch.setenv("LOADMGR_MONGO_PASSWORD", PASSWORD)
    monkeypatch.delenv("LOADMGR_MONGO_URI")
    assert "no MongoDB URI" in refused(cli("tests", "list"))


def test_password_file_that_is_a_fifo_never_blocks(
    cli: Cli, mongo_uri: str, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    line = refused(
        cli("--mongo-uri", user_uri(mongo_uri), "--mongo-password-file", str(fifo), "tests", "list")
    )
    assert "is a named pipe (FIFO), not a file" in line


# -- 3. credentials in URLs are refused, never stored ---------------------------------------

URLS_WITH_CREDENTIALS = [
    f"http://u:{PASSWORD}@127.0.0.1:1/",
    f"https://admin:{PASSWORD}@example.com",
    f"http://{PASSWORD}@example.com/path",
    f"HTTP://u:{PASSWORD}@example.com:8089/base",
    f"http://u:p@ss{PASSWORD}@example.com/",
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("url", URLS_WITH_CREDENTIALS)
def test_target_url_with_credentials_is_refused(cli: Cli, locustfile: Path, url: str) -> None:
    for args in (
        ("tests", "create", "--name", "new", "--target-url", url, "--locustfile", str(locustfile)),
        ("tests", "update", "api", "--target-url", url),
    ):
        result = cli(*args)
        line = refused(result)
        assert line.startswith("error: invalid --target-url: a URL with a user name or password")
        assert "hint: let the locustfile authenticate" in result.stderr
        assert PASSWORD not in result.stderr


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("url", URLS_WITH_CREDENTIALS)
def test_cluster_url_with_credentials_is_refused(cli: Cli, url: str) -> None:
    result = cli("clusters", "add", "k8s", "--url", url)
    assert refused(result).startswith("error: invalid --url: a URL with a user name or password")
    assert "--header-env" in result.stderr and "--login-user-env" in result.stderr
    assert PASSWORD not in result.stderr


def test_an_at_sign_in_the_path_or_query_is_no_credential(cli: Cli, locustfile: Path) -> None:
    ok(create(cli, locustfile, "--target-url", "http://example.com/users/@me?x=a@b"))
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:1/@base"))


# -- 9. odd locustfiles: each says what is wrong; a syntax error is caught at definition -----


def odd_locustfiles(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name → (path, what the error line must say)."""
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    broken = tmp_path / "broken.py"
    broken.write_text("from locust import HttpUser\n\n\nclass Web(HttpUser:\n    pass\n")
    nul = tmp_path / "nul.py"
    nul.write_bytes(b"x = 1\x00\n")
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# caf\xe9\n")
    return {
        "fifo": (str(fifo), "is a named pipe (FIFO), not a file"),
        "dev-null": (os.devnull, "is a character device, not a file"),
        "syntax": (str(broken), "has a syntax error at line 4: "),
        "nul": (str(nul), "cannot contain null bytes"),
        "latin-1": (str(latin), "is not UTF-8 text"),
    }


@pytest.mark.timeout(60)  # a FIFO that blocked would hang here, not pass
@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("cluster", ["local", "remote"])
def test_odd_locustfiles_are_refused_for_what_they_are(
    cli: Cli, tmp_path: Path, mongo_db: Any, cluster: str
) -> None:
    if cluster == "remote":
        # A registered cluster: a path that does not exist here names a file deployed there,
        # but one that exists here is read, and must be right.
        mongo_db.locust_clusters.insert_one(
            {"id": "remote", "baseUrl": "http://127.0.0.1:1", "auth": {"type": "none"}}
        )
    for name, (path, needle) in odd_locustfiles(tmp_path).items():
        for args in (
            ("tests", "create", "--name", "new", "--target-url", "http://127.0.0.1:1",
             "--cluster", cluster, "--locustfile", path),
            ("tests", "update", "api", "--cluster", cluster, "--locustfile", path),
        ):
            result = cli(*args)
            line = refused(result)
            assert line.startswith(f"error: locustfile {path!r} "), (name, line)
            assert needle in line, (name, line)
            assert "not found" not in line
    mongo_db.locust_clusters.delete_many({})


@pytest.mark.usefixtures("unchanged")
def test_syntax_error_names_the_line_and_runs_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    # Valid until line 6; were the file run (or imported) the first line would leave a mark.
    source = f"open({str(marker)!r}, 'w').close()\n" + "x = 1\n" * 4 + "def broken(:\n"
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    result = cli("tests", "update", "api", "--locustfile", str(bad))
    assert "has a syntax error at line 6" in refused(result)
    assert "hint: check it with: python -m py_compile" in result.stderr
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
@pytest.mark.usefixtures("unchanged")
def test_unreadable_locustfile_says_so(cli: Cli, tmp_path: Path) -> None:
    secret = tmp_path / "private.py"
    secret.write_text("x = 1\n")
    secret.chmod(0)
    line = refused(cli("tests", "update", "api", "--locustfile", str(secret)))
    assert line == f"error: cannot read locustfile {str(secret)!r}: permission denied"


# -- 10. load sanity: users and spawn rate within documented bounds ------------------------


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--users", "10000000"), "invalid --users: 10000000 (1 to 100,000)"),
        (("--users", "100001"), "invalid --users: 100001 (1 to 100,000)"),
        (("--users", "99999999999999999999"), "--users"),
        (("--spawn-rate", "1e-300"), "invalid --spawn-rate: 1e-300 users/s (0.01 to 10000)"),
        (("--spawn-rate", "0.009"), "invalid --spawn-rate"),
        (("--spawn-rate", "10000.5"), "invalid --spawn-rate"),
        (("--spawn-rate", "inf"), "--spawn-rate"),
        (("--spawn-rate", "nan"), "--spawn-rate"),
        (("--max-users", "0"), "--max-users"),
        (("--max-users", "10000001"), "--max-users"),
        (("--max-users", "5"), "invalid --max-users: 5 is below the test's default of 10"),
        (("--max-users", "50", "--users", "51"), "invalid --max-users: 50 is below"),
    ],
)
def test_load_beyond_the_bounds_is_refused(
    cli: Cli, locustfile: Path, extra: tuple[str, ...], needle: str
) -> None:
    assert needle in refused(create(cli, locustfile, *extra))
    assert needle in refused(cli("tests", "update", "api", *extra))


def test_max_users_allows_more_and_is_stored(
    cli: Cli, locustfile: Path, mongo_db: Any
) -> None:
    big = ok(create(cli, locustfile, "--max-users", "500000", "--users", "200000", "-o", "json"))
    doc = big.json()
    assert isinstance(doc, dict) and (doc["maxUsers"], doc["defaultUsers"]) == (500000, 200000)
    ok(cli("tests", "update", "new", "--users", "500000", "--spawn-rate", "0.01"))
    line = refused(cli("tests", "update", "new", "--users", "500001"))
    assert "invalid --users: 500001 (1 to 500,000)" in line
    assert "max users" in ok(cli("tests", "show", "new")).stdout
    stored = mongo_db.load_tests.find_one({"name": "new"})
    assert (stored["maxUsers"], stored["defaultUsers"], stored["defaultSpawnRate"]) == (
        500000, 500000, 0.01,
    )


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--users", "100001"), "invalid --users: 100001 (1 to 100,000)"),
        (("--users", "0"), "--users"),
        (("--spawn-rate", "1e-300"), "invalid --spawn-rate"),
        (("--spawn-rate", "20000"), "invalid --spawn-rate"),
    ],
)
def test_run_overrides_beyond_the_bounds_start_nothing(
    cli: Cli, extra: tuple[str, ...], needle: str
) -> None:
    # Refused before the lease is taken or a run recorded (`unchanged` checks both).
    assert needle in refused(cli("runs", "start", "api", *extra))


@pytest.mark.timeout(60)  # a blocking or endless read would hang here
@pytest.mark.usefixtures("unchanged")
def test_odd_config_and_tls_files_never_hang(cli: Cli, mongo_uri: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "a character device"), (str(fifo), "a named pipe (FIFO)")):
        line = refused(cli("--config", path, "tests", "list"))
        assert line == f"error: config file {path!r} is {kind}, not a file"
        line = refused(cli("--mongo-tls-ca-file", path, "tests", "list"))
        assert line == f"error: invalid --mongo-tls-ca-file: {path!r} is {kind}, not a file"
    ok(cli("--config", os.devnull, "tests", "list"))  # the usual "no config file"
