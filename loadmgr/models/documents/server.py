"""Server-side metrics: where they are read from (`server_sources`: a Prometheus server)
and which ones a test or run reads (`serverMetrics`: a name, a unit, a PromQL query).

Credentials are stored by reference only (an environment variable's name, a file's path),
never as a value, as for clusters and webhooks (docs/reliability.md, "Trust model").
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from loadmgr.models.documents.base import Named, check_http_url

SERVER_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
SERVER_UNIT_MAX = 16
QUERY_MAX = 4000
SOURCE_TYPES = ("prometheus",)
# In a query, `$interval` is the window of the interval it is read for (`10s`): so
# `increase(x[$interval])` at the window's end covers exactly that window.
INTERVAL_PLACEHOLDER = "$interval"


class ServerMetric(BaseModel):
    """One server-side metric a test or run reads for each of its intervals."""

    name: str
    query: str
    source: str
    unit: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not SERVER_METRIC_NAME.fullmatch(value):
            raise ValueError(
                f"server metric name {value!r}: lower-case letters, digits and _, "
                "starting with a letter, at most 40"
            )
        return value

    @field_validator("query")
    @classmethod
    def _check_query(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > QUERY_MAX or "\x00" in value:
            raise ValueError(f"a query must have 1 to {QUERY_MAX} characters")
        return value


class ServerSource(Named):
    """A registered source of server-side metrics (collection `server_sources`); `id`
    is its name, unique in its tenant and environment."""

    type: str = "prometheus"
    baseUrl: str
    description: str = ""
    bearerTokenEnv: str | None = None
    bearerTokenFile: str | None = None
    headerName: str | None = None
    headerEnv: str | None = None
    caBundle: str | None = None
    timeoutSec: float = Field(default=5.0, gt=0, le=60)

    @field_validator("baseUrl")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return check_http_url(value)


def server_metric_key(name: str) -> str:
    """How thresholds, `--metric` and the catalog name a server metric: `server.cpu`."""
    return f"server.{name}"
