"""Bringing a database's documents to the schema this loadmgr writes (`loadmgr db migrate`).

The database's version lives in `loadmgr_meta`; each step brings it one version up and is
idempotent (it recomputes what it writes from what the documents recorded), so a step run
twice, or by two processes at once, leaves the same documents. A newer loadmgr runs the
steps it finds pending on its first use of an older database (`ensure_schema`).

A schema is the whole database's: a step works on every document, whatever tenant or
environment the command that triggered it works in. It only recomputes derived fields
(a run's verdict), never what a run recorded, and leaves the audit fields alone: the
migration itself is recorded in `loadmgr_meta` (who, when, what changed).

Steps:
1. Every run that ended gets `verdict` and `verdictReasons` decided by `decide_verdict`
   from what it recorded: aborted and errored runs stop reading `passed`, a baseline
   regression or a run without any successful request reads `failed`.
2. Indexes an older loadmgr created are replaced by today's: the Go control plane's names
   where it indexes the same keys (so it can start on the database), and the uniqueness of
   `(loadTestRunId, seq)` and of a test's name in its scope limited to loadmgr's documents
   (partial indexes), so that the Go service's documents are never refused. An index is
   dropped before it is created again (the server refuses two on the same keys): for that
   moment its rule is not enforced.

Converting the Go control plane's documents is not a step: see `service/migration/go_import.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loadmgr import __version__
from loadmgr.errors import DatabaseError
from loadmgr.models import utcnow
from loadmgr.service.judging.verdicts import recompute_verdict, verdict_changes

if TYPE_CHECKING:
    from loadmgr.store import Store

PAGE = 500

# What a run's verdict is recomputed from, and the verdict as it is.
_VERDICT_INPUTS = [
    "status",
    "stopReason",
    "error",
    "thresholdResults",
    "baselineChecks",
    "trendChecks",
    "finalStats.totals",
    "verdict",
    "verdictReasons",
]


@dataclass
class StepResult:
    """What one step did."""

    version: int
    description: str
    examined: int = 0
    changed: int = 0


@dataclass
class MigrationReport:
    """What `migrate` did: from which version to which, step by step."""

    from_version: int
    to_version: int
    steps: list[StepResult] = field(default_factory=list)

    def step(self, version: int) -> StepResult:
        """What step `version` did (nothing, when it did not run)."""
        found = [s for s in self.steps if s.version == version]
        return found[0] if found else StepResult(version, "")

    @property
    def examined(self) -> int:
        return sum(step.examined for step in self.steps)

    @property
    def changed(self) -> int:
        return sum(step.changed for step in self.steps)

    def to_document(self) -> dict[str, Any]:
        return {
            "fromVersion": self.from_version,
            "toVersion": self.to_version,
            "steps": [asdict(step) for step in self.steps],
        }


def recompute_run_verdicts(store: Store) -> tuple[int, int]:
    """Step 1: every run that ended, its verdict decided again; (examined, changed)."""
    runs = store.unscoped().runs
    examined = changed = 0
    after: Any = None
    while True:
        page = runs.ended_page(after, _VERDICT_INPUTS, PAGE)
        if not page:
            return examined, changed
        updates = []
        for doc in page:
            verdict, reasons = recompute_verdict(doc)
            fields = verdict_changes(verdict, reasons)
            # Written only when it differs: a second pass writes nothing.
            if "verdict" not in doc or any(doc.get(key) != value for key, value in fields.items()):
                updates.append((doc["_id"], fields))
        examined += len(page)
        changed += runs.set_fields(updates) if updates else 0
        after = page[-1]["id"]


def replace_outdated_indexes(store: Store) -> tuple[int, int]:
    """Step 2: loadmgr's indexes as today's; (indexes examined, indexes replaced)."""
    whole = store.unscoped()
    repositories = (whole.tests, whole.runs, whole.metrics, whole.clusters)
    examined = sum(len(r.INDEXES) for r in repositories)
    return examined, sum(r.replace_outdated_indexes() for r in repositories)


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Store], tuple[int, int]]


STEPS = (
    Step(1, "runs: verdict and verdictReasons recomputed", recompute_run_verdicts),
    Step(
        2,
        "indexes: Go control plane names, uniqueness for loadmgr's documents only",
        replace_outdated_indexes,
    ),
)
SCHEMA_VERSION = STEPS[-1].version


def pending_steps(store: Store, *, rerun: bool = False) -> list[Step]:
    """The steps `migrate` would run (for `--dry-run`)."""
    current = store.meta.schema_version()
    return [step for step in STEPS if rerun or step.version > current]


def migrate(store: Store, user: str, *, rerun: bool = False) -> MigrationReport:
    """Run the steps the database has not had (every step with `rerun`); advance its version.

    Raises DatabaseError when MongoDB fails or refuses a write (a read-only user).
    """
    current = store.meta.schema_version()
    report = MigrationReport(current, max(current, SCHEMA_VERSION))
    for step in STEPS:
        if step.version <= current and not rerun:
            continue
        examined, changed = step.apply(store)
        report.steps.append(StepResult(step.version, step.description, examined, changed))
    if report.steps or current < SCHEMA_VERSION:
        store.meta.advance(
            report.to_version,
            utcnow(),
            user,
            {
                "loadmgrVersion": __version__,
                "runsExamined": report.step(1).examined,
                "runsChanged": report.step(1).changed,
                "indexesReplaced": report.step(2).changed,
            },
        )
    return report


def ensure_schema(store: Store, user: str, notify: Callable[[str], None]) -> None:
    """On a command's first use of the database: migrate it if it is older than this
    loadmgr, with one line saying so. Costs one read of `loadmgr_meta` otherwise.

    A user who may not write gets a line saying what to run instead, and the command
    goes on (reading an older database is safe; its verdicts are the old ones).
    """
    version = store.meta.schema_version()
    if version > SCHEMA_VERSION:
        notify(
            f"note: this database is at schema {version}, newer than this loadmgr knows "
            f"({SCHEMA_VERSION}); upgrade loadmgr"
        )
        return
    if version == SCHEMA_VERSION:
        return
    try:
        report = migrate(store, user)
    except DatabaseError as exc:
        notify(
            f"note: this database is at schema {version} and this loadmgr writes schema "
            f"{SCHEMA_VERSION}; it could not be upgraded ({exc.message}): run "
            "'loadmgr db migrate' as a user who may write"
        )
        return
    runs, indexes = report.step(1), report.step(2)
    if runs.examined or indexes.changed:
        done = f"recomputed the verdicts of {runs.examined} runs ({runs.changed} changed)"
        if indexes.changed:
            done += f"; replaced {indexes.changed} outdated indexes"
        notify(f"note: upgraded the database from schema {version} to {SCHEMA_VERSION}: {done}")
