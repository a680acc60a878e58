"""What a run stores: the run (`load_test_runs`) and its intervals (`metrics_timeseries`)."""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from loadmgr.models.documents.base import LOCAL_CLUSTER_ID, Document, Named, UtcDatetime
from loadmgr.models.documents.locustfiles import LocustfileBundle
from loadmgr.models.documents.server import ServerMetric
from loadmgr.models.foreign import readable_interval
from loadmgr.models.stats.stored import readable_stats, with_server_means
from loadmgr.models.thresholds import Threshold
from loadmgr.models.verdicts import Verdict, VerdictReason, parse_reasons

_Result = TypeVar("_Result", bound="ThresholdResult")


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
    SHAPE = "shape"  # the locustfile's load shape ended the test
    LOCUSTFILE = "locustfile"  # the locustfile's own code stopped it (runner.quit())


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


_REQUEST_FIELDS = frozenset(RequestStats.model_fields)


def built_request_stats(values: dict[str, Any]) -> RequestStats:
    """A `RequestStats` of numbers the collector computed, each already of its field's
    type: what `model_construct(**values)` makes (the same fields, set, no extras) without
    its loop over every field's aliases and defaults, a fifth of building a window of 500
    requests. Anything but every field, exactly, takes `model_construct`."""
    if values.keys() != _REQUEST_FIELDS:
        return RequestStats.model_construct(**values)
    item = RequestStats.__new__(RequestStats)
    # The four attributes `model_construct` sets (pydantic 2's documented model state).
    object.__setattr__(item, "__dict__", values)
    object.__setattr__(item, "__pydantic_fields_set__", set(_REQUEST_FIELDS))
    object.__setattr__(item, "__pydantic_extra__", {})
    object.__setattr__(item, "__pydantic_private__", None)
    return item


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
    timestamp: UtcDatetime
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
    windowStart: UtcDatetime | None = None
    windowEnd: UtcDatetime | None = None
    percentileWindow: str | None = None  # interval | rolling
    p90ResponseMs: float | None = None
    hist: str | None = None  # the window's histogram, "ms:count,…" (plugin intervals only)
    # Exceptions Locust reported first in this interval (read every few seconds: it may
    # hold some raised in the interval before).
    exceptionCount: int = 0
    gap: bool = False  # covers seconds no collector saw (a take-over without the plugin)
    # Server-side metrics read for this window (docs/server-metrics.md): each name's value,
    # or its name in `serverMissing` with the reason it could not be read (never a 0).
    server: dict[str, float] = Field(default_factory=dict)
    serverMissing: dict[str, str] = Field(default_factory=dict)
    # The load generator as the window's polls saw it while the test loaded (issue 24;
    # models/stats/generator.py): {workers, cpuMaxPct, cpuAvgPct, masterCpuPct,
    # missingWorkers, memMaxBytes, saturatedSec}; null when Locust told nothing of it.
    generator: dict[str, Any] | None = None
    # A window retention merged (models/stats/downsample.py): the last seq it covers, its
    # step, and how many of the collector's intervals it holds. None: as collected.
    mergedThrough: int | None = None
    resolutionSec: float | None = None
    mergedIntervals: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _foreign(cls, data: Any) -> Any:
        # The Go control plane's interval: `totalRps`, a percentage error rate, no seq.
        return readable_interval(data)


class ThresholdResult(BaseModel):
    """How one threshold fared at the end of a run."""

    expression: str
    metric: str
    scope: str | None = None
    op: str
    limit: float
    actual: float | None = None
    passed: bool

    @classmethod
    def of(cls: type[_Result], threshold: Threshold, actual: float | None, **extra: Any) -> _Result:
        """`threshold` judged on `actual` (`extra`: a subclass's own fields)."""
        return cls(
            expression=threshold.expression,
            metric=threshold.metric,
            scope=threshold.scope,
            op=threshold.op,
            limit=threshold.limit,
            actual=actual,
            passed=threshold.passes(actual),
            **extra,
        )


