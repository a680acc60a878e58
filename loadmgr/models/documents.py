"""The stored documents, with the camelCase field names of the Go control plane.

Field names are the contract (docs/design.md, "Stored documents"): they are written as they
are stored, never aliased, so `model_dump()` is the document and `model_validate(doc)` reads
one back.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from loadmgr.models.foreign import GO_TEST_ONLY_KEYS, readable, readable_interval
from loadmgr.models.stored_stats import readable_stats
from loadmgr.models.thresholds import parse_threshold
from loadmgr.models.verdicts import Verdict, VerdictReason, parse_reasons

NAME_MAX = 200
DESCRIPTION_MAX = 10_000
TAG_MAX = 100
META_VALUE_MAX = 2_000
URL_MAX = 2_048
LOCUSTFILE_MAX_BYTES = 1_000_000
# The most users any test may allow (its `maxUsers`); runs are bounded lower by default,
# see loadmgr/service/definitions/limits.py.
MAX_USERS_CEILING = 10_000_000

LOCAL_CLUSTER_ID = "local"


def new_id() -> str:
    """A fresh document id (a UUID4 string, as the Go service used)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Now in UTC, truncated to milliseconds: what BSON stores, so output never drifts."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _check_http_url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    if len(value) > URL_MAX:
        raise ValueError(f"longer than {URL_MAX} characters")
    return value


def checked_name(value: str) -> str:
    """A name or id as stored: stripped, 1 to NAME_MAX characters."""
    value = value.strip()
    if not value or len(value) > NAME_MAX:
        raise ValueError(f"must have 1 to {NAME_MAX} characters")
    return value


class Document(BaseModel):
    """Base of every stored document: extra stored fields survive a read-modify-write."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    def to_document(self) -> dict[str, Any]:
        """The dict to store (BSON-ready: datetimes stay datetimes)."""
        return self.model_dump(exclude={"_id"})


class Audited(Document):
    """Audit fields: created once, updated on every change."""

    createdAt: datetime = Field(default_factory=utcnow)
    createdBy: str = ""
    updatedAt: datetime = Field(default_factory=utcnow)
    updatedBy: str = ""

    @field_validator("createdAt", "updatedAt", mode="after")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        # BSON dates come back naive or aware depending on the client; always UTC.
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class Named(Audited):
    """A document scoped to a tenant and environment."""

    id: str = Field(default_factory=new_id)
    tenantId: str | None = None
    envId: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _foreign(cls, data: Any) -> Any:
        # A test or run the Go control plane wrote (lowercase keys, integer dates) reads
        # as ours, so a shared database never makes a command fail (`db migrate` makes
        # the change for good).
        return readable(data, cls.model_fields)

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not key or key.startswith("$") or "." in key:
                raise ValueError(f"metadata key {key!r} must be non-empty, without '$' or '.'")
            # `legacy` is written by `db migrate` (another tool's values), not by a user.
            if len(item) > META_VALUE_MAX and key != "legacy":
                raise ValueError(
                    f"metadata value for {key!r} longer than {META_VALUE_MAX} characters"
                )
        return value


class LoadTest(Named):
    """A reusable test definition (collection `load_tests`)."""

    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    locustClusterId: str = LOCAL_CLUSTER_ID
    targetUrl: str
    locustfile: str = ""
    scenarioId: str | None = None
    defaultUsers: int = Field(default=10, ge=1, le=MAX_USERS_CEILING)
    defaultSpawnRate: float = Field(default=1.0, gt=0, le=1_000_000, allow_inf_nan=False)
    defaultDurationSec: int = Field(default=60, gt=0)
    maxDurationSec: int | None = Field(default=None, gt=0)
    # loadmgr's additions
    warmupSec: int = Field(default=0, ge=0)  # left out of thresholds and comparisons
    maxUsers: int | None = Field(default=None, ge=1, le=MAX_USERS_CEILING)  # None: default bound
    locustfileContent: str | None = None
    locustfileSha256: str | None = None
    thresholds: list[str] = Field(default_factory=list)
    baselineRunId: str | None = None
    version: int = 1

    @property
    def written_by_go(self) -> bool:
        """Read from a Go control plane document that `db migrate` has not converted."""
        return self.version == 0 and bool(set(self.model_extra or {}) & GO_TEST_ONLY_KEYS)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > NAME_MAX:
            raise ValueError(f"longer than {NAME_MAX} characters")
        return value

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str) -> str:
        if len(value) > DESCRIPTION_MAX:
            raise ValueError(f"longer than {DESCRIPTION_MAX} characters")
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        tags = [tag.strip() for tag in value]
        for tag in tags:
            if not tag or len(tag) > TAG_MAX:
                raise ValueError(f"each tag must have 1 to {TAG_MAX} characters")
        return list(dict.fromkeys(tags))

    @field_validator("targetUrl")
    @classmethod
    def _check_target(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("thresholds")
    @classmethod
    def _check_thresholds(cls, value: list[str]) -> list[str]:
        for expression in value:
            parse_threshold(expression)
        return value

    @model_validator(mode="after")
    def _check_durations(self) -> LoadTest:
        if self.maxDurationSec is not None and self.defaultDurationSec > self.maxDurationSec:
            raise ValueError(
                f"default duration ({self.defaultDurationSec}s) is above the maximum "
                f"({self.maxDurationSec}s)"
            )
        if self.warmupSec and self.warmupSec >= self.defaultDurationSec:
            raise ValueError(
                f"warm-up ({self.warmupSec}s) must be shorter than the default duration "
                f"({self.defaultDurationSec}s)"
            )
        return self


class RunStatus(str, Enum):
    """A run's lifecycle."""

    PENDING = "Pending"
    RUNNING = "Running"
    STOPPING = "Stopping"
    FINISHED = "Finished"
    FAILED = "Failed"
    # Written only by the Go control plane (a run stopped by a user); shown as it is
    # until `db migrate` makes it Finished with stopReason `user`.
    STOPPED = "Stopped"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.STOPPING)


