"""`loadmgr export`: the tests, schedules and notifications the database holds, in the
format `loadmgr apply` reads; applying what it wrote changes nothing.

A key is written when its value is not what `apply` gives a key left out (see
`entries.TEST_DEFAULTS`); the locustfile as its test stores its name (relative to where
`tests create` or `apply` was given it); a webhook by the variable or file it is read
from, as stored (never its URL, which is not stored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadmgr.models import LOCAL_CLUSTER_ID, format_duration
from loadmgr.models.schedules import DEFAULT_FAILURE_LIMIT, DEFAULT_GRACE_SEC

if TYPE_CHECKING:
    from loadmgr.models import LoadTest
    from loadmgr.models.notifications import Notification
    from loadmgr.models.schedules import Schedule
    from loadmgr.store import Store


def export_definitions(
    store: Store, *, tests: list[str] | None = None, tag: str | None = None
) -> dict[str, Any]:
    """The file's data: every test (or those named, and those tagged `tag`), their
    schedules, and the notifications of those tests or that tag (all, without either)."""
    from loadmgr.service.definitions.tests import get_test

    chosen: dict[str, LoadTest] = {}
    if tests:
        for ref in tests:
            test = get_test(store, ref)
            chosen[test.id] = test
    if tag is not None or not tests:
        tags = [tag] if tag is not None else None
        for doc in store.tests.find_many(tags=tags, limit=0):
            found = store.tests.find_by_id(str(doc["id"]))
            if found is not None and not found.written_by_go:
                chosen[found.id] = found
    ordered = sorted(chosen.values(), key=lambda t: t.name)
    names = {test.id: test.name for test in ordered}
    schedules = [s for s in _schedules(store) if s.loadTestId in names]
    everything = not tests and tag is None
    notifications = [
        n
        for n in store.notifications.find_many()
        if everything or n.testId in names or (tag is not None and n.tag == tag)
    ]
    data: dict[str, Any] = {}
    if ordered:
        data["tests"] = {test.name: test_entry(test) for test in ordered}
    if schedules:
        data["schedules"] = {s.name: schedule_entry(s, names) for s in schedules}
    if notifications:
        all_names = {**names, **_test_names(store, notifications)}
        data["notifications"] = {n.name: notification_entry(n, all_names) for n in notifications}
    return data


def _schedules(store: Store) -> list[Schedule]:
    from loadmgr.models.schedules import Schedule
    from loadmgr.store.base import stored

    return [stored(Schedule, doc) for doc in store.schedules.find_many(limit=0)]


def _test_names(store: Store, notifications: list[Notification]) -> dict[str, str]:
    from loadmgr.service.notifications.subscriptions import names_of_tests

    return names_of_tests(store, notifications)


def _duration(seconds: int) -> str:
    return format_duration(seconds)


def test_entry(test: LoadTest) -> dict[str, Any]:
    entry: dict[str, Any] = {"target_url": test.targetUrl}
    if test.locustfile:
        entry["locustfile"] = test.locustfile
    if test.locustClusterId != LOCAL_CLUSTER_ID:
        entry["cluster"] = test.locustClusterId
    if test.description:
        entry["description"] = test.description
    if test.tags:
        entry["tags"] = list(test.tags)
    entry["users"] = test.defaultUsers
    entry["spawn_rate"] = test.defaultSpawnRate
    entry["duration"] = _duration(test.defaultDurationSec)
    if test.maxDurationSec is not None:
        entry["max_duration"] = _duration(test.maxDurationSec)
    if test.warmupSec:
        entry["warmup"] = _duration(test.warmupSec)
    if test.maxUsers is not None:
        entry["max_users"] = test.maxUsers
    if test.scenarioId is not None:
        entry["scenario"] = test.scenarioId
    if test.thresholds:
        entry["thresholds"] = list(test.thresholds)
    if test.metadata:
        # What `--meta` writes is text; another program's value is written as its text.
        entry["metadata"] = {key: _text(value) for key, value in test.metadata.items()}
    if test.locustOptions:
        entry["locust_options"] = dict(test.locustOptions)
    if test.serverMetrics:
        entry["server_metrics"] = [
            f"{m.name}{':' + m.unit if m.unit else ''}={m.query}" for m in test.serverMetrics
        ]
        entry["source"] = test.serverMetrics[0].source
    if test.saturationCpuPct is not None:
        entry["saturation_cpu"] = test.saturationCpuPct
    floors = floor_texts(test.regressionFloors)
    if floors:
        entry["floors"] = floors
    if isinstance(test.steps, dict) and test.steps.get("users"):
        entry.update(_steps_keys(test.steps))
    return entry


def floor_texts(stored: Any) -> dict[str, str]:
    """A test's `regressionFloors` as `tests baseline --floor` takes them: `2ms`, `1%`
    (the shortest text that reads back as the stored number)."""
    from loadmgr.models.stats.catalog import metric
    from loadmgr.service.analysis.regressions import floors_from_document

    texts = {}
    for name, floor in floors_from_document(stored).items():
        if floor.of_base:
            texts[name] = _shortest(floor.of_base, 100.0) + "%"
        else:
            latency = metric(name).unit == "ms"
            texts[name] = _shortest(floor.absolute, 1.0) + ("ms" if latency else "")
    return texts


def _shortest(value: float, scale: float) -> str:
    """The shortest decimal `text` with float(text) / scale == value."""
    for digits in range(1, 18):
        text = f"{value * scale:.{digits}g}"
        if float(text) / scale == value:
            return text
    return repr(value * scale)


def _steps_keys(steps: dict[str, Any]) -> dict[str, Any]:
    from loadmgr.models.shapes import default_settle

    step_sec = int(steps["stepSec"])
    keys: dict[str, Any] = {
        "steps": [int(u) for u in steps["users"]],
        "step_duration": _duration(step_sec),
    }
    settle = steps.get("settleSec")
    if isinstance(settle, int) and settle != default_settle(step_sec):
        keys["step_settle"] = _duration(settle) if settle else "0s"
    return keys


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def schedule_entry(schedule: Schedule, names: dict[str, str]) -> dict[str, Any]:
    overrides = schedule.overrides
    entry: dict[str, Any] = {"test": names[schedule.loadTestId], "cron": schedule.cron}
    if schedule.timezone != "UTC":
        entry["timezone"] = schedule.timezone
    if overrides.users is not None:
        entry["users"] = overrides.users
    if overrides.spawnRate is not None:
        entry["spawn_rate"] = overrides.spawnRate
    if overrides.durationSeconds is not None:
        entry["duration"] = _duration(overrides.durationSeconds)
    if overrides.cluster is not None:
        entry["cluster"] = overrides.cluster
    if overrides.workers is not None:
        entry["workers"] = overrides.workers
    if overrides.thresholds:
        entry["thresholds"] = list(overrides.thresholds)
    if overrides.metadata:
        entry["metadata"] = dict(overrides.metadata)
    if overrides.locustOptions:
        entry["locust_options"] = dict(overrides.locustOptions)
    if overrides.saturationCpuPct is not None:
        entry["saturation_cpu"] = overrides.saturationCpuPct
    if schedule.graceSec != DEFAULT_GRACE_SEC:
        entry["grace"] = _duration(schedule.graceSec) if schedule.graceSec else "0s"
    if schedule.failureLimit != DEFAULT_FAILURE_LIMIT:
        entry["failure_limit"] = schedule.failureLimit
    return entry


def notification_entry(notification: Notification, names: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if notification.webhookEnv:
        entry["webhook_env"] = notification.webhookEnv
    if notification.webhookFile:
        entry["webhook_file"] = notification.webhookFile
    entry["format"] = notification.format
    entry["on"] = list(notification.on)
    if notification.testId:
        entry["test"] = names.get(notification.testId, notification.testId)
    if notification.tag:
        entry["tag"] = notification.tag
    return entry
