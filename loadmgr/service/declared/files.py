"""Reading the TOML files `loadmgr apply` is given, and their format: which sections and
keys there are, of which types. Values are checked by the services `tests create`,
`schedules add` and `notify add` use (entries.py), never here.

Every error names the file, the line and the key path:
`loadtests.toml:14: tests.checkout.thresholds[1]: unknown metric 'p96'`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadmgr.errors import DatabaseError, LoadmgrError, ValidationFailed
from loadmgr.service.declared.locations import KeyPath, Locations, key_path
from loadmgr.service.declared.test_keys import (
    DURATION,
    NUMBER,
    TABLE,
    TEST_KEYS,
    TEXT,
    TEXTS,
    WHOLE,
    WHOLES,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE_MAX_BYTES = 1_000_000
FILES_MAX = 100  # a folder's *.toml files

SCHEDULE_KEYS = {
    "test": TEXT,
    "cron": TEXT,
    "timezone": TEXT,
    "users": WHOLE,
    "spawn_rate": NUMBER,
    "duration": DURATION,
    "cluster": TEXT,
    "workers": WHOLE,
    "thresholds": TEXTS,
    "metadata": TABLE,
    "locust_options": TABLE,
    "saturation_cpu": NUMBER,
    "grace": DURATION,
    "failure_limit": WHOLE,
}
NOTIFICATION_KEYS = {
    "webhook_env": TEXT,
    "webhook_file": TEXT,
    "format": TEXT,
    "on": TEXTS,
    "test": TEXT,
    "tag": TEXT,
}
SECTIONS = {"tests": TEST_KEYS, "schedules": SCHEDULE_KEYS, "notifications": NOTIFICATION_KEYS}
REQUIRED = {"tests": ("target_url",), "schedules": ("test", "cron"), "notifications": ()}
# Keys someone would write a webhook's URL under: refused with the reason, never echoed.
URL_KEYS = ("webhook", "webhook_url", "url")
URL_REFUSAL = (
    "a webhook is never given as a URL in a file (it would be in git): name the "
    "environment variable (webhook_env) or the file (webhook_file) that holds it"
)


@dataclass(frozen=True)
class DeclaredFile:
    """One file: its name (what its entries are marked managed by), its data, and
    where each key is."""

    path: Path
    name: str
    data: dict[str, Any]
    locations: Locations

    def where(self, path: KeyPath) -> str:
        """`loadtests.toml:14: tests.checkout.users`."""
        return f"{self.path}:{self.locations.line_of(path)}: {key_path(path)}"

    def refuse(self, path: KeyPath, message: str, hint: str | None = None) -> ValidationFailed:
        return ValidationFailed(f"{self.where(path)}: {message}", hint=hint)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def entries(self, section: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.data.get(section, {})
        return found


@contextmanager
def located(file: DeclaredFile, path: KeyPath, keys: dict[str, str]) -> Iterator[None]:
    """Errors of the checks run for the entry at `path`, named by file, line and key:
    the key the message's option (`--threshold`) stands for when it names one. The
    error keeps its kind (exit code); a database failure is left as it is."""
    try:
        yield
    except DatabaseError:
        raise
    except LoadmgrError as exc:
        if exc.message.startswith(str(file.path) + ":"):
            raise  # already located
        where = (*path, *_key_of_option(exc.message, keys))
        located_error = type(exc)(f"{file.where(where)}: {exc.message}", hint=exc.hint)
        raise located_error from None


# Options whose key is not the option's name in snake case.
_OPTION_KEYS = {
    "--tag": ("tags", "tag"),
    "--meta": ("metadata",),
    "--threshold": ("thresholds",),
    "--locust-option": ("locust_options",),
    "--server-metric": ("server_metrics",),
    "--format": ("format",),
}
_OPTION = re.compile(r"--[a-z][a-z-]*")


def _key_of_option(message: str, keys: dict[str, str]) -> tuple[str, ...]:
    match = _OPTION.search(message)
    if match is None:
        return ()
    option = match.group()
    for key in (*_OPTION_KEYS.get(option, ()), option[2:].replace("-", "_")):
        if key in keys:
            return (key,)
    return ()


def read_files(target: str) -> list[DeclaredFile]:
    """The file named, or every `*.toml` directly in the folder named, parsed and checked
    against the format (sections, keys, types); ValidationFailed naming file and line."""
    path = Path(target).expanduser()
    if path.is_dir():
        paths = sorted(p for p in path.glob("*.toml") if p.is_file())
        if not paths:
            raise ValidationFailed(f"no *.toml file in folder {target!r}")
        if len(paths) > FILES_MAX:
            raise ValidationFailed(f"more than {FILES_MAX} *.toml files in folder {target!r}")
    elif path.exists():
        paths = [path]
    else:
        raise ValidationFailed(f"file {target!r} not found", hint="give -f FILE or -f DIR")
    return [read_file(p) for p in paths]


def read_file(path: Path) -> DeclaredFile:
    from loadmgr.local_files import read_regular_file

    data = read_regular_file(path, "file", max_bytes=FILE_MAX_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(f"{path}: not UTF-8 text") from None
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailed(f"{path}:{_line_of(exc)}: {_without_position(exc)}") from None
    file = DeclaredFile(path, path.name, parsed, Locations(text))
    check_format(file)
    return file


def _line_of(exc: Exception) -> int:
    lineno = getattr(exc, "lineno", None)  # Python 3.14 gives it
    if isinstance(lineno, int):
        return lineno
    match = re.search(r"at line (\d+)", str(exc))
    return int(match.group(1)) if match else 1


def _without_position(exc: Exception) -> str:
    text = str(getattr(exc, "msg", "") or exc)
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", text) or "invalid TOML"


def check_format(file: DeclaredFile) -> None:
    """Only known sections and keys, each of its type; the required keys there."""
    for section, entries in file.data.items():
        if section not in SECTIONS:
            raise file.refuse((section,), f"unknown section (one of {', '.join(SECTIONS)})")
        if not isinstance(entries, dict):
            raise file.refuse((section,), f"must be a table of {section} by name")
        keys = SECTIONS[section]
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                raise file.refuse((section, name), "must be a table")
            for key, value in entry.items():
                _check_key(file, (section, name, key), keys, value)
            for key in REQUIRED[section]:
                if key not in entry:
                    raise file.refuse((section, name), f"missing {key}")


def _check_key(file: DeclaredFile, path: KeyPath, keys: dict[str, str], value: Any) -> None:
    key = str(path[-1])
    if key in URL_KEYS and path[0] == "notifications":
        raise file.refuse(path, URL_REFUSAL)
    kind = keys.get(key)
    if kind is None:
        raise file.refuse(path, f"unknown key (keys: {', '.join(keys)})")
    if kind in (TEXTS, WHOLES):
        if not isinstance(value, list):
            raise file.refuse(path, f"must be a {kind}")
        item_kind = TEXT if kind == TEXTS else WHOLE
        for index, item in enumerate(value):
            if not _of_kind(item, item_kind):
                raise file.refuse((*path, index), f"must be a {item_kind}")
    elif kind == TABLE:
        if not isinstance(value, dict):
            raise file.refuse(path, f"must be a {kind}")
        for item_key, item in value.items():
            if not isinstance(item, str):
                raise file.refuse((*path, item_key), "must be a text")
    elif not _of_kind(value, kind):
        raise file.refuse(path, f"must be a {kind}")


def _of_kind(value: Any, kind: str) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == TEXT:
        return isinstance(value, str)
    if kind == WHOLE:
        return number and isinstance(value, int)
    if kind == NUMBER:
        return number
    return isinstance(value, str) or (number and isinstance(value, int))  # DURATION