class StopReason(str, Enum):
    """Why a run ended."""

    DURATION = "duration"
    USER = "user"
    THRESHOLD = "threshold"
    ERROR = "error"
    LOST = "lost"


class RequestStats(BaseModel):
    """One request's stats in a snapshot (`requestStats[]`)."""

    model_config = ConfigDict(extra="allow")

    method: str
    name: str
    numRequests: int = 0
    numFailures: int = 0
    avgResponseTimeMs: float = 0.0
    minResponseTimeMs: float = 0.0
    maxResponseTimeMs: float = 0.0
    p50ResponseMs: float | None = None
    p95ResponseMs: float | None = None
    requestsPerSec: float = 0.0
    # loadmgr's additions
    p99ResponseMs: float | None = None
    p90ResponseMs: float | None = None
    failuresPerSec: float = 0.0
    intervalRequests: int = 0
    intervalFailures: int = 0
    avgContentLength: float = 0.0
    hist: str | None = None  # the window's histogram, "ms:count,…" (plugin intervals only)


class MetricSnapshot(Document):
    """One collected interval of a run (collection `metrics_timeseries`).

    Every interval covers `windowStart`..`windowEnd` (`intervalSec` long); `totalRPS`,
    `failuresPerSec`, `errorRate`, `intervalRequests` and `intervalFailures` are that
    window's; `totalRequests` and `totalFailures` are cumulative. `percentileWindow` says
    what the latencies are: `interval` (exact, from the loadmgr plugin's histograms, kept
    in `hist`) or `rolling` (Locust's own ~10 s window for p50/p95 and cumulative p99,
    min and max, when the cluster lacks the plugin). docs/metrics.md has every field.
    """

    loadTestRunId: str
    timestamp: datetime
    tenantId: str | None = None
    envId: str | None = None
    totalRPS: float = 0.0
    totalRequests: int = 0
    totalFailures: int = 0
    errorRate: float = 0.0
    currentUsers: int = 0
    p50ResponseMs: float | None = None
    p95ResponseMs: float | None = None
    p99ResponseMs: float | None = None
    minResponseMs: float | None = None
    maxResponseMs: float | None = None
    avgResponseMs: float | None = None
    requestStats: list[RequestStats] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # loadmgr's additions
    seq: int = 0
    intervalSec: float = 0.0
    intervalRequests: int = 0
    intervalFailures: int = 0
    failuresPerSec: float = 0.0
    workerCount: int | None = None
    state: str | None = None
    windowStart: datetime | None = None
    windowEnd: datetime | None = None
    percentileWindow: str | None = None  # interval | rolling
    p90ResponseMs: float | None = None
    hist: str | None = None  # the window's histogram, "ms:count,…" (plugin intervals only)
    gap: bool = False  # covers seconds no collector saw (a take-over without the plugin)

    @model_validator(mode="before")
    @classmethod
    def _foreign(cls, data: Any) -> Any:
        # The Go control plane's interval: `totalRps`, a percentage error rate, no seq.
        return readable_interval(data)

    @field_validator("timestamp", "windowStart", "windowEnd", mode="after")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class ThresholdResult(BaseModel):
    """How one threshold fared at the end of a run."""

    expression: str
    metric: str
    scope: str | None = None
    op: str
    limit: float
    actual: float | None = None
    passed: bool


