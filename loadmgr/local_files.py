"""Reading a file the user named (a locustfile, a password file), whatever it turns out to be,
and making the directories loadmgr keeps under LOADMGR_HOME.

A path may name a directory, a FIFO (reading it would block until someone writes),
`/dev/null` or another device, a file we may not read, or a file other users may read.
Each is reported for what it is, and nothing here ever blocks. Where a directory must be
(`$LOADMGR_HOME/logs`), a file, a dangling symlink or a directory we may not write is
named the same way, as one usage error, instead of a stray FileExistsError.
"""

from __future__ import annotations

import os
import stat
import tempfile
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


def default_file_mode() -> int:
    """What open() would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_file_atomically(path: Path, content: bytes, *, mode: int | None = None) -> None:
    """`content` written to `path` whole or not at all: aside, then renamed over it, so
    nobody (a CI job) ever reads half a file. ValidationFailed saying what is wrong.

    Only a regular file (or nothing) is replaced: renaming over `/dev/null` or a FIFO would
    replace the device itself, for the whole machine when run as root. Such a path is
    refused for what it is. `mode` defaults to the existing file's, else the umask's.
    """
    shown = str(path)
    existing = _regular_or_nothing(path)
    if mode is None:
        mode = stat.S_IMODE(existing.st_mode) if existing is not None else default_file_mode()
    temporary: str | None = None
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise ValidationFailed(f"cannot write {shown}: {_reason(exc)}") from None
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def _regular_or_nothing(path: Path) -> os.stat_result | None:
    """The status of the regular file at `path`, None when nothing is there;
    ValidationFailed naming anything else (a directory, `/dev/null`, a FIFO)."""
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValidationFailed(f"cannot write {path}: {_reason(exc)}") from None
    kind = not_a_file(existing.st_mode)
    if kind is not None:
        raise ValidationFailed(f"cannot write {path}: it is {kind}, not a file")
    return existing


def check_writable_file(path: Path) -> Path:
    """`path` if a file may be written there later (nothing, or a regular file, in an
    existing directory); ValidationFailed saying what it is otherwise."""
    _regular_or_nothing(path)
    if not path.parent.is_dir():
        raise ValidationFailed(f"cannot write {path}: no directory {str(path.parent)!r}")
    return path


def append_to_file(path: Path, content: bytes) -> None:
    """`content` appended to the file at `path` (made if missing) in one O_APPEND write, so
    that it lands whole after whatever others append to the same file (a CI job summary).
    Only a regular file: `/dev/null`, a FIFO or a device is refused for what it is, as
    `write_file_atomically` refuses them; ValidationFailed saying what is wrong."""
    check_writable_file(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise ValidationFailed(f"cannot append to {path}: {_reason(exc)}") from None
    try:
        kind = not_a_file(os.fstat(fd).st_mode)  # what was really opened, if it was swapped
        if kind is not None:
            raise ValidationFailed(f"cannot append to {path}: it is {kind}, not a file")
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise ValidationFailed(f"cannot append to {path}: {_reason(exc)}") from None
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


HOME_HINT = "LOADMGR_HOME must be a directory loadmgr can write (and each folder in it)"


def ensure_directory(path: Path) -> Path:
    """`path` as a directory loadmgr may write, made with its parents if missing;
    ValidationFailed naming what stands in the way (a file, a dangling symlink) or the
    directory not writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = _blocker(path)
        where = "" if blocker == path else f"cannot make {str(path)!r}: "
        raise ValidationFailed(
            f"{where}{str(blocker)!r} is {_what(blocker)}, not a directory", hint=HOME_HINT
        ) from None
    except PermissionError as exc:
        denied = exc.filename or path
        raise ValidationFailed(
            f"cannot make {str(path)!r}: permission denied on {str(denied)!r}", hint=HOME_HINT
        ) from None
    except OSError as exc:
        raise ValidationFailed(
            f"cannot make {str(path)!r}: {exc.strerror or exc}", hint=HOME_HINT
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValidationFailed(
            f"cannot write in {str(path)!r}: permission denied", hint=HOME_HINT
        )
    return path


def _blocker(path: Path) -> Path:
    """The first of `path` and its parents, from the top, that is there but no directory."""
    for part in [*reversed(path.parents), path]:
        if part.is_symlink() and not part.exists():
            return part
        if part.exists() and not part.is_dir():
            return part
    return path


def _what(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        return "a dangling symlink"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "not a directory"
    return "a file" if stat.S_ISREG(mode) else (not_a_file(mode) or "not a directory")
