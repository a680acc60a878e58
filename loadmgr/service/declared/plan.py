"""What an apply would change: every entry checked by its service, compared with what
the database holds, field by field. Nothing is written here.

Ownership: what an apply creates is marked `managedBy` its file's name. An entry a person
made is taken over (a change of `managedBy`, shown); one another file manages is refused
(exit 5). `--prune` deletes only what a file applied now manages and no longer declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.service.declared.entries import Entry, check_unique, read_entries
from loadmgr.service.declared.files import DeclaredFile, located
from loadmgr.service.declared.test_keys import TEST_FIELDS

if TYPE_CHECKING:
    from loadmgr.models import LoadTest
    from loadmgr.store import Store

# Written with the locustfile's hash: what it was computed from.
WITH_LOCUSTFILE = ("locustfileContent", "locustfileBundle", "shape")
SCHEDULE_FIELDS = {
    "loadTestId": "test",
    "cron": "cron",
    "timezone": "timezone",
    "overrides": "overrides",
    "graceSec": "grace",
    "failureLimit": "failure_limit",
    "managedBy": "managed by",
}
# Written with a new cron or time zone: the next slot, read in them.
WITH_CRON = ("nextSlotAt",)
NOTIFICATION_FIELDS = {
    "webhookEnv": "webhook_env",
    "webhookFile": "webhook_file",
    "format": "format",
    "on": "on",
    "testId": "test",
    "tag": "tag",
    "managedBy": "managed by",
}
SYMBOLS = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True)
class FieldChange:
    key: str
    old: Any
    new: Any


@dataclass
class Change:
    """One document created, updated (its changed fields) or deleted."""

    action: str  # create | update | delete
    kind: str  # test | schedule | notification
    name: str
    file: str  # the file that manages it
    fields: list[FieldChange] = field(default_factory=list)
    desired: Any = None  # the document to store (create, update)
    current: Any = None  # the document stored (update, delete)
    to_set: dict[str, Any] = field(default_factory=dict)  # update: the stored fields

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "file": self.file,
            "fields": [{"key": f.key, "old": f.old, "new": f.new} for f in self.fields],
        }


@dataclass
class Plan:
    files: list[str]
    changes: list[Change]


def make_plan(
    store: Store,
    user: str,
    files: list[DeclaredFile],
    *,
    prune: bool,
    warn: Callable[[str], None] | None = None,
) -> Plan:
    """Every entry of `files` checked and compared with the database; ValidationFailed
    (or the service's own error) located in its file, before anything is written."""
    entries = [entry for file in files for entry in read_entries(file)]
    check_unique(entries)
    planner = _Planner(store, user, {file.name for file in files}, warn)
    for entry in entries:
        with located(entry.file, entry.path, entry.keys):
            planner.plan(entry)
    if prune:
        planner.prune({(entry.section, entry.name) for entry in entries})
    return Plan([str(file.path) for file in files], planner.changes)


class _Planner:
    def __init__(
        self, store: Store, user: str, managers: set[str], warn: Callable[[str], None] | None
    ) -> None:
        self.store = store
        self.user = user
        self.managers = managers
        self.warn = warn
        self.tests: dict[str, LoadTest] = {}  # declared, as they will be stored
        self.names: dict[str, str] = {}  # test id → name, to show ids as names
        self.changes: list[Change] = []

    def plan(self, entry: Entry) -> None:
        getattr(self, f"_plan_{entry.section}")(entry)

    def _plan_tests(self, entry: Entry) -> None:
        from loadmgr.service.definitions.tests import check_not_foreign, prepare_test

        desired = prepare_test(self.store, self.user, entry.spec, self.warn)
        current = self._current(self.store.tests.find_by_name, entry)
        if current is not None:
            check_not_foreign(current, "updated")
            desired = desired.model_copy(update={"id": current.id})
        desired.managedBy = entry.file.name
        self.tests[entry.name] = desired
        self.names[desired.id] = entry.name
        self._compare(entry, "test", desired, current, TEST_FIELDS)

    def _plan_schedules(self, entry: Entry) -> None:
        from loadmgr.service.scheduling.schedules import prepare_schedule

        test = self._test(entry, entry.spec.test)
        desired = prepare_schedule(self.store, entry.spec, self.user, test)
        self._plan_named(entry, "schedule", desired, self.store.schedules, SCHEDULE_FIELDS)

    def _plan_notifications(self, entry: Entry) -> None:
        from loadmgr.service.notifications.subscriptions import prepare_notification

        spec = entry.spec
        test = self._test(entry, spec.test) if spec.test is not None else None
        desired = prepare_notification(self.store, self.user, spec, test)
        self._plan_named(
            entry, "notification", desired, self.store.notifications, NOTIFICATION_FIELDS
        )

    def _plan_named(
        self, entry: Entry, kind: str, desired: Any, repository: Any, fields: dict[str, str]
    ) -> None:
        """`desired`, marked as its file's, compared with the one of its name stored."""
        desired.managedBy = entry.file.name
        current = self._current(repository.find_by_name, entry)
        self._compare(entry, kind, desired, current, fields)

    def _test(self, entry: Entry, ref: str) -> LoadTest:
        """The test an entry names: one declared, else one stored (exit 2 if neither)."""
        from loadmgr.service.definitions.tests import get_test

        declared = self.tests.get(ref.strip())
        if declared is not None:
            return declared
        try:
            test = get_test(self.store, ref)
        except NotFound:
            raise entry.file.refuse(
                (*entry.path, "test"),
                f"test {ref!r} is neither declared in the files applied nor in the "
                f"database{self.store.scope.describe()}",
            ) from None
        self.names[test.id] = test.name
        return test

    def _current(self, find: Callable[[str], list[Any]], entry: Entry) -> Any:
        found = find(entry.name)
        if len(found) > 1:
            raise ValidationFailed(
                f"several {entry.section} are named {entry.name!r} in different tenants or "
                "environments",
                hint="set --tenant and --env",
            )
        current = found[0] if found else None
        owner = getattr(current, "managedBy", None)
        if owner and owner not in self.managers:
            raise Conflict(
                f"{entry.section[:-1]} {entry.name!r} is managed by {owner}: only that "
                "file's apply changes it",
                hint=f"remove it from {owner} first, or from this file",
            )
        return current

    def _compare(
        self, entry: Entry, kind: str, desired: Any, current: Any, fields: dict[str, str]
    ) -> None:
        file = entry.file.name
        if current is None:
            self.changes.append(Change("create", kind, entry.name, file, desired=desired))
            return
        new, old = desired.model_dump(), current.model_dump()
        changed = [key for key in fields if new.get(key) != old.get(key)]
        if not changed:
            return
        to_set = {key: new[key] for key in changed}
        if "locustfileSha256" in changed:
            to_set.update({key: new.get(key) for key in WITH_LOCUSTFILE})
        if "cron" in changed or "timezone" in changed:
            to_set.update({key: new.get(key) for key in WITH_CRON})
        if "loadTestId" in changed:
            to_set["testName"] = new.get("testName")
        shown = [
            FieldChange(fields[key], self._shown(key, old.get(key)), self._shown(key, new[key]))
            for key in changed
        ]
        self.changes.append(
            Change("update", kind, entry.name, file, shown, desired, current, to_set)
        )

    def _shown(self, key: str, value: Any) -> Any:
        if key in ("loadTestId", "testId") and isinstance(value, str):
            return self.names.get(value, value)
        if key == "locustfileSha256" and isinstance(value, str):
            return f"sha256 {value[:12]}"
        return value

    def prune(self, declared: set[tuple[str, str]]) -> None:
        """Delete what a file applied now manages and none declares; refused (exit 5)
        for a test with runs, or with a schedule that is not deleted with it."""
        store = self.store
        notifications = [n.model_dump() for n in store.notifications.find_many()]
        schedules = store.schedules.find_many(limit=0)
        tests = store.tests.find_many(limit=0)
        gone: dict[str, list[dict[str, Any]]] = {}
        for section, documents in (
            ("notifications", notifications),
            ("schedules", schedules),
            ("tests", tests),
        ):
            gone[section] = [
                doc
                for doc in documents
                if doc.get("managedBy") in self.managers
                and (section, str(doc.get("name"))) not in declared
            ]
        kept_schedules = [doc for doc in schedules if doc not in gone["schedules"]] + [
            c.desired.model_dump() for c in self.changes if c.kind == "schedule"
        ]
        for doc in gone["tests"]:
            self._check_deletable(doc, kept_schedules)
        for section, kind in (
            ("notifications", "notification"),
            ("schedules", "schedule"),
            ("tests", "test"),
        ):
            for doc in gone[section]:
                self.changes.append(
                    Change("delete", kind, str(doc["name"]), str(doc["managedBy"]), current=doc)
                )

    def _check_deletable(self, test: dict[str, Any], kept_schedules: list[dict[str, Any]]) -> None:
        runs = self.store.runs.count_for_test(str(test["id"]))
        name = test.get("name")
        if runs:
            raise Conflict(
                f"--prune would delete test {name!r} ({test.get('managedBy')} no longer "
                f"declares it) and its {runs} run(s)",
                hint=f"delete it with its runs: 'loadmgr tests delete {name} --force'; or "
                "declare it again",
            )
        for schedule in kept_schedules:
            if schedule.get("loadTestId") == test["id"]:
                raise Conflict(
                    f"--prune would delete test {name!r}, which schedule "
                    f"{schedule.get('name')!r} still runs",
                    hint="remove that schedule first",
                )