class LoadTestRun(Named):
    """One execution of a test (collection `load_test_runs`)."""

    loadTestId: str
    name: str = ""
    targetUsers: int = Field(ge=0)
    spawnRate: float = Field(gt=0, allow_inf_nan=False)
    durationSeconds: int = Field(gt=0)
    status: RunStatus = RunStatus.PENDING
    startedAt: datetime | None = None
    finishedAt: datetime | None = None
    lastMetrics: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    # loadmgr's additions
    testName: str | None = None
    locustClusterId: str = LOCAL_CLUSTER_ID
    targetUrl: str = ""
    locustfileSha256: str | None = None
    # `runs start --locustfile PATH`: the file run this once instead of the test's stored
    # copy (its path as given, and its content, which a detached collector runs).
    locustfileOverride: str | None = None
    locustfileContent: str | None = None
    stopReason: StopReason | None = None
    verdict: Verdict | None = None
    # What decided the verdict, most decisive first; empty when it passed or is null.
    verdictReasons: list[VerdictReason] = Field(default_factory=list)
    error: str | None = None
    thresholds: list[str] = Field(default_factory=list)
    thresholdResults: list[ThresholdResult] = Field(default_factory=list)
    # The comparison with the test's baseline run (`--compare-baseline`), with the limits
    # used; `baselineRunId` is the run it was compared with (the test's may change later).
    baselineChecks: list[dict[str, Any]] | None = None
    baselineRunId: str | None = None
    # The run against its test's recent history (`--check-trend`), shaped as baselineChecks
    # items (plus the run that started the regime, `changeRunId`, and the runs compared).
    trendChecks: list[dict[str, Any]] | None = None
    finalStats: dict[str, Any] | None = None
    # With a warm-up (and the plugin): the numbers after it, which thresholds, baseline
    # checks and comparisons judge; `finalStats` stays Locust's own whole-run numbers.
    judgedStats: dict[str, Any] | None = None
    # Checks asked for at the start and applied once the run has ended, by whichever
    # collector records the end: `{"baseline": {metric: fraction allowed}, "trend": {…}}`
    # (the trend's options: see loadmgr.service.analysis.trends.TrendOptions.to_document).
    requestedChecks: dict[str, Any] = Field(default_factory=dict)

    @property
    def stats_to_judge(self) -> dict[str, Any] | None:
        """The numbers this run is judged and compared on (`judgedStats`, else final)."""
        return self.judgedStats or self.finalStats
    heartbeatAt: datetime | None = None
    collector: dict[str, Any] | None = None
    locustUrl: str | None = None
    stopRequested: bool = False
    collectionMode: str | None = None  # plugin | stats: where the intervals came from
    collectorEpoch: int = 0  # fencing token: bumped by every take-over, checked by every write
    warmupSec: int = 0  # left out of thresholds, baseline checks and comparisons
    # Webhook deliveries at the run's end (name, events, at, ok, attempts, status, error);
    # null until the run's end is claimed for notifying (service/notifications/).
    notifications: list[dict[str, Any]] | None = None
    # What follows the recorded end (requested checks, the schedule's count, webhooks:
    # service/lifecycle/end.py): `pending` is written with the end, `running` once a collector
    # claimed them, `done` after. Null on runs ended before it existed.
    endSteps: str | None = None

    @field_validator("verdict", mode="before")
    @classmethod
    def _known_verdict(cls, value: Any) -> Any:
        # Another tool's `PASSED` is ours; a verdict we do not know reads as none rather
        # than making the whole run unreadable (`db migrate` recomputes it).
        if isinstance(value, str):
            value = value.strip().lower()
            return value if value in {v.value for v in Verdict} else None
        return value

    @field_validator("verdictReasons", mode="before")
    @classmethod
    def _readable_reasons(cls, value: Any) -> list[VerdictReason]:
        return parse_reasons(value)

    @field_validator("finalStats", "judgedStats", "lastMetrics", mode="before")
    @classmethod
    def _readable_stats(cls, value: Any, info: ValidationInfo) -> Any:
        # Any program may have written them: nonsense reads as unknown, never as a crash.
        return readable_stats(info.field_name or "", value)
    # With --if-busy wait: until when its start may wait for a busy cluster.
    busyWaitUntil: datetime | None = None
    # Who or what started it: {"user": NAME}, or {"schedule": ID, "slot": DATE}.
    trigger: dict[str, Any] | None = None

    @field_validator("startedAt", "finishedAt", "heartbeatAt", "busyWaitUntil", mode="after")
    @classmethod
    def _opt_as_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class ClusterAuth(BaseModel):
    """How to authenticate to a Locust master; names where secrets live, never secrets."""

    model_config = ConfigDict(extra="forbid")

    type: str = "none"  # none | header | login
    headerName: str | None = None
    secretEnv: str | None = None
    secretFile: str | None = None
    usernameEnv: str | None = None
    passwordEnv: str | None = None
    loginPath: str | None = None


class LocustCluster(Audited):
    """A registered Locust master (collection `locust_clusters`)."""

    id: str
    baseUrl: str
    description: str = ""
    auth: ClusterAuth = Field(default_factory=ClusterAuth)
    caBundle: str | None = None
    verifyTls: bool = True
    tenantId: str | None = None
    envId: str | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return checked_name(value)

    @field_validator("baseUrl")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _check_http_url(value).rstrip("/")

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str) -> str:
        if len(value) > DESCRIPTION_MAX:
            raise ValueError(f"longer than {DESCRIPTION_MAX} characters")
        return value
