"""Turning pydantic's validation errors into one short line a user can act on."""

from __future__ import annotations

from pydantic import ValidationError

from loadmgr.errors import ValidationFailed

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
    "metadata": "--meta",
    "thresholds": "--threshold",
    "targetUsers": "--users",
    "spawnRate": "--spawn-rate",
    "durationSeconds": "--duration",
    "baseUrl": "--url",
    "id": "ID",
}


def validation_failed(exc: ValidationError) -> ValidationFailed:
    """One `invalid --users: …; invalid --name: …` line for every field error."""
    parts = []
    for error in exc.errors():
        location = [str(p) for p in error["loc"]]
        field = OPTION_NAMES.get(location[0], location[0]) if location else "value"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"invalid {field}: {message}" if location else message)
    return ValidationFailed("; ".join(parts))
