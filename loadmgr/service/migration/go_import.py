"""Converting the Go control plane's documents to loadmgr's, in place (`db migrate`).

Not a numbered schema step: a newer loadmgr upgrades its own schema by itself on first use,
but converting the Go service's documents would break that service if it still runs on the
database, so only an explicit `loadmgr db migrate` does it. Documents are recognised by
their shape, so a second run finds nothing to do, and a run stopped half-way resumes.

The rules (README, "Coming from the Go control plane"):
- tests and runs: loadmgr's camelCase keys, BSON dates; `tenantId` from the account id
  (`--tenant-from org|project` for the others), `envId` from `envid`; `Stopped` becomes
  `Finished` with `stopReason: user`; a run gets its test's name, target and cluster, and a
  verdict decided from what it recorded;
- a test's latest script revision becomes its stored locustfile, with its sha256 (the
  `script_revisions` collection itself is left as it is: loadmgr has no revisions);
- intervals: `seq` 1, 2, 3… by time within their run, `totalRPS` from `totalRps`,
  `errorRate` a fraction instead of a percentage, latencies stored as 0.0 (unknown) null;
- `metadata` keeps its values as they are (any JSON value); what has no loadmgr field goes
  to `metadata.legacy`, as JSON text (with a metadata key loadmgr cannot store);
- a run without a fixed duration (`durationseconds: null`) gets how long it ran, else its
  test's default duration; `null` is kept in `metadata.legacy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, MetricSnapshot
from loadmgr.models.foreign import TENANT_SOURCES, convert_interval, convert_run, convert_test
from loadmgr.service.judging.verdicts import recompute_verdict, verdict_changes
from loadmgr.service.validation import check_target_url
from loadmgr.store.foreign import GO_INTERVAL, GO_SHAPED

if TYPE_CHECKING:
    from loadmgr.store import Store
    from loadmgr.store.foreign import ForeignDocuments

Notify = Callable[[str], None]
# (collection, documents done, documents to do): for a progress bar.
Progress = Callable[[str, int, int], None]


def _no_progress(_collection: str, _done: int, _total: int) -> None:
    pass


WRITE_BATCH = 1000


@dataclass
class CollectionResult:
    """What the import did (or would do) to one collection."""

    collection: str
    examined: int = 0
    converted: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_document(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportReport:
    dry_run: bool
    tenant_from: str
    collections: list[CollectionResult] = field(default_factory=list)

    @property
    def converted(self) -> int:
        return sum(c.converted for c in self.collections)

    def to_document(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "tenantFrom": self.tenant_from,
            "converted": self.converted,
            "collections": [c.to_document() for c in self.collections],
        }


@dataclass(frozen=True)
class _Pass:
    """What converting one collection needs: the documents, the import's options, where
    to say what was done, and its progress."""

    foreign: ForeignDocuments
    tenant_from: str
    dry_run: bool
    notify: Notify
    verb: str  # "converted", or "would convert" in a dry run
    tick: Callable[[int], None]

    def store(
        self,
        result: CollectionResult,
        model: type[LoadTest] | type[LoadTestRun],
        converted: dict[str, Any],
        doc_id: str,
        label: str,
    ) -> bool:
        """Check a converted test or run and (unless a dry run) store it in place of the
        Go document; False, with the reason kept in the summary, when it is skipped."""
        why = _unreadable(model, converted)
        if why is None and model is LoadTest:
            why = _unrunnable(converted)
        if why is None and not self.dry_run:
            why = self.foreign.replace_one(result.collection, converted)
        if why is not None:
            result.skipped.append({"id": doc_id, "reason": why})
            self.notify(f"skipped {label}: {why}")
            return False
        result.converted += 1
        return True


def _unrunnable(test: dict[str, Any]) -> str | None:
    """Why a converted test could never be run or shown safely (None: it can): its target
    is checked as `tests create` checks one (the rule a run's /swarm checks its host with,
    no credentials), so `db migrate` stores no test that every run of it would refuse. A
    run is history and keeps its target as it was."""
    try:
        check_target_url("target URL", test.get("targetUrl"))
    except ValidationFailed as exc:
        return exc.message
    return None


def check_tenant_from(tenant_from: str) -> None:
    """Refuse an unknown `--tenant-from` before anything is migrated or copied."""
    if tenant_from not in TENANT_SOURCES:
        raise ValidationFailed(
            f"invalid --tenant-from {tenant_from!r} (one of {', '.join(TENANT_SOURCES)})"
        )


def import_go_documents(
    store: Store,
    *,
    tenant_from: str = "account",
    dry_run: bool = False,
    notify: Callable[[str], None] = lambda _line: None,
    progress: Progress = _no_progress,
) -> ImportReport:
    """Convert every Go document of the database; with `dry_run`, only say what would be."""
    check_tenant_from(tenant_from)
    foreign = store.foreign()
    report = ImportReport(dry_run, tenant_from)
    verb = "would convert" if dry_run else "converted"
    for name, convert, query in (
        ("load_tests", _tests, GO_SHAPED),
        ("load_test_runs", _runs, GO_SHAPED),
        ("metrics_timeseries", _intervals, GO_INTERVAL),
    ):
        total = foreign.count(name, query)
        progress(name, 0, total)

        def tick(done: int, name: str = name, total: int = total) -> None:
            progress(name, min(done, total), total)

        result = convert(_Pass(foreign, tenant_from, dry_run, notify, verb, tick))
        progress(name, total, total)
        report.collections.append(result)
    revisions = CollectionResult("script_revisions", foreign.count("script_revisions"))
    report.collections.append(revisions)
    return report


def _tests(p: _Pass) -> CollectionResult:
    result = CollectionResult("load_tests")
    for doc in p.foreign.go_documents("load_tests"):
        result.examined += 1
        test_id = str(doc.get("id") or "")
        converted = convert_test(
            doc, LoadTest.model_fields, p.tenant_from, p.foreign.latest_revision(test_id)
        )
        label = f"test {doc.get('name')!r} ({test_id})"
        if p.store(result, LoadTest, converted, test_id, label):
            p.notify(f"{p.verb} test {converted.get('name')!r} ({test_id})")
            p.tick(result.examined)
    return result


def _runs(p: _Pass) -> CollectionResult:
    result = CollectionResult("load_test_runs")
    tests = p.foreign.test_summaries()
    for doc in p.foreign.go_documents("load_test_runs"):
        result.examined += 1
        run_id = str(doc.get("id") or "")
        converted = convert_run(doc, LoadTestRun.model_fields, p.tenant_from)
        test = tests.get(str(converted.get("loadTestId") or ""), {})
        converted.setdefault("testName", test.get("name"))
        converted.setdefault("targetUrl", test.get("targetUrl") or test.get("targeturl") or "")
        cluster = test.get("locustClusterId") or test.get("locustclusterid")
        if cluster:
            converted.setdefault("locustClusterId", cluster)
        if converted.get("durationSeconds") is None:
            # No fixed duration and never ran to an end: the duration its test plans.
            planned = test.get("defaultDurationSec") or test.get("defaultdurationsec")
            converted["durationSeconds"] = planned
        verdict, reasons = recompute_verdict(converted)
        converted.update(verdict_changes(verdict, reasons))
        label = f"run {doc.get('name')!r} ({run_id})"
        if p.store(result, LoadTestRun, converted, run_id, label):
            status = converted["status"]
            p.notify(f"{p.verb} run {converted.get('name')!r} ({run_id}), status {status}")
            p.tick(result.examined)
    return result


def _intervals(p: _Pass) -> CollectionResult:
    """Run by run, streamed in time order and written in batches: memory stays flat
    whatever the number of intervals."""
    result = CollectionResult("metrics_timeseries")
    for run_id in p.foreign.runs_with_go_intervals():
        batch: list[dict[str, Any]] = []
        converted_here = 0
        for seq, doc in enumerate(p.foreign.intervals_by_time(run_id), 1):
            if "seq" in doc or "totalRps" not in doc:
                continue  # already loadmgr's (numbered by the same order)
            result.examined += 1
            converted = convert_interval(doc, seq, p.tenant_from)
            # Checked as loadmgr reads an interval: one it could not read (a string for a
            # number) is left as it is, with the reason, as a test or run would be.
            why = _unreadable(MetricSnapshot, converted)
            if why is not None:
                result.skipped.append({"id": str(doc.get("_id")), "reason": why})
                p.notify(f"skipped interval {doc.get('_id')} of run {run_id}: {why}")
                continue
            batch.append(converted)
            if len(batch) >= WRITE_BATCH:
                converted_here += len(batch) if p.dry_run else p.foreign.replace_intervals(batch)
                batch = []
                p.tick(result.examined)
        converted_here += len(batch) if p.dry_run else p.foreign.replace_intervals(batch)
        result.converted += converted_here
        p.notify(f"{p.verb} {converted_here} intervals of run {run_id}")
    return result


def _unreadable(model: Any, doc: dict[str, Any]) -> str | None:
    """Why loadmgr could not read `doc` once converted (it is then left as it is)."""
    from pydantic import ValidationError

    try:
        model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg')}"
    return None
