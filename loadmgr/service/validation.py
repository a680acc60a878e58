"""Turning pydantic's validation errors into one short line a user can act on."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from loadmgr.errors import ValidationFailed
from loadmgr.models.documents.base import target_url_refusal
from loadmgr.uris import url_has_credentials

# Stored field → the option a user types, so messages speak the CLI's language.
OPTION_NAMES = {
    "name": "--name",
    "description": "--description",
    "tags": "--tag",
    "targetUrl": "--target-url",
    "locustClusterId": "--cluster",
    "defaultUsers": "--users",
    "defaultSpawnRate": "--spawn-rate",
    "defaultDurationSec": "--duration",
    "maxDurationSec": "--max-duration",
    "maxUsers": "--max-users",
    "metadata": "--meta",
    "thresholds": "--threshold",
    "targetUsers": "--users",
    "spawnRate": "--spawn-rate",
    "durationSeconds": "--duration",
    "baseUrl": "--url",
    "id": "ID",
    # schedules and their overrides
    "users": "--users",
    "workers": "--workers",
    "cluster": "--cluster",
    "cron": "--cron",
    "timezone": "--timezone",
    "graceSec": "--grace",
    "failureLimit": "--failure-limit",
}


# Far beyond any listing anyone reads, and well inside the 8-byte integer MongoDB takes.
MAX_LIST_LIMIT = 1_000_000_000


def check_list_limit(limit: int) -> None:
    """`--limit` of a list: 0 (all) up to MAX_LIST_LIMIT."""
    if not 0 <= limit <= MAX_LIST_LIMIT:
        raise ValidationFailed(
            f"invalid --limit: {limit} (0 for all, else at most {MAX_LIST_LIMIT:,})"
        )


# pydantic's sentences (also what Typer says of a bad number) → loadmgr's words.
_PLAIN_WORDS = (
    (r"Input should be greater than or equal to (\S+)", r"must be at least \1"),
    (r"Input should be greater than (\S+)", r"must be more than \1"),
    (r"Input should be less than or equal to (\S+)", r"must be at most \1"),
    (r"Input should be less than (\S+)", r"must be less than \1"),
    (r"Input should be a finite number", "must be a finite number"),
    (r"Input should be a valid integer.*", "must be a whole number"),
    (r"Input should be a valid number.*", "must be a number"),
    (r"Input should be a valid boolean.*", "must be true or false"),
    (r"String should have at least 1 character", "must not be empty"),
    (r"String should have at least (\d+) characters", r"must be at least \1 characters long"),
    (r"String should have at most (\d+) characters", r"must be at most \1 characters long"),
    (r"Field required", "is required"),
)
_NO_VALUE = object()


def option_error(option: str, message: str, value: Any = _NO_VALUE) -> str:
    """A validation message about one option in loadmgr's words: `--users must be at
    least 1 (got 0)` for pydantic's `Input should be greater than or equal to 1`; other
    messages (loadmgr's own checks) as `invalid --users: …`."""
    message = message.removeprefix("Value error, ")
    for pattern, words in _PLAIN_WORDS:
        match = re.fullmatch(pattern, message.strip().rstrip("."))
        if match is not None:
            got = "" if value is _NO_VALUE or value is None else f" (got {_shown(value)})"
            return f"{option} {match.expand(words)}{got}"
    # "invalid --duration: duration '5x' …", not "invalid --duration: invalid duration …".
    return f"invalid {option}: {message.removeprefix('invalid ')}"


def duration_option(option: str, text: str) -> int:
    """`parse_duration` for an option: a bad value is exit 2 naming the option."""
    from loadmgr.models import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValidationFailed(option_error(option, str(exc))) from None


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validation_failed(
    exc: ValidationError, names: dict[str, str] | None = None
) -> ValidationFailed:
    """One `--users must be at least 1 (got 0); invalid --name: …` line for every field
    error, each named by the option a user types (`names`: field → option, where a
    command's differ from OPTION_NAMES)."""
    names = {**OPTION_NAMES, **(names or {})}
    parts = []
    for error in exc.errors():
        location = [str(p) for p in error["loc"]]
        if not location:
            parts.append(error["msg"].removeprefix("Value error, "))
            continue
        field = names.get(location[0], location[0])
        parts.append(option_error(field, error["msg"], error.get("input", _NO_VALUE)))
    return ValidationFailed("; ".join(parts))


def check_target_url(option: str, url: object) -> None:
    """A URL a test or a cluster is given (`--target-url`, `--url`): no credentials, and
    the rule a run's /swarm checks its host with (`target_url_refusal`), so a test that
    was accepted is never refused when it runs."""
    if not isinstance(url, str):
        return
    refuse_url_credentials(option, url)
    why = target_url_refusal(url)
    if why is not None:
        raise ValidationFailed(f"invalid {option}: {why}")


def refuse_url_credentials(option: str, url: object) -> None:
    """Refuse `user:password@` in a URL we would store: it would be shown in clear.

    Tests, runs, reports and cluster listings all print their URLs; a secret has no
    place in one (docs/design.md, "Stored documents": secrets are stored by reference only).
    """
    if not isinstance(url, str) or not url_has_credentials(url):
        return
    if option == "--url":
        hint = (
            "register the cluster with its header or login authentication instead: "
            "--header-name NAME --header-env VAR (or --header-file), or "
            "--login-user-env VAR --login-password-env VAR"
        )
    else:
        hint = (
            "let the locustfile authenticate to the target (e.g. with a secret from an "
            "environment variable); a Locust cluster's own login goes in 'clusters add' "
            "(--header-env, --login-user-env / --login-password-env)"
        )
    raise ValidationFailed(
        f"invalid {option}: a URL with a user name or password (user:password@) would be "
        "stored and shown in clear",
        hint=hint,
    )
