# ruff: noqa: F811
"""Files the user names: each odd kind reported for what it is, never a blocking read."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from loadmgr import local_files
from loadmgr.errors import ExitCode, ValidationFailed
from loadmgr.local_files import read_regular_file
from loadmgr.service.definitions.tests import read_locustfile
from tests.conftest import create_test_argv

# The CLI tests' mongomock store and locustfile fixtures, shared (hence the redefinitions).
from tests.unit.test_cli_unit import locustfile, mock_store  # noqa: F401


def refusal(path: Path | str, **options: object) -> str:
    with pytest.raises(ValidationFailed) as caught:
        read_regular_file(Path(path), "thing", max_bytes=100, **options)  # type: ignore[arg-type]
    assert caught.value.exit_code == ExitCode.USAGE
    return caught.value.message


@pytest.mark.timeout(30)
def test_each_kind_of_path_is_named(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        assert "is a socket, not a file" in refusal(sock_path)
    assert "is a directory, not a file" in refusal(tmp_path)
    assert "is a named pipe (FIFO), not a file" in refusal(fifo)
    assert "is a character device, not a file" in refusal(os.devnull)
    assert refusal(tmp_path / "nope") == f"thing {str(tmp_path / 'nope')!r} not found"
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    assert "is larger than 100 bytes" in refusal(big)


def test_a_file_we_may_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, who reads anything: the refusal of open() is injected.
    path = tmp_path / "private.py"
    path.write_text("x = 1\n")

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(local_files.os, "open", denied)
    assert refusal(path) == f"cannot read thing {str(path)!r}: permission denied"


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_private_file_of_its_owner_only_is_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "pw"
    path.write_text("secret\n")
    path.chmod(mode)
    assert read_regular_file(path, "thing", max_bytes=100, private=True) == b"secret\n"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o610, 0o602, 0o666])
def test_private_file_others_may_reach_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "pw"
    path.write_text("secret\n")
    path.chmod(mode)
    with pytest.raises(ValidationFailed) as caught:
        read_regular_file(path, "password file", max_bytes=100, private=True)
    assert f"(mode {mode:04o})" in caught.value.message
    assert caught.value.hint == f"chmod 600 {path}"
    assert "secret" not in caught.value.message


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("def f(:\n", "syntax error at line 1"),
        ("x = 1\nif x\n    pass\n", "syntax error at line 2"),
        ("x = (1,\n" * 3, "syntax error at line"),
        ("\tx = 1\n  y = 2\n", "syntax error at line 1"),
        ("-" * 200_000 + "1\n", "cannot be compiled"),
    ],
)
def test_locustfile_that_does_not_compile(tmp_path: Path, source: str, needle: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(ValidationFailed) as caught:
        read_locustfile(str(path), "local")
    assert needle in caught.value.message or "syntax error" in caught.value.message


def test_locustfile_with_a_bom_and_escapes_compiles(tmp_path: Path) -> None:
    path = tmp_path / "ok.py"
    path.write_bytes(b"\xef\xbb\xbfpattern = '\\d'\n")  # BOM, and an invalid escape (a warning)
    assert read_locustfile(str(path), "local").content == "\ufeffpattern = '\\d'\n"


def test_remote_locustfile_that_is_not_here_is_a_name(tmp_path: Path) -> None:
    assert read_locustfile("deployed.py", "k8s").content is None
    with pytest.raises(ValidationFailed, match="not found"):
        read_locustfile("deployed.py", "local")


@pytest.mark.timeout(30)
def test_cluster_secret_file_that_is_a_fifo_is_a_cluster_error(isolated_env: Path) -> None:
    from loadmgr.errors import ClusterError
    from loadmgr.locust.auth import read_secret
    from loadmgr.models import ClusterAuth

    (isolated_env / "secrets").mkdir(parents=True)
    fifo = isolated_env / "secrets" / "secret"  # where this machine allows secret files
    os.mkfifo(fifo)
    auth = ClusterAuth(type="header", headerName="X-Key", secretFile=str(fifo))
    with pytest.raises(ClusterError, match=r"cluster auth: secret file .* is a named pipe"):
        read_secret(auth)


# -- directories under LOADMGR_HOME (issue 20, item 8) -----------------------------------------

_BLOCKERS = {
    "a file": lambda p: p.write_text("x"),
    "a dangling symlink": lambda p: p.symlink_to(p.parent / "gone"),
}


@pytest.mark.parametrize("blocker", sorted(_BLOCKERS))
@pytest.mark.parametrize("depth", [0, 1, 2])
def test_a_directory_blocked_at_any_depth_is_named(
    tmp_path: Path, blocker: str, depth: int
) -> None:
    """Whatever stands where a directory (or one of its parents) must be, the error names
    it: one line, exit 2, nothing created."""
    wanted = tmp_path / "home" / "logs" / "runs"
    parts = [tmp_path / "home", tmp_path / "home" / "logs", wanted]
    for part in parts[:depth]:
        part.mkdir()
    _BLOCKERS[blocker](parts[depth])
    with pytest.raises(ValidationFailed) as caught:
        local_files.ensure_directory(wanted)
    assert caught.value.exit_code == ExitCode.USAGE
    assert f"{str(parts[depth])!r} is {blocker}" in caught.value.message
    assert "LOADMGR_HOME" in (caught.value.hint or "")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_directory_not_writable_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o500)
    try:
        with pytest.raises(ValidationFailed, match="permission denied"):
            local_files.ensure_directory(home / "logs")
        with pytest.raises(ValidationFailed, match="permission denied"):
            local_files.ensure_directory(home)
    finally:
        home.chmod(0o700)


def test_an_existing_directory_is_kept(tmp_path: Path) -> None:
    wanted = tmp_path / "a" / "b"
    assert local_files.ensure_directory(wanted) == wanted and wanted.is_dir()
    assert local_files.ensure_directory(wanted) == wanted


def test_detached_start_with_logs_a_file_fails_the_run_and_frees_the_lease(
    cli: Any, mock_store: Any, locustfile: Path, isolated_env: Path
) -> None:
    """Issue 20, item 8: exit 70 "unexpected FileExistsError", the run left Pending and
    the `local` lease held, so the next start was refused as busy."""
    created = cli(*create_test_argv("api", "http://127.0.0.1:1", locustfile))
    assert created.exit_code == 0, created.stderr
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "logs").write_text("not a folder")
    result = cli("runs", "start", "api", "--detach")
    assert result.exit_code == 2, result.stderr
    assert "is a file" in result.stderr and "logs" in result.stderr
    db = mock_store.client[mock_store.settings.database]
    runs = list(db.load_test_runs.find())
    assert [r["status"] for r in runs] == ["Failed"] and "logs" in runs[0]["error"]
    assert all(lease.get("runId") is None for lease in db.cluster_leases.find())


def test_no_permission_is_named_whoever_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root the mode bits do not stop us: the kernel's refusal is simulated."""

    def refused(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(ValidationFailed, match="permission denied") as caught:
        local_files.ensure_directory(tmp_path / "logs")
    assert caught.value.exit_code == ExitCode.USAGE
    monkeypatch.undo()
    monkeypatch.setattr(local_files.os, "access", lambda *_: False)
    with pytest.raises(ValidationFailed, match="cannot write in .*permission denied"):
        local_files.ensure_directory(tmp_path)


def test_the_embedded_store_under_a_dangling_symlink_is_named(
    cli: Any, isolated_env: Path
) -> None:
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "db").symlink_to(isolated_env / "nowhere")
    result = cli("tests", "list")
    assert result.exit_code == 3, result.stderr  # the store cannot be had: a database error
    assert "is a dangling symlink, not a directory" in result.stderr
    assert not (isolated_env / "nowhere").exists()


