"""`db migrate` as one call: the schema steps, then the Go documents' conversion, on the
database in use or on a copy of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadmgr.service.migration.compaction import compact_intervals
from loadmgr.service.migration.go_import import (
    Progress,
    check_tenant_from,
    import_go_documents,
)
from loadmgr.service.migration.schema import migrate, pending_steps

if TYPE_CHECKING:
    from loadmgr.store import Store

Notify = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


def _no_progress(_collection: str, _done: int, _total: int) -> None:
    pass


@dataclass(frozen=True)
class MigrateOptions:
    """What `db migrate` was asked: which Go id becomes the tenant, every step again or
    only the pending ones, only saying what would change, or migrating a new copy."""

    tenant_from: str = "account"
    rerun: bool = False
    dry_run: bool = False
    to_database: str | None = None

    def __post_init__(self) -> None:
        check_tenant_from(self.tenant_from)  # before the store is even opened


def migrate_database(
    store: Store,
    user: str,
    options: MigrateOptions,
    *,
    notify: Notify = _quiet,
    each: Notify = _quiet,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Bring `store`'s database (or, with `to_database`, a new copy of it) to this
    loadmgr's schema and convert its Go documents; with `dry_run`, only say what would be.
    `options` were checked when made, before anything is copied or changed.

    `notify` gets a line per step, `each` a line per converted document and `progress`
    each collection's count as the conversion goes. Returns what `db migrate` prints.
    """
    tenant_from, rerun, to_database = options.tenant_from, options.rerun, options.to_database
    if options.dry_run:
        pending = pending_steps(store, rerun=rerun)
        for waiting in pending:
            notify(f"would run schema {waiting.version}: {waiting.description}")
        imported = import_go_documents(
            store, tenant_from=tenant_from, dry_run=True, notify=each, progress=progress
        )
        compacted = compact_intervals(store, dry_run=True, progress=progress, line=each)
        return {
            "dryRun": True,
            "pendingSteps": [s.version for s in pending],
            "goImport": imported.to_document(),
            "compactIntervals": compacted,
        }
    if to_database is not None:
        store = store.copy_to(to_database)
        notify(f"copied the database into {to_database!r}; migrating the copy")
    report = migrate(store, user, rerun=rerun)
    if not report.steps:
        notify(f"the database is already at schema {report.to_version}; nothing to do")
    for step in report.steps:
        notify(
            f"schema {step.version}: {step.description}: {step.examined} examined, "
            f"{step.changed} changed"
        )
    imported = import_go_documents(store, tenant_from=tenant_from, notify=each, progress=progress)
    # After the import: the Go intervals it converted are loadmgr's, and made compact too.
    compacted = compact_intervals(store, progress=progress, line=each)
    return {
        **report.to_document(),
        "goImport": imported.to_document(),
        "compactIntervals": compacted,
    }