class LoadTestRun(Named):
    """One execution of a test (collection `load_test_runs`)."""

    loadTestId: str
    name: str = ""
    targetUsers: int = Field(ge=0)
    spawnRate: float = Field(gt=0, allow_inf_nan=False)
    durationSeconds: int = Field(gt=0)
    status: RunStatus = RunStatus.PENDING
    startedAt: UtcDatetime | None = None
    finishedAt: UtcDatetime | None = None
    lastMetrics: dict[str, Any] = Field(default_factory=dict)
    # loadmgr's additions
    testName: str | None = None
    locustClusterId: str = LOCAL_CLUSTER_ID
    targetUrl: str = ""
    locustfileSha256: str | None = None
    # `runs start --locustfile PATH`: the file run this once instead of the test's stored
    # copy (its path as given, and its content, which a detached collector runs).
    locustfileOverride: str | None = None
    locustfileContent: str | None = None
    locustfileBundle: LocustfileBundle | None = None  # a folder given once
    # Locust's own options the run used: the test's, with `runs start --locust-option` over them.
    locustOptions: dict[str, str] = Field(default_factory=dict)
    # The load shape that drove it: {className, file, stages?} as its locustfile declares
    # it, or {className, detectedBy: "locust"} when only Locust said so. With a shape,
    # targetUsers and spawnRate are not what ran: the intervals' users are.
    shape: dict[str, Any] | None = None
    # A stepped run (`--steps`, the plugin's LoadmgrSteps shape): `{users[], stepSec,
    # settleSec}`; and, once it ended, each step's numbers without its settle time
    # (`stepWindows[]`: step, users, fromSec, toSec, rps, p50/p95/p99, errorRate, requests).
    steps: dict[str, Any] | None = None
    stepWindows: list[dict[str, Any]] | None = None
    # The exceptions its users raised (Locust's /exceptions: the most frequent, bounded;
    # service/collection/user_code.py), and how many in all.
    exceptions: list[dict[str, Any]] = Field(default_factory=list)
    exceptionCount: int = 0
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
    # Server-side metrics read for each interval (the test's, plus `runs start
    # --server-metric`), and their summaries once it ended: {name: {avg, min, max, last,
    # p95, intervals, missing, reason}}.
    serverMetrics: list[ServerMetric] = Field(default_factory=list)
    serverStats: dict[str, dict[str, Any]] | None = None
    # The load generator over the run (models/stats/generator.py, `generator_stats`): peak
    # CPU, seconds saturated of those judged, workers lost; the verdict reads it. The CPU
    # level a worker counts as saturated at (`--saturation-cpu`; null: 90).
    generatorStats: dict[str, Any] | None = None
    saturationCpuPct: float | None = None

    @property
    def stats_to_judge(self) -> dict[str, Any] | None:
        """The numbers this run is judged and compared on (`judgedStats`, else final), with
        its server metrics' means in their totals (`with_server_means`)."""
        stats: dict[str, Any] | None = with_server_means(
            self.judgedStats or self.finalStats, self.serverStats
        )
        return stats

    heartbeatAt: UtcDatetime | None = None
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
    # What happened to the cluster while the run ran, one item per change, in order:
    # {at, kind, detail}; kind `worker-lost`, `worker-joined`, `clock-ahead`, `clock-behind` or
    # `locust-restarted` (docs/design.md, "Stored documents").
    events: list[dict[str, Any]] = Field(default_factory=list)
    # What retention left of its intervals (`db prune`): {state: downsampled, resolutionSec,
    # at} or {state: dropped, at}; None: every interval as collected.
    intervalsKept: dict[str, Any] | None = None

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

    def keep_last_metrics(self, metrics: dict[str, Any]) -> None:
        """Set `lastMetrics` to the collector's own (`metrics_with_peaks`: numbers it
        computed, which the field's validators give back as they are; a test proves it)
        without validating the whole run again, as an assignment would every interval."""
        self.__dict__["lastMetrics"] = metrics
        self.__pydantic_fields_set__.add("lastMetrics")

    # With --if-busy wait: until when its start may wait for a busy cluster.
    busyWaitUntil: UtcDatetime | None = None
    # Who or what started it: {"user": NAME}, or {"schedule": ID, "slot": DATE}.
    trigger: dict[str, Any] | None = None
    # What it measured: {provider, commit, branch, pullRequest, buildUrl, job}, each only
    # when known (service/runs/ci.py); None when nothing is.
    ci: dict[str, str] | None = None

    @field_validator("ci", mode="before")
    @classmethod
    def _readable_ci(cls, value: Any) -> dict[str, str] | None:
        # Any program may have written it: what is no string reads as unknown.
        if not isinstance(value, dict):
            return None
        return {str(k): v for k, v in value.items() if isinstance(v, str)} or None
