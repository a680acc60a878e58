"""Test definitions: create, find, list, update (without losing concurrent changes), delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.models import LOCAL_CLUSTER_ID, LoadTest, RunStatus, utcnow
from loadmgr.models.documents import NAME_MAX
from loadmgr.service.definitions.limits import check_test_load
from loadmgr.service.definitions.locustfiles import (  # noqa: F401 - where callers find them
    Locustfile,
    check_python,
    locustfile_fields,
    read_locustfile,
)
from loadmgr.service.documents import by_id_or_name, new_document
from loadmgr.service.runs.options import parse_step_options
from loadmgr.service.runs.steps import steps_from_options
from loadmgr.service.validation import (
    check_list_limit,
    check_target_url,
    validation_failed,
)

if TYPE_CHECKING:
    from loadmgr.store import Store

UPDATE_ATTEMPTS = 5


def check_cluster_exists(store: Store, cluster_id: str) -> None:
    if cluster_id != LOCAL_CLUSTER_ID and store.clusters.find_by_id(cluster_id) is None:
        raise NotFound(
            f"cluster {cluster_id!r} not found{store.scope.describe()}",
            hint="register it with 'loadmgr clusters add', or use the built-in 'local'",
        )


def _bounded_tags(tags: list[str] | None) -> list[str] | None:
    from loadmgr.models.meta import TAGS_MAX

    if tags and len(set(tags)) > TAGS_MAX:
        raise ValidationFailed(f"at most {TAGS_MAX} --tag values (got {len(set(tags))})")
    return tags


@dataclass(frozen=True)
class _TestOptions:
    """The options of `tests create` and `tests update`, as typed (None: not given).

    Durations are the text given (`5m`), the locustfile a path, metadata `KEY=VALUE`
    pairs. Each subclass checks them when made, before any database is opened, into
    `fields`: the test's stored fields.
    """

    __test__ = False  # not a pytest test class, whatever its name

    name: str | None = None
    target_url: str | None = None
    locustfile: str | None = None
    cluster: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    users: int | None = None
    spawn_rate: float | None = None
    duration: str | None = None
    max_duration: str | None = None
    warmup: str | None = None
    saturation_cpu: float | None = None
    max_users: int | None = None
    scenario: str | None = None
    meta: list[str] | None = None
    thresholds: list[str] | None = None
    locust_options: list[str] | None = None
    server_metrics: list[str] | None = None  # `NAME[:UNIT]=PROMQL`, read from `source`
    source: str | None = None
    # `apply`: the locustfile's name as its file wrote it (relative to that file), stored
    # instead of the path it is read from.
    locustfile_name: str | None = None
    steps: str | None = None  # stepped load for its runs, as `runs start --steps` takes it
    step_duration: str | None = None
    step_settle: str | None = None
    fields: dict[str, Any] = field(init=False, default_factory=dict)

    def steps_over(self, stored: Any) -> dict[str, Any] | None:
        """The test's `steps` from the step options given, over `stored` (a test's)."""
        return steps_from_options(self.steps, self.step_duration, self.step_settle, stored)

    @property
    def steps_given(self) -> bool:  # each parsed on the way: a bad one is exit 2 now
        options = parse_step_options(self.steps, self.step_duration, self.step_settle)
        return any(option is not None for option in options)

    def _given_fields(self, *, with_meta: bool) -> dict[str, Any]:
        """The stored fields of the options given (the locustfile aside), parsed and
        checked; `with_meta`: the metadata too."""
        from loadmgr.service.runs.options import (
            check_locust_options,
            check_thresholds,
            optional_duration,
            optional_saturation,
            parse_metadata,
        )
        from loadmgr.service.server_metrics.definitions import parse_server_metrics

        given: dict[str, Any] = {
            "name": self.name,
            "targetUrl": self.target_url,
            "locustClusterId": self.cluster.strip() if self.cluster is not None else None,
            "description": self.description,
            "tags": _bounded_tags(self.tags) or None,
            "defaultUsers": self.users,
            "defaultSpawnRate": self.spawn_rate,
            "defaultDurationSec": optional_duration("--duration", self.duration),
            "maxDurationSec": optional_duration("--max-duration", self.max_duration),
            "warmupSec": optional_duration("--warmup", self.warmup),
            "saturationCpuPct": optional_saturation(self.saturation_cpu),
            "maxUsers": self.max_users,
            "scenarioId": self.scenario,
            "metadata": parse_metadata(self.meta) if with_meta and self.meta else None,
            "thresholds": check_thresholds(self.thresholds) or None,
            "locustOptions": check_locust_options(self.locust_options) or None,
            "serverMetrics": parse_server_metrics(self.server_metrics, self.source) or None,
        }
        return {key: value for key, value in given.items() if value is not None}


@dataclass(frozen=True)
class TestSpec(_TestOptions):
    """A new test, as `tests create` was given it; its locustfile is read when made."""

    def __post_init__(self) -> None:
        if self.name is None:
            raise ValidationFailed("missing --name", hint="e.g. --name checkout-api")
        if self.target_url is None:
            raise ValidationFailed(
                "missing --target-url", hint="e.g. --target-url https://staging.example.com"
            )
        fields = self._given_fields(with_meta=True)
        cluster_id = fields.get("locustClusterId", LOCAL_CLUSTER_ID)
        if self.locustfile is not None:
            fields.update(locustfile_fields(read_locustfile(self.locustfile, cluster_id)))
            if self.locustfile_name is not None:
                fields["locustfile"] = self.locustfile_name
        elif cluster_id == LOCAL_CLUSTER_ID:
            raise ValidationFailed(
                "missing --locustfile", hint="the local cluster needs a locustfile to run"
            )
        if self.steps_given:
            fields["steps"] = self.steps_over(None)
        self.fields.update(fields)


@dataclass(frozen=True)
class TestChanges(_TestOptions):
    """What `tests update` changes: tags and thresholds replaced or cleared, metadata
    keys merged (`metadata`), the locustfile read again (in `change_test`, which knows
    the test's cluster)."""

    clear_thresholds: bool = False
    clear_tags: bool = False
    clear_locust_options: bool = False
    clear_server_metrics: bool = False
    clear_steps: bool = False  # nothing stepped by default any more
    metadata: dict[str, str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        from loadmgr.service.runs.options import parse_metadata

        if self.clear_thresholds and self.thresholds:
            raise ValidationFailed("give --threshold or --clear-thresholds, not both")
        if self.clear_tags and self.tags:
            raise ValidationFailed("give --tag or --clear-tags, not both")
        if self.clear_locust_options and self.locust_options:
            raise ValidationFailed("give --locust-option or --clear-locust-options, not both")
        self.fields.update(self._given_fields(with_meta=False))
        if self.clear_thresholds:
            self.fields["thresholds"] = []
        if self.clear_tags:
            self.fields["tags"] = []
        if self.clear_locust_options:
            self.fields["locustOptions"] = {}
        if self.clear_server_metrics:
            if self.server_metrics:
                raise ValidationFailed("give --server-metric or --clear-server-metrics, not both")
            self.fields["serverMetrics"] = []
        if self.steps_given and self.clear_steps:  # given: merged in `change_test`
            raise ValidationFailed("give --steps or --clear-steps, not both")
        if self.clear_steps:
            self.fields["steps"] = None
        if self.meta:
            object.__setattr__(self, "metadata", parse_metadata(self.meta))


def create_test(
    store: Store, user: str, spec: TestSpec, warn: Callable[[str], None] | None = None
) -> LoadTest:
    """Validate and store a new test; the name must be free in the scope. `warn` is told
    what is stored unchecked (a server metric whose source does not answer now)."""
    test = prepare_test(store, user, spec, warn)
    store.ensure_indexes()
    return store.tests.insert(test)


def prepare_test(
    store: Store, user: str, spec: TestSpec, warn: Callable[[str], None] | None = None
) -> LoadTest:
    """The test `spec` describes, checked as `create_test` checks it, not stored (`apply`
    checks every entry of a file before it writes any)."""
    from loadmgr.service.server_metrics.definitions import check_server_metrics

    fields = dict(spec.fields)
    check_target_url("--target-url", fields.get("targetUrl"))
    test = new_document(LoadTest, store, user, fields)
    check_test_load(test, {"defaultUsers", "defaultSpawnRate", "maxUsers", "steps"})
    check_cluster_exists(store, test.locustClusterId)
    check_server_metrics(store, test.serverMetrics, warn)
    return test


def change_test(
    store: Store,
    user: str,
    ref: str,
    changes: TestChanges,
    warn: Callable[[str], None] | None = None,
) -> LoadTest:
    """Apply what `tests update` was given (see `update_test`)."""
    from loadmgr.service.server_metrics.definitions import check_server_metrics

    fields = dict(changes.fields)
    check_server_metrics(store, fields.get("serverMetrics") or [], warn)
    current = get_test(store, ref)
    if (managed_by := current.managedBy) and warn is not None:
        warn(
            f"test {ref!r} is managed by {managed_by}: the next 'loadmgr apply' of that "
            "file will undo this change (change the file instead)"
        )
    if changes.locustfile is not None:
        cluster_id = fields.get("locustClusterId") or get_test(store, ref).locustClusterId
        fields.update(locustfile_fields(read_locustfile(changes.locustfile, cluster_id)))
    if changes.steps_given:  # what is not given is the stored steps' (a conflict: exit 5)
        fields["steps"] = changes.steps_over(current.steps)
    return update_test(store, user, ref, fields, metadata=changes.metadata)


def get_test(store: Store, ref: str) -> LoadTest:
    """A test by id, else by name (unique within tenant and environment), else by a unique
    prefix of its id (8 characters or more)."""
    from loadmgr.service.refs import id_by_prefix

    try:
        return by_id_or_name(store, ref, "test", store.tests.find_by_id, store.tests.find_by_name)
    except NotFound:
        full_id = id_by_prefix(store.tests, ref, "test", store.scope.describe())
        test = store.tests.find_by_id(full_id) if full_id else None
        if test is None:
            raise NotFound(
                f"test {ref!r} not found{store.scope.describe()}", hint=_did_you_mean(store, ref)
            ) from None
        return test


def _did_you_mean(store: Store, ref: str) -> str | None:
    """`did you mean 'checkout'?`: the names in scope closest to a mistyped one."""
    from difflib import get_close_matches

    names = [str(doc.get("name")) for doc in store.tests.find_many(limit=1000)]
    matches = get_close_matches(ref, names, n=3)
    return f"did you mean {', '.join(repr(m) for m in matches)}?" if matches else None


def check_not_foreign(test: LoadTest, action: str) -> None:
    """Refuse to change or run a test the Go control plane wrote and `db migrate` has not
    converted: it has no stored locustfile and its keys are not loadmgr's, so a change
    would leave a document neither program reads whole."""
    if test.written_by_go:
        raise ValidationFailed(
            f"test {test.name!r} was written by the Go control plane and cannot be {action} "
            "as it is (no stored locustfile, Go field names)",
            hint="convert the database with 'loadmgr db migrate' (see README, "
            "'Coming from the Go control plane')",
        )


def list_tests(
    store: Store,
    *,
    tags: list[str] | None = None,
    name_contains: str | None = None,
    cluster: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    check_list_limit(limit)
    if name_contains is not None and len(name_contains) > NAME_MAX:
        return []  # no name is that long; and servers cap the size of a regex
    return store.tests.find_many(
        tags=tags, name_contains=name_contains, cluster=cluster, limit=limit
    )


def update_test(
    store: Store,
    user: str,
    ref: str,
    changes: dict[str, Any],
    *,
    metadata: dict[str, str] | None = None,
) -> LoadTest:
    """Apply `changes`; a concurrent change to other fields is kept, to the same ones → 5.

    `metadata` keys are merged into the stored metadata on every attempt, so two people
    setting different keys at once both keep theirs; the same key at once → 5.
    """
    if not changes and not metadata:
        raise ValidationFailed("nothing to update: give at least one option to change")
    check_target_url("--target-url", changes.get("targetUrl"))
    current = get_test(store, ref)
    check_not_foreign(current, "updated")
    if "locustClusterId" in changes:
        check_cluster_exists(store, changes["locustClusterId"])
    for _ in range(UPDATE_ATTEMPTS):
        before = current.model_dump()
        wanted = dict(changes)
        if metadata:
            wanted["metadata"] = {**current.metadata, **metadata}
        try:
            updated = LoadTest.model_validate({**before, **wanted})
        except ValidationError as exc:
            raise validation_failed(exc) from None
        check_test_load(updated, wanted)
        after = updated.model_dump()
        to_set = {key: after[key] for key in wanted}
        to_set.update(updatedAt=utcnow(), updatedBy=user)
        stored = store.tests.update(current.id, current.version, to_set)
        if stored is not None:
            return stored
        fresh = store.tests.find_by_id(current.id)
        if fresh is None:
            raise NotFound(f"test {ref!r} was deleted while being updated")
        fresh_doc = fresh.model_dump()
        clashing = [key for key in changes if fresh_doc.get(key) != before.get(key)]
        clashing += [
            f"metadata.{key}"
            for key in metadata or {}
            if fresh.metadata.get(key) != current.metadata.get(key)
        ]
        if clashing:
            raise Conflict(
                f"test {current.name!r} was changed by someone else "
                f"({', '.join(clashing)}) while you were updating it",
                hint="show it again and retry your update",
            )
        current = fresh  # someone changed other fields: reapply ours on fresh data
    raise Conflict(f"test {current.name!r} keeps changing; update not applied, try again")


@dataclass(frozen=True)
class DeletePreview:
    """What `tests delete --force` would remove with the test, to ask before doing it."""

    test: LoadTest
    runs: int
    schedules: int


def delete_preview(store: Store, ref: str) -> DeletePreview:
    test = get_test(store, ref)
    runs = store.runs.count_for_test(test.id)
    schedules = len(store.schedules.find_many(test_id=test.id, limit=0))
    return DeletePreview(test, runs, schedules)


@dataclass(frozen=True)
class DeleteResult:
    test: LoadTest
    runs_deleted: int
    metrics_deleted: int
    schedules_deleted: int = 0


def delete_test(store: Store, ref: str, *, force: bool) -> DeleteResult:
    """Delete a test; with runs or schedules only when `force`, which removes them too (the
    runs with their metrics, the schedules with their slots' history)."""
    test = get_test(store, ref)
    # Its runs name it under `loadtestid`, which the run queries below do not read: it
    # would go, and they would stay behind.
    check_not_foreign(test, "deleted")
    _runs_allowing_deletion(store, test, force=force)  # the usual refusal, nothing changed
    _schedules_allowing_deletion(store, test, force=force)
    # A `runs start` of this test may be recording its run right now. It inserts its run
    # and then checks that the test still exists; deleting does the reverse: remove the
    # test, then look for runs. Whichever of the two comes second sees the other's write,
    # so a run never outlives its test: the start gives up (and removes its run), or the
    # test is put back here.
    stored = store.tests.take(test.id)
    if stored is None:
        raise NotFound(f"test {ref!r} not found{store.scope.describe()}")
    try:
        run_ids = _runs_allowing_deletion(store, test, force=force)
        schedule_ids = _schedules_allowing_deletion(store, test, force=force)
    except Conflict:
        store.tests.restore(stored)
        raise
    metrics_deleted = store.metrics.delete_for_runs(run_ids)
    runs_deleted = store.runs.delete_for_test(test.id)
    for schedule_id in schedule_ids:
        store.schedules.delete(schedule_id)
        store.schedule_slots.delete_all(schedule_id)
    return DeleteResult(test, runs_deleted, metrics_deleted, len(schedule_ids))


def _schedules_allowing_deletion(store: Store, test: LoadTest, *, force: bool) -> list[str]:
    """The ids of the test's schedules; Conflict for any without `force` (left behind, each
    slot of theirs would record `error` until they paused)."""
    import shlex

    schedules = store.schedules.find_many(test_id=test.id, limit=0)
    if schedules and not force:
        names = [str(s.get("name")) for s in schedules]
        name = shlex.quote(names[0]) if len(names) == 1 else "NAME"
        raise Conflict(
            f"test {test.name!r} has {len(names)} schedule(s): {', '.join(map(repr, names))}",
            hint=f"loadmgr schedules remove {name} (or --force: delete them with the test)",
        )
    return [str(s["id"]) for s in schedules]


def _runs_allowing_deletion(store: Store, test: LoadTest, *, force: bool) -> list[str]:
    """The ids of the test's runs; Conflict while one is active, or any without `force`."""
    run_ids = store.runs.ids_for_test(test.id)
    if run_ids and not force:
        raise Conflict(
            f"test {test.name!r} has {len(run_ids)} run(s)",
            hint="use --force to delete it with its runs and their metrics",
        )
    active = store.runs.find_many(
        test_id=test.id, statuses=[s.value for s in RunStatus if s.is_active], limit=1
    )
    if active:
        raise Conflict(
            f"test {test.name!r} has a run in progress ({active[0]['id']})",
            hint="stop it first with 'loadmgr runs stop'",
        )
    return run_ids
