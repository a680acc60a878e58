"""Webhook subscriptions (collection `notifications`): which run ends to tell, and where.

The webhook URL is a secret: a subscription stores only where to read it (an environment
variable or a file), read when a message is sent (docs/design.md, "Stored documents").
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from loadmgr.models.documents import TAG_MAX, Audited, Name, new_id

# What a run end can be: its verdict (`failed`, `inconclusive`, `error`, `aborted`), a
# regression against its baseline or trend, or a verdict other than its test's previous run's.
EVENTS = ("failed", "inconclusive", "error", "aborted", "regression", "change")
DEFAULT_EVENTS = ("failed", "inconclusive", "error", "aborted", "regression")
FORMATS = ("json", "slack")
DEFAULT_FORMAT = "json"

# A POSIX environment variable name: the reference, never the value, is stored.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_events(text: str | list[str] | None) -> list[str]:
    """`failed,change` (or repeated options) → the events, in EVENTS order; ValueError
    naming the valid ones for anything else."""
    if text is None:
        return list(DEFAULT_EVENTS)
    parts = [text] if isinstance(text, str) else list(text)
    given = {item.strip().lower() for part in parts for item in part.split(",")} - {""}
    unknown = sorted(given - set(EVENTS))
    if unknown:
        raise ValueError(
            f"unknown event {', '.join(map(repr, unknown))} (events: {', '.join(EVENTS)})"
        )
    if not given:
        raise ValueError(f"no event given (events: {', '.join(EVENTS)})")
    return [event for event in EVENTS if event in given]


class Notification(Audited):
    """A webhook told when a matching run ends."""

    id: str = Field(default_factory=new_id)
    name: Name
    tenantId: str | None = None
    envId: str | None = None
    webhookEnv: str | None = None  # the name of the variable holding the URL
    webhookFile: str | None = None  # the absolute path of the file holding the URL
    format: str = DEFAULT_FORMAT
    on: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    testId: str | None = None  # only runs of this test
    tag: str | None = None  # only runs of tests with this tag
    managedBy: str | None = None  # the file whose `loadmgr apply` made it (LoadTest's)

    @field_validator("webhookEnv")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError("must be an environment variable name (letters, digits, _)")
        return value

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in FORMATS:
            raise ValueError(f"must be one of {', '.join(FORMATS)}")
        return value

    @field_validator("on", mode="before")
    @classmethod
    def _check_on(cls, value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"must be a list of events ({', '.join(EVENTS)})")
        return parse_events(value)

    @field_validator("tag")
    @classmethod
    def _check_tag(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or len(value) > TAG_MAX:
            raise ValueError(f"must have 1 to {TAG_MAX} characters")
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> Notification:
        if bool(self.webhookEnv) == bool(self.webhookFile):
            raise ValueError("give exactly one of --webhook-env, --webhook-file")
        if self.testId and self.tag:
            raise ValueError("give --test or --tag, not both")
        return self
