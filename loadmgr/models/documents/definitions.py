"""What runs are run from: tests (`load_tests`) and Locust clusters (`locust_clusters`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loadmgr.models.documents.base import (
    LOCAL_CLUSTER_ID,
    MAX_USERS_CEILING,
    NAME_MAX,
    TAG_MAX,
    Audited,
    Description,
    Name,
    Named,
    Thresholds,
    check_http_url,
)
from loadmgr.models.documents.locustfiles import LocustfileBundle
from loadmgr.models.documents.server import ServerMetric
from loadmgr.models.foreign import GO_TEST_ONLY_KEYS


class LoadTest(Named):
    """A reusable test definition (collection `load_tests`)."""

    name: str
    description: Description = ""
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
    # A locustfile of several files (a folder, `a.py,b.py`): all of them; then
    # `locustfileContent` is None and `locustfileSha256` is the bundle's hash.
    locustfileBundle: LocustfileBundle | None = None
    # Locust's own options (`--locust-option`), handed to Locust on every run.
    locustOptions: dict[str, str] = Field(default_factory=dict)
    # The load shape its locustfile declares: {className, file, stages?} (models/shapes.py).
    shape: dict[str, Any] | None = None
    # Stepped load for its runs (`--steps`): `{users[], stepSec, settleSec}`, as a run's.
    steps: dict[str, Any] | None = None
    # Changes its team expects (`tests trend --ack`): `{runId, reason, by, at}` each.
    trendAcks: list[dict[str, Any]] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=list)
    baselineRunId: str | None = None
    # The floors of its baseline checks (`tests baseline --floor`): {metric: {absolute: x}
    # or {ofBaseline: fraction}}; a metric not named has the catalog's.
    regressionFloors: dict[str, Any] = Field(default_factory=dict)
    # Server-side metrics read for every interval of its runs (docs/server-metrics.md).
    serverMetrics: list[ServerMetric] = Field(default_factory=list)
    # The CPU % at which a load generator's worker counts as saturated (null: 90).
    saturationCpuPct: float | None = Field(default=None, ge=10, le=100, allow_inf_nan=False)
    # The name of the file whose `loadmgr apply` created or took over this test; None:
    # made by hand. Only that file's `apply --prune` deletes it.
    managedBy: str | None = None
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
        return check_http_url(value)

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

    id: Name
    baseUrl: str
    description: Description = ""
    auth: ClusterAuth = Field(default_factory=ClusterAuth)
    caBundle: str | None = None
    verifyTls: bool = True
    tenantId: str | None = None
    envId: str | None = None

    @field_validator("baseUrl")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return check_http_url(value).rstrip("/")
