"""`db retention set/list/remove`: the policies `db prune` applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models.documents.base import TAG_MAX
from loadmgr.models.documents.retention import (
    MAX_DOWNSAMPLE_SEC,
    MIN_DOWNSAMPLE_SEC,
    RetentionPolicy,
    Rules,
    check_order,
    format_age,
    parse_age,
)
from loadmgr.service.documents import audit_stamp

if TYPE_CHECKING:
    from loadmgr.store import Store


@dataclass(frozen=True)
class RetentionSpec:
    """What `db retention set` was given; checked when made (a bad age exits 2 before
    the database is opened)."""

    keep_detail: str
    test: str | None = None
    tag: str | None = None
    downsample: str | None = None
    drop_intervals_after: str | None = None
    drop_runs_after: str | None = None

    def __post_init__(self) -> None:
        if self.test and self.tag:
            raise ValidationFailed("give --test or --tag, not both")
        if self.tag is not None and not 0 < len(self.tag.strip()) <= TAG_MAX:
            raise ValidationFailed(f"invalid --tag {self.tag!r}: 1 to {TAG_MAX} characters")
        step = self.rules().downsample
        if step is not None and not MIN_DOWNSAMPLE_SEC <= step <= MAX_DOWNSAMPLE_SEC:
            raise ValidationFailed(
                f"invalid --downsample {self.downsample!r}: from "
                f"{format_age(MIN_DOWNSAMPLE_SEC)} to {format_age(MAX_DOWNSAMPLE_SEC)}"
            )
        try:
            check_order(self.rules())
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None

    def rules(self) -> Rules:
        def age(option: str, text: str | None) -> int | None:
            if text is None:
                return None
            try:
                return parse_age(text, option)
            except ValueError as exc:
                raise ValidationFailed(str(exc)) from None

        return Rules(
            keep_detail=age("--keep-detail", self.keep_detail) or 0,
            downsample=age("--downsample", self.downsample),
            drop_intervals_after=age("--drop-intervals-after", self.drop_intervals_after),
            drop_runs_after=age("--drop-runs-after", self.drop_runs_after),
        )


def set_policy(store: Store, user: str, spec: RetentionSpec) -> dict[str, Any]:
    """Store the policy of a target (a test, a tag, all), replacing the one it had."""
    fields: dict[str, Any] = {"name": "all"}
    if spec.test:
        from loadmgr.service.definitions.tests import get_test

        test = get_test(store, spec.test)
        fields = {"name": f"test:{test.id}", "testId": test.id, "testName": test.name}
    elif spec.tag:
        fields = {"name": f"tag:{spec.tag.strip()}", "tag": spec.tag.strip()}
    rules = spec.rules()
    policy = RetentionPolicy(
        **fields,
        **store.scope.stamp(),
        **audit_stamp(user),
        keepDetailSec=rules.keep_detail,
        downsampleSec=rules.downsample,
        dropIntervalsAfterSec=rules.drop_intervals_after,
        dropRunsAfterSec=rules.drop_runs_after,
    )
    store.retention.ensure_indexes()
    return shown(store.retention.put(policy))


def list_policies(store: Store) -> list[dict[str, Any]]:
    return [shown(policy) for policy in store.retention.all()]


def remove_policy(store: Store, test: str | None, tag: str | None) -> str:
    """Remove a target's policy; its name. NotFound when the target has none."""
    if test and tag:
        raise ValidationFailed("give --test or --tag, not both")
    name = "all"
    if test:
        from loadmgr.service.definitions.tests import get_test

        name = f"test:{get_test(store, test).id}"
    elif tag:
        name = f"tag:{tag.strip()}"
    if not store.retention.remove(name):
        raise NotFound(f"no retention policy for {name}", hint="see 'loadmgr db retention list'")
    return name


def shown(policy: RetentionPolicy) -> dict[str, Any]:
    """A policy as listed: its target and each age as written (`30d`, `-`: never)."""
    extra = policy.model_extra or {}
    target = "all"
    if policy.testId:
        target = f"test:{extra.get('testName') or policy.testId}"
    elif policy.tag:
        target = f"tag:{policy.tag}"
    return {
        "id": policy.id,
        "target": target,
        "keepDetail": format_age(policy.keepDetailSec),
        "downsample": format_age(policy.downsampleSec),
        "dropIntervalsAfter": format_age(policy.dropIntervalsAfterSec),
        "dropRunsAfter": format_age(policy.dropRunsAfterSec),
        "updatedAt": policy.updatedAt,
        "updatedBy": policy.updatedBy,
    }