# --- writing a file the user named --------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_written_file_never_replaces_what_is_not_a_file(tmp_path: Path) -> None:
    # `metrics report --html /dev/null` run as root once renamed a report over the machine's
    # /dev/null: every later `> /dev/null` of every process wrote into a plain file.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        for path, kind in (
            (fifo, "a named pipe (FIFO)"),
            (sock_path, "a socket"),
            (tmp_path, "a directory"),
            (Path(os.devnull), "a character device"),
        ):
            before = os.stat(path)
            with pytest.raises(ValidationFailed) as caught:
                local_files.write_file_atomically(path, b"report")
            assert f"it is {kind}, not a file" in caught.value.message
            after = os.stat(path)
            assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "sock"]  # no temporary left


def test_a_written_file_is_whole_and_keeps_the_mode_it_had(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    local_files.write_file_atomically(report, b"one")
    assert report.read_bytes() == b"one"
    report.chmod(0o640)
    local_files.write_file_atomically(report, b"two")
    assert report.read_bytes() == b"two" and (report.stat().st_mode & 0o777) == 0o640
    with pytest.raises(ValidationFailed, match="cannot write"):
        local_files.write_file_atomically(tmp_path / "missing" / "x.html", b"x")


def test_only_the_one_writer_renames_over_a_named_path() -> None:
    # The class, not the example: every file loadmgr writes at a path a user named goes
    # through write_file_atomically, the only code that renames over a path.
    import ast

    root = Path(local_files.__file__).parent
    offenders = []
    for module in sorted(root.rglob("*.py")):
        if module.name == "local_files.py":
            continue
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("replace", "rename")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "os"
            ) or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("rename",)
            ):
                offenders.append(f"{module.relative_to(root)}:{node.lineno}")
    assert offenders == []
