"""A file's entries as the typed inputs of `tests create`, `schedules add` and `notify
add`, checked when made, as those commands check their options; each error located.

A list's items and a table's keys are checked one by one first (with the same service
functions), so an error names the one at fault: `tests.checkout.thresholds[1]`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed
from loadmgr.service.declared.files import (
    NOTIFICATION_KEYS,
    SCHEDULE_KEYS,
    SECTIONS,
    URL_REFUSAL,
    DeclaredFile,
    located,
)
from loadmgr.service.declared.test_keys import TEST_KEYS

if TYPE_CHECKING:
    from loadmgr.service.definitions.tests import TestSpec
    from loadmgr.service.notifications.subscriptions import NotificationSpec
    from loadmgr.service.scheduling.schedules import ScheduleRequest

# What `tests create` gives a test when its option is not given; `apply` the same.
TEST_DEFAULTS = {"users": 10, "spawn_rate": 10.0, "duration": "60s"}
SCHEDULE_DEFAULTS = {"timezone": "UTC", "grace": "15m", "failure_limit": 3}


@dataclass(frozen=True)
class Entry:
    """One entry of a file, made into its typed input."""

    file: DeclaredFile
    section: str  # tests | schedules | notifications
    name: str
    spec: Any  # TestSpec | ScheduleRequest | NotificationSpec

    @property
    def path(self) -> tuple[str, str]:
        return (self.section, self.name)

    @property
    def keys(self) -> dict[str, str]:
        return {"tests": TEST_KEYS, "schedules": SCHEDULE_KEYS}.get(self.section, NOTIFICATION_KEYS)

    def raw(self) -> dict[str, Any]:
        return self.file.entries(self.section)[self.name]


def read_entries(file: DeclaredFile) -> list[Entry]:
    """Every entry of the file, tests first, each checked as its command checks it."""
    found = []
    for section, make in (
        ("tests", test_spec),
        ("schedules", schedule_request),
        ("notifications", notification_spec),
    ):
        for name, raw in file.entries(section).items():
            path = (section, name)
            if not name.strip():
                raise file.refuse(path, "a name must not be empty")
            with located(file, path, SECTIONS[section]):
                spec = make(file, path, raw)
            found.append(Entry(file, section, name.strip(), spec))
    return found


def _pairs(
    file: DeclaredFile, path: tuple[str | int, ...], table: dict[str, str] | None, check: Any
) -> list[str] | None:
    """A table of texts as the `KEY=VALUE` options its command takes (a Locust flag is
    `KEY = ""`, stored as `KEY` alone is), each pair checked alone so an error names its
    key."""
    if table is None:
        return None
    for key in table:
        if "=" in key:
            raise file.refuse((*path, key), "a key must not hold '='")
    pairs = [f"{key}={value}" for key, value in table.items()]
    if check is not None:
        for key, pair in zip(table, pairs, strict=True):
            with located(file, (*path, key), {}):
                check([pair])
    return pairs


def _each(
    file: DeclaredFile, path: tuple[str | int, ...], items: list[str] | None, check: Any
) -> list[str] | None:
    if items is not None:
        for index, item in enumerate(items):
            with located(file, (*path, index), {}):
                check([item])
    return items


def _duration(value: Any) -> str | None:
    return None if value is None else str(value)


def test_spec(file: DeclaredFile, path: tuple[str, str], raw: dict[str, Any]) -> TestSpec:
    from loadmgr.service.definitions.tests import TestSpec
    from loadmgr.service.runs.options import check_locust_options, check_thresholds

    entry = {**TEST_DEFAULTS, **raw}
    locustfile = entry.get("locustfile")
    read_from = _locustfile_path(file, path, locustfile)
    _each(file, (*path, "thresholds"), entry.get("thresholds"), check_thresholds)
    meta = _pairs(file, (*path, "metadata"), entry.get("metadata"), _check_metadata)
    options = _pairs(
        file, (*path, "locust_options"), entry.get("locust_options"), check_locust_options
    )
    spec = TestSpec(
        name=path[1],
        target_url=entry["target_url"],
        locustfile=read_from,
        locustfile_name=locustfile,
        cluster=entry.get("cluster"),
        description=entry.get("description"),
        tags=entry.get("tags"),
        users=entry["users"],
        spawn_rate=float(entry["spawn_rate"]),
        duration=_duration(entry["duration"]),
        max_duration=_duration(entry.get("max_duration")),
        warmup=_duration(entry.get("warmup")),
        max_users=entry.get("max_users"),
        scenario=entry.get("scenario"),
        meta=meta,
        thresholds=entry.get("thresholds"),
        locust_options=options,
        server_metrics=entry.get("server_metrics"),
        source=entry.get("source"),
        saturation_cpu=entry.get("saturation_cpu"),
    )
    # What `tests create` does not take (`tests baseline --floor`, the steps), set here.
    spec.fields.update(_floors(file, path, entry.get("floors")))
    spec.fields.update(_steps(file, path, entry))
    return spec


def _floors(
    file: DeclaredFile, path: tuple[str, str], table: dict[str, str] | None
) -> dict[str, Any]:
    """`floors = { p95 = "2ms", rps = "1%" }` as `tests baseline --floor` stores them."""
    from loadmgr.service.analysis.regressions import floors_document, parse_floor

    if not table:
        return {}
    floors = {}
    for pair in _pairs(file, (*path, "floors"), table, None) or []:
        with located(file, (*path, "floors", pair.split("=", 1)[0]), {}):
            name, floor = parse_floor(pair)
        floors[name] = floor
    return {"regressionFloors": floors_document(floors)}


def _steps(file: DeclaredFile, path: tuple[str, str], entry: dict[str, Any]) -> dict[str, Any]:
    """`steps = [10, 20, 40]`, `step_duration = "60s"` (`step_settle`): the test's stored
    steps, checked as `runs start --steps` checks them."""
    from loadmgr.models.shapes import steps_plan
    from loadmgr.service.runs.options import optional_duration, parse_steps_option

    users = entry.get("steps")
    if users is None:
        for key in ("step_duration", "step_settle"):
            if key in entry:
                raise file.refuse((*path, key), f"{key} needs steps")
        return {}
    with located(file, (*path, "steps"), {}):
        parsed = parse_steps_option(",".join(str(u) for u in users))
    if "step_duration" not in entry:
        raise file.refuse((*path, "steps"), "steps need step_duration (how long each lasts)")
    with located(file, (*path, "step_duration"), {}):
        step_sec = optional_duration("--step-duration", _duration(entry["step_duration"]))
    with located(file, (*path, "step_settle"), {}):
        settle = optional_duration("--step-settle", _duration(entry.get("step_settle")))
        try:
            return {"steps": steps_plan(parsed or [], step_sec or 0, settle)}
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None


def _check_metadata(pairs: list[str]) -> None:
    from loadmgr.service.runs.options import parse_metadata

    parse_metadata(pairs)


def _locustfile_path(file: DeclaredFile, path: tuple[str, str], written: str | None) -> str | None:
    """Where the locustfile is read from: relative to the file's folder. A path that
    does not exist is refused for the local cluster (by `TestSpec`) and, for a remote one
    (which may run a locustfile deployed with it), when it leads out of the file's folder
    tree: it cannot be a path of the repository then."""
    if written is None:
        return None
    folder = file.folder
    parts = [part.strip() for part in written.split(",")]
    resolved = [folder / Path(part).expanduser() for part in parts if part]
    root = os.path.normpath(folder.absolute())
    for part, full in zip(parts, resolved, strict=False):
        inside = Path(os.path.normpath(full.absolute())).is_relative_to(root)
        if not full.exists() and not inside:
            raise file.refuse(
                (*path, "locustfile"),
                f"locustfile {part!r} not found (and it is outside this file's folder)",
            )
    return ",".join(str(p) for p in resolved)


def schedule_request(
    file: DeclaredFile, path: tuple[str, str], raw: dict[str, Any]
) -> ScheduleRequest:
    from loadmgr.models.schedules import check_cron, check_timezone
    from loadmgr.service.runs.options import (
        check_locust_options,
        check_thresholds,
        parse_overrides,
    )
    from loadmgr.service.scheduling.schedules import CRON_HINT, ScheduleRequest
    from loadmgr.service.validation import duration_option

    entry = {**SCHEDULE_DEFAULTS, **raw}
    for key, check, hint in (
        ("cron", check_cron, CRON_HINT),
        ("timezone", check_timezone, None),
    ):
        try:
            check(entry[key])
        except ValueError as exc:
            raise file.refuse((*path, key), str(exc), hint=hint) from None
    keys = SCHEDULE_KEYS
    _each(file, (*path, "thresholds"), entry.get("thresholds"), check_thresholds)
    with located(file, path, keys):
        overrides = parse_overrides(
            users=entry.get("users"),
            spawn_rate=entry.get("spawn_rate"),
            duration=_duration(entry.get("duration")),
            cluster=entry.get("cluster"),
            workers=entry.get("workers"),
            thresholds=entry.get("thresholds"),
            meta=_pairs(file, (*path, "metadata"), entry.get("metadata"), _check_metadata),
            locust_options=_pairs(
                file,
                (*path, "locust_options"),
                entry.get("locust_options"),
                check_locust_options,
            ),
            saturation_cpu=entry.get("saturation_cpu"),
        )
        return ScheduleRequest(
            test=entry["test"],
            cron=entry["cron"],
            timezone=entry["timezone"],
            name=path[1],
            overrides=overrides,
            grace_sec=duration_option("--grace", str(entry["grace"])),
            failure_limit=entry["failure_limit"],
        )


def notification_spec(
    file: DeclaredFile, path: tuple[str, str], raw: dict[str, Any]
) -> NotificationSpec:
    from loadmgr.service.notifications.subscriptions import NotificationSpec

    for key in ("webhook_env", "webhook_file"):
        value = raw.get(key)
        if isinstance(value, str) and "://" in value:
            raise file.refuse((*path, key), URL_REFUSAL)  # the value is never echoed
    webhook_file = raw.get("webhook_file")
    if webhook_file is not None:
        webhook_file = str(file.folder / Path(webhook_file).expanduser())
    return NotificationSpec(
        name=path[1],
        webhook_env=raw.get("webhook_env"),
        webhook_file=webhook_file,
        body_format=raw.get("format", "json"),
        on=raw.get("on"),
        test=raw.get("test"),
        tag=raw.get("tag"),
    )


def check_unique(entries: list[Entry]) -> None:
    """No two entries of a section with one name, in one file or several."""
    seen: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        key = (entry.section, entry.name)
        first = seen.setdefault(key, entry)
        if first is not entry:
            raise ValidationFailed(
                f"{entry.file.where(entry.path)}: duplicate {entry.section[:-1]} name "
                f"{entry.name!r} (also at {first.file.where(first.path)})"
            )
