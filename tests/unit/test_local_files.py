"""Files the user names: each odd kind reported for what it is, never a blocking read."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from loadmgr import local_files
from loadmgr.errors import ExitCode, ValidationFailed
from loadmgr.local_files import read_regular_file
from loadmgr.service.definitions.tests import read_locustfile


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
def test_cluster_secret_file_that_is_a_fifo_is_a_cluster_error(tmp_path: Path) -> None:
    from loadmgr.errors import ClusterError
    from loadmgr.locust.auth import read_secret
    from loadmgr.models import ClusterAuth

    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    auth = ClusterAuth(type="header", headerName="X-Key", secretFile=str(fifo))
    with pytest.raises(ClusterError, match=r"cluster auth: secret file .* is a named pipe"):
        read_secret(auth)
