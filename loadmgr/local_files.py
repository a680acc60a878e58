"""Reading a file the user named (a locustfile, a password file), whatever it turns out to be.

A path may name a directory, a FIFO (reading it would block until someone writes),
`/dev/null` or another device, a file we may not read, or a file other users may read.
Each is reported for what it is, and nothing here ever blocks.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from loadmgr.errors import ValidationFailed

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_file(mode: int) -> str | None:
    """What a path is when it is not a regular file (`a directory`…); None for a file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def read_regular_file(path: Path, what: str, *, max_bytes: int, private: bool = False) -> bytes:
    """The bytes of the regular file at `path`; ValidationFailed saying what is wrong.

    `what` names it in messages (`locustfile`). With `private`, a file that users other
    than its owner may read or change is refused, as ssh refuses such a key.
    """
    shown = repr(str(path))
    try:
        # What it is, before opening it: opening a socket fails, a FIFO would block.
        _check_kind(os.stat(path).st_mode, what, shown)
        # O_NONBLOCK: if the path was just swapped for a FIFO, open returns at once instead
        # of waiting for a writer, and fstat below tells what was really opened.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ValidationFailed(f"{what} {shown} not found") from None
    except PermissionError:
        raise ValidationFailed(f"cannot read {what} {shown}: permission denied") from None
    except OSError as exc:
        raise ValidationFailed(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    try:
        status = os.fstat(fd)
        _check_kind(status.st_mode, what, shown)
        if private and status.st_mode & 0o077:
            raise ValidationFailed(
                f"{what} {shown} may be read or changed by other users "
                f"(mode {stat.S_IMODE(status.st_mode):04o})",
                hint=f"chmod 600 {path}",
            )
        if status.st_size > max_bytes:
            raise ValidationFailed(f"{what} {shown} is larger than {_size(max_bytes)}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ValidationFailed(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while we read it
        raise ValidationFailed(f"{what} {shown} is larger than {_size(max_bytes)}")
    return data


def _check_kind(mode: int, what: str, shown: str) -> None:
    kind = not_a_file(mode)
    if kind is not None:
        raise ValidationFailed(f"{what} {shown} is {kind}, not a file")


def _size(limit: int) -> str:
    if limit >= 1_000_000:
        return f"{limit / 1_000_000:g} MB"
    return f"{limit / 1_000:g} kB" if limit >= 1_000 else f"{limit} bytes"
