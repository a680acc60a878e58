"""What every stored document shares: its base classes, limits, ids and dates.

Field names are the contract shared with the Go control plane: they are written as they
are stored, never aliased, so `model_dump()` is the document and `model_validate(doc)`
reads one back.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from loadmgr.models.foreign import readable
from loadmgr.models.meta import metadata_refusal
from loadmgr.models.thresholds import parse_threshold

NAME_MAX = 200
DESCRIPTION_MAX = 10_000
TAG_MAX = 100
URL_MAX = 2_048
LOCUSTFILE_MAX_BYTES = 1_000_000
# The most users any test may allow (its `maxUsers`); runs are bounded lower by default,
# see loadmgr/service/definitions/limits.py.
MAX_USERS_CEILING = 10_000_000

LOCAL_CLUSTER_ID = "local"
# Worker processes of a local cluster: a machine runs a few per core, and a number beyond
# this (stored by any writer of the database, run by whichever machine ticks) would only
# exhaust the machine.
LOCAL_WORKERS_MAX = 256


def new_id() -> str:
    """A fresh document id (a UUID4 string, as the Go service used)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Now in UTC, truncated to milliseconds: what BSON stores, so output never drifts."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """A date in UTC: BSON dates come back naive or aware depending on the client."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


# A date as read: in UTC (`as_utc`), however the client gave it back.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def check_http_url(value: str) -> str:
    """An http(s) URL as stored: stripped, at most URL_MAX characters."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    if len(value) > URL_MAX:
        raise ValueError(f"longer than {URL_MAX} characters")
    return value


# What the host a run's /swarm sends may not hold: `<` and `>`, which Locust's /swarm
# removes from it (locust/web.py), and what no URL carries unescaped: blanks, control
# characters, bidirectional and zero-width marks.
_NOT_IN_A_TARGET = re.compile(
    r"[<>\s\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069]"
)


def target_url_refusal(url: str) -> str | None:
    """Why `url` cannot be a load target (None: it can). The one rule of `tests create`
    and `update` (`--target-url`), `clusters add --url`, and of the host a run's /swarm
    sends, so that a run never refuses a URL its test was accepted with. Blanks around it
    are ignored, as when stored."""
    value = url.strip()
    try:
        check_http_url(value)
    except ValueError as exc:
        return str(exc)
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no port
    except ValueError:
        return f"its port is not a number from 0 to 65535: {value!r}"
    bad = _NOT_IN_A_TARGET.search(value)
    if bad is not None:
        return f"holds {bad.group()!r}, which Locust would strip or no request can carry"
    if not parts.hostname:
        return f"names no host: {value!r}"
    return None


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

    createdAt: UtcDatetime = Field(default_factory=utcnow)
    createdBy: str = ""
    updatedAt: UtcDatetime = Field(default_factory=utcnow)
    updatedBy: str = ""


class Named(Audited):
    """A document scoped to a tenant and environment."""

    id: str = Field(default_factory=new_id)
    tenantId: str | None = None
    envId: str | None = None
    # Any JSON value: what `--meta k=v` writes is a string, but the Go control plane's
    # metadata is a free map (numbers, lists, objects) and a shared database holds both.
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _foreign(cls, data: Any) -> Any:
        # A test or run the Go control plane wrote (lowercase keys, integer dates) reads
        # as ours, so a shared database never makes a command fail (`db migrate` makes
        # the change for good).
        return readable(data, cls.model_fields)

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        for key, item in value.items():
            why = metadata_refusal(key, item)
            if why:
                raise ValueError(why)
        return value


def _checked_thresholds(value: list[str]) -> list[str]:
    for expression in value:
        parse_threshold(expression)
    return value


# A test's or a schedule's thresholds: each one must parse (`p95<500ms`).
Thresholds = Annotated[list[str], AfterValidator(_checked_thresholds)]
# A schedule's, a subscription's or a cluster's name: see checked_name.
Name = Annotated[str, AfterValidator(checked_name)]


def _checked_description(value: str) -> str:
    if len(value) > DESCRIPTION_MAX:
        raise ValueError(f"longer than {DESCRIPTION_MAX} characters")
    return value


# A test's or a cluster's description.
Description = Annotated[str, AfterValidator(_checked_description)]
