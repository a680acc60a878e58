"""`loadmgr apply`: read, check and plan everything, then write the plan, all or nothing.

Each write is conditional on what the plan read: a create on its name being free (the
unique index), an update on the document being unchanged since (a test's `version`, the
`updatedAt` of the others), a delete on the file still managing it. When one fails (an
apply of another file, or a person, got there first), the writes already made are undone
in reverse order, so no apply leaves half its file applied: exit 5, and apply again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadmgr.errors import Conflict, LoadmgrError
from loadmgr.models import utcnow
from loadmgr.service.declared.files import read_files
from loadmgr.service.declared.plan import Change, Plan, make_plan

if TYPE_CHECKING:
    from loadmgr.store import Store

Undo = Callable[[], Any]
# Creates and updates in the files' order (tests before what names them); deletes last,
# what names a test before the test.
_DELETE_ORDER = {"notification": 0, "schedule": 1, "test": 2}


@dataclass(frozen=True)
class ApplyResult:
    files: list[str]
    changes: list[Change]
    applied: bool  # written (False: a dry run, or nothing to change)
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "changes": [change.to_json() for change in self.changes],
            "applied": self.applied,
            "dryRun": self.dry_run,
        }


def apply_files(
    store: Store,
    user: str,
    target: str,
    *,
    dry_run: bool = False,
    prune: bool = False,
    warn: Callable[[str], None] | None = None,
) -> ApplyResult:
    """Make the database hold what the file (or each `*.toml` of the folder) declares."""
    files = read_files(target)
    plan = make_plan(store, user, files, prune=prune, warn=warn)
    if dry_run or not plan.changes:
        return ApplyResult(plan.files, plan.changes, False, dry_run)
    write_plan(store, user, plan)
    return ApplyResult(plan.files, plan.changes, True, dry_run)


def write_plan(store: Store, user: str, plan: Plan) -> None:
    """Write every change of `plan`, or none: a failed write undoes the others."""
    store.ensure_indexes()
    store.ensure_schedule_indexes()
    store.notifications.ensure_indexes()
    kept = [c for c in plan.changes if c.action != "delete"]
    deleted = sorted(
        (c for c in plan.changes if c.action == "delete"), key=lambda c: _DELETE_ORDER[c.kind]
    )
    undo: list[Undo] = []
    try:
        for change in [*kept, *deleted]:
            _WRITERS[change.action](store, user, change, undo)
    except BaseException as exc:
        left = _undo(undo)
        if not isinstance(exc, LoadmgrError):
            raise
        said = (
            "nothing of this apply was kept"
            if not left
            else f"{left} of its writes could not be undone: apply again"
        )
        raise type(exc)(f"{exc.message}; {said}", hint=exc.hint or "apply again") from None
    for change in deleted:
        if change.kind == "schedule":  # its slots' history, once nothing can be undone
            store.schedule_slots.delete_all(str(change.current["id"]))


def _undo(undo: list[Undo]) -> int:
    """Run the undo steps newest first; how many failed."""
    failed = 0
    for step in reversed(undo):
        try:
            step()
        except Exception:
            failed += 1
    return failed


def _repository(store: Store, kind: str) -> Any:
    return {"test": store.tests, "schedule": store.schedules}.get(kind, store.notifications)


def _create(store: Store, user: str, change: Change, undo: list[Undo]) -> None:
    repository = _repository(store, change.kind)
    repository.insert(change.desired)  # Conflict when the name was taken meanwhile
    undo.append(lambda: repository.delete(change.desired.id))


def _update(store: Store, user: str, change: Change, undo: list[Undo]) -> None:
    current = change.current
    now = utcnow()
    to_set = {**change.to_set, "updatedAt": now, "updatedBy": user}
    old = current.model_dump()
    before = {key: old.get(key) for key in to_set}
    changed_meanwhile = Conflict(
        f"{change.kind} {change.name!r} was changed by someone else since this apply read it"
    )
    if change.kind == "test":
        if store.tests.update(current.id, current.version, to_set) is None:
            raise changed_meanwhile
        undo.append(lambda: store.tests.update(current.id, current.version + 1, before))
        return
    repository = _repository(store, change.kind)
    if not repository.update_unchanged(current.id, current.updatedAt, to_set):
        raise changed_meanwhile
    undo.append(lambda: repository.update_unchanged(current.id, now, before))


def _delete(store: Store, user: str, change: Change, undo: list[Undo]) -> None:
    repository = _repository(store, change.kind)
    document_id = str(change.current["id"])
    taken = repository.take_managed(document_id, change.file)
    if taken is None:
        raise Conflict(f"{change.kind} {change.name!r} was changed or deleted meanwhile")
    undo.append(lambda: repository.put_back(taken))
    if change.kind == "test" and store.runs.count_for_test(document_id):
        raise Conflict(f"test {change.name!r} was started meanwhile: not deleted")


_WRITERS: dict[str, Callable[[Store, str, Change, list[Undo]], None]] = {
    "create": _create,
    "update": _update,
    "delete": _delete,
}
