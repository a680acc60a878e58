"""Where the database's space goes, for `db status`."""

from __future__ import annotations

from typing import Any

from loadmgr.config import Settings
from loadmgr.errors import LoadmgrError

# `db status` must answer quickly even when the database is away.
STATUS_TIMEOUT_MS = 5000


def database_space(settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The space per collection, per test and per run-hour of the configured database
    (never starting the embedded store to measure it); else None and why not."""
    from loadmgr.service.context import open_store

    try:
        store = open_store(settings, timeout_ms=STATUS_TIMEOUT_MS, start_embedded=False)
    except LoadmgrError as exc:
        return None, exc.message
    try:
        return store.space(), None
    except LoadmgrError as exc:
        return None, exc.message
    finally:
        store.close()
