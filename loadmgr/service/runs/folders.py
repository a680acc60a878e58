"""The folder a local run keeps under LOADMGR_HOME (`runs/RUN/`): its locustfile written
back, the Locust logs (kept small, locust/logs.py), and how old folders are removed.

A folder is removed once nothing in it changed for LOADMGR_RUN_FILES_KEEP (default 7 days)
and its run is not live here: while a local Locust runs, its log keeper touches the folder
every second (locust/logs.py), and a run this database holds as Pending, Running or
Stopping keeps its folder whatever its age. (A run of another database or scope on this
machine is told apart by that touch only.)
Pruning is bounded in time, done on each local `runs start` and by `loadmgr db prune`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loadmgr.errors import ValidationFailed
from loadmgr.locust.logs import DEFAULT_LOG_MAX_BYTES, LOG_MIN_BYTES
from loadmgr.models.documents import LocustfileBundle

if TYPE_CHECKING:
    from loadmgr.store import Store

RUNS_FOLDER = "runs"
LOCUSTFILE_FOLDER = "locustfile"  # runs/RUN/locustfile/: a bundle written back
DEFAULT_KEEP_SEC = 7 * 86_400
PRUNE_BUDGET_SEC = 2.0  # at `runs start`: what pruning may take before the run starts
KEEP_ENV = "LOADMGR_RUN_FILES_KEEP"
LOG_MAX_ENV = "LOADMGR_LOCUST_LOG_MAX"
_UNITS = {"": 1, "b": 1, "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000}


def runs_folder(home: Path) -> Path:
    return home / RUNS_FOLDER


def write_locustfile(run_dir: Path, source: str | LocustfileBundle) -> list[Path]:
    """The run's locustfile written under `run_dir`; the paths Locust's `-f` is given."""
    if isinstance(source, str):
        path = run_dir / "locustfile.py"
        path.write_text(source, encoding="utf-8")
        return [path]
    folder = run_dir / LOCUSTFILE_FOLDER
    for file in source.files:
        path = folder.joinpath(*file.path.split("/"))  # relative and checked when read
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.data())
    entries = source.entries
    return [folder if entry == "." else folder.joinpath(*entry.split("/")) for entry in entries]


def log_max_bytes() -> int:
    """LOADMGR_LOCUST_LOG_MAX (`20MB`, `500kB`, bytes): the cap of each Locust log."""
    text = os.environ.get(LOG_MAX_ENV, "").strip().lower().replace(" ", "")
    if not text:
        return DEFAULT_LOG_MAX_BYTES
    number = text.rstrip("kmgb")
    unit = text[len(number) :]
    try:
        value = int(float(number) * _UNITS[unit])
    except (KeyError, ValueError, OverflowError):
        value = -1
    if value < LOG_MIN_BYTES:
        raise ValidationFailed(
            f"invalid {LOG_MAX_ENV}={text!r}: a size of at least {LOG_MIN_BYTES // 1000} kB "
            "(e.g. 20MB, 500kB)"
        )
    return value


def keep_sec() -> int:
    """LOADMGR_RUN_FILES_KEEP (`7d`, `12h`, `0s`...): how long a run's folder is kept."""
    text = os.environ.get(KEEP_ENV, "").strip()
    return _age(KEEP_ENV, text) if text else DEFAULT_KEEP_SEC


def _age(option: str, text: str) -> int:
    """An age: whole days (`7d`) or a duration (`12h`, `30m`, `0s`); exit 2 otherwise."""
    from loadmgr.models import parse_duration

    text = text.strip().lower()
    try:
        if text.endswith("d") and text[:-1].isdigit():
            return int(text[:-1]) * 86_400
        return parse_duration(text)
    except ValueError:
        raise ValidationFailed(
            f"invalid {option} {text!r}: an age such as 7d, 12h, 30m or 0s"
        ) from None


def folder_size(path: Path) -> int:
    """Bytes of the regular files under `path` (symlinks not followed)."""
    total = 0
    for directory, _subdirectories, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


@dataclass
class RunFolders:
    """The run folders under LOADMGR_HOME: how many, their bytes; and, after a prune, the
    ones removed (and the bytes freed) and those still to look at when time ran out."""

    count: int = 0
    bytes: int = 0
    removed: list[str] = field(default_factory=list)
    freed: int = 0
    unfinished: bool = False


def run_folders(home: Path) -> RunFolders:
    """What `db status` shows: the run folders and the space they take."""
    found = RunFolders()
    for folder in _folders(home):
        found.count += 1
        found.bytes += folder_size(folder)
    return found


def _folders(home: Path) -> Iterator[Path]:
    try:
        entries = sorted(runs_folder(home).iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            yield entry


def _last_change(folder: Path) -> float:
    """The latest change to the folder or any file in it (a live log moves it on)."""
    latest = 0.0
    for directory, _subdirectories, files in os.walk(folder):
        for name in [".", *files]:
            try:
                latest = max(latest, os.lstat(os.path.join(directory, name)).st_mtime)
            except OSError:
                pass
    return latest


def prune_old(store: Store, home: Path, older_than: str | None) -> dict[str, object]:
    """`db prune`: every old folder, with no time bound, as a document."""
    age = keep_sec() if older_than is None else _age("--older-than", older_than)
    pruned = prune_run_folders(store, home, older_than=age)
    return {
        "removed": pruned.removed,
        "freedBytes": pruned.freed,
        "olderThanSec": age,
        "unfinished": pruned.unfinished,
    }


def prune_run_folders(
    store: Store | None,
    home: Path,
    *,
    older_than: int,
    budget_sec: float | None = None,
    keep: Iterable[str] = (),
) -> RunFolders:
    """Remove the run folders unchanged for `older_than` seconds whose run is not live.

    `store` None: without a database, only folders whose files are all that old go. A
    folder whose run is live (Pending, Running, Stopping) stays, whatever its age; so do
    those in `keep`. Stops (`unfinished`) once `budget_sec` is spent.
    """
    kept = set(keep)
    result = RunFolders()
    deadline = time.monotonic() + budget_sec if budget_sec is not None else None
    cutoff = time.time() - older_than
    for folder in _folders(home):
        if deadline is not None and time.monotonic() > deadline:
            result.unfinished = True
            break
        if folder.name in kept or _last_change(folder) > cutoff:
            continue
        if store is not None:
            run = store.runs.find_by_id(folder.name)
            if run is not None and run.status.is_active:
                continue
        size = folder_size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            result.removed.append(folder.name)
            result.freed += size
    return result
