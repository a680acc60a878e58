"""Turning pydantic's validation errors into one short line a user can act on."""

from __future__ import annotations

from pydantic import ValidationError

from loadmgr.errors import ValidationFailed
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
}


# Far beyond any listing anyone reads, and well inside the 8-byte integer MongoDB takes.
MAX_LIST_LIMIT = 1_000_000_000


def check_list_limit(limit: int) -> None:
    """`--limit` of a list: 0 (all) up to MAX_LIST_LIMIT."""
    if not 0 <= limit <= MAX_LIST_LIMIT:
        raise ValidationFailed(
            f"invalid --limit: {limit} (0 for all, else at most {MAX_LIST_LIMIT:,})"
        )


def validation_failed(
    exc: ValidationError, names: dict[str, str] | None = None
) -> ValidationFailed:
    """One `invalid --users: …; invalid --name: …` line for every field error (`names`:
    field → option, where a command's differ from OPTION_NAMES)."""
    names = {**OPTION_NAMES, **(names or {})}
    parts = []
    for error in exc.errors():
        location = [str(p) for p in error["loc"]]
        field = names.get(location[0], location[0]) if location else "value"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"invalid {field}: {message}" if location else message)
    return ValidationFailed("; ".join(parts))


def refuse_url_credentials(option: str, url: object) -> None:
    """Refuse `user:password@` in a URL we would store: it would be shown in clear.

    Tests, runs, reports and cluster listings all print their URLs; a secret has no
    place in one (DESIGN §1: secrets are stored by reference only).
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
