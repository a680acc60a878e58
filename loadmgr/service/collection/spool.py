"""A write-ahead spool of a run's intervals, so a MongoDB outage (or a crash during one)
loses nothing: each interval is appended here first, and the file is emptied once MongoDB
has it. Writes to MongoDB are idempotent (keyed by run and seq), so replaying is safe.
"""

from __future__ import annotations

import json
from pathlib import Path

from loadmgr.errors import ExitCode, LoadmgrError
from loadmgr.models import MetricSnapshot


class SpoolError(LoadmgrError):
    """The spool cannot be written (disk full, no permission): collecting would be blind."""

    exit_code = ExitCode.DATABASE


def spool_path(home: Path, run_id: str) -> Path:
    return home / "spool" / f"{run_id}.jsonl"


class Spool:
    """One run's not-yet-stored intervals, one JSON document a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, snapshot: MetricSnapshot) -> None:
        line = snapshot.model_dump_json() + "\n"  # pydantic's own writer: 4x faster
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Written through to the OS, not fsynced: that survives a crash of loadmgr (what
            # the spool is for) at a fraction of the cost; a power cut may lose the last line.
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as exc:
            raise SpoolError(
                f"cannot write the interval spool {self.path}: {exc.strerror or exc}",
                hint="free disk space or fix permissions under LOADMGR_HOME",
            ) from None

    def load(self) -> list[MetricSnapshot]:
        """Every spooled interval (a torn last line, from a crash mid-write, is skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SpoolError(f"cannot read the interval spool {self.path}: {exc}") from None
        snapshots = []
        for line in text.splitlines():
            try:
                snapshots.append(MetricSnapshot.model_validate(json.loads(line)))
            except ValueError:
                continue
        return snapshots

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # an undeletable spool only means a harmless, idempotent replay later
