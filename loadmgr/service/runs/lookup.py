"""Finding runs: one by id or prefix, many by test, status, verdict, tags and age."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models import (
    LoadTestRun,
    RunStatus,
    Verdict,
)
from loadmgr.service.definitions.tests import get_test
from loadmgr.service.runs.lease import is_stale
from loadmgr.service.validation import check_list_limit

if TYPE_CHECKING:
    from loadmgr.store import Store


def get_run(store: Store, run_id: str) -> LoadTestRun:
    """A run by id, else by a unique prefix of its id (8 characters or more)."""
    from loadmgr.service.refs import id_by_prefix, too_short_hint

    run = store.runs.find_by_id(run_id)
    if run is None:
        full_id = id_by_prefix(store.runs, run_id, "run", store.scope.describe())
        run = store.runs.find_by_id(full_id) if full_id else None
    if run is None:
        raise NotFound(
            f"run {run_id!r} not found{store.scope.describe()}", hint=too_short_hint(run_id)
        )
    return run


def list_runs(
    store: Store,
    *,
    test_ref: str | None = None,
    statuses: list[str] | None = None,
    verdicts: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 50,
    tags: list[str] | None = None,
    branch: str | None = None,
    commit: str | None = None,
) -> list[dict[str, Any]]:
    """Runs, newest first, each with `stale` computed.

    `verdicts`: passed, failed, inconclusive, aborted, error, or none (runs without a verdict).
    `tags`: only runs of tests that have every one of these tags (as they are now).
    `branch`, `commit`: only runs that measured that branch, a commit starting so (`ci`).
    """
    from loadmgr.service.runs.ci import check_branch, check_commit_prefix

    check_list_limit(limit)
    branch = check_branch("--branch", branch) if branch is not None else None
    commit = check_commit_prefix(commit) if commit is not None else None
    valid = [s.value for s in RunStatus]
    normalized = []
    for status in statuses or []:
        match = next((v for v in valid if v.lower() == status.strip().lower()), None)
        if match is None:
            raise ValidationFailed(f"invalid --status {status!r} (one of {', '.join(valid)})")
        normalized.append(match)
    wanted = [parse_verdict_filter(verdict) for verdict in verdicts or []]
    test_id = get_test(store, test_ref).id if test_ref is not None else None
    tagged = None
    if tags:
        tagged = [str(t["id"]) for t in store.tests.find_many(tags=tags, limit=0) if t.get("id")]
    runs = store.runs.find_many(
        test_id=test_id,
        statuses=normalized,
        verdicts=wanted,
        since=since,
        limit=limit,
        test_ids=tagged,
        branch=branch,
        commit=commit,
    )
    now = store.server_now()
    for run in runs:
        run["stale"] = is_stale(run, now)
    return runs


VERDICT_FILTERS = (*(v.value for v in Verdict), "none")


def parse_verdict_filter(text: str) -> str | None:
    """`--verdict`: a verdict's value, or None for `none` (runs without one)."""
    cleaned = text.strip().lower()
    if cleaned not in VERDICT_FILTERS:
        raise ValidationFailed(
            f"invalid --verdict {text!r} (one of {', '.join(VERDICT_FILTERS)})"
        )
    return None if cleaned == "none" else cleaned


def since_cutoff(text: str) -> datetime:
    """`--since`: a duration back from now (`2h`, `7d`) or an ISO date."""
    from loadmgr.models import parse_duration

    cleaned = text.strip().lower()
    if cleaned.endswith("d") and cleaned[:-1].isdigit():
        try:
            return datetime.now(timezone.utc) - timedelta(days=int(cleaned[:-1]))
        except OverflowError:  # further back than year 1, or than timedelta can count
            raise ValidationFailed(
                f"invalid --since {text!r}: further back than dates go", hint="e.g. 7d or 2h"
            ) from None
    try:
        return datetime.now(timezone.utc) - timedelta(seconds=parse_duration(cleaned))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"invalid --since {text!r} (a duration back from now like 2h or 7d, "
            "or an ISO date like 2026-11-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
