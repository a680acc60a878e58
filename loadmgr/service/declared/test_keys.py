"""The one table of what a file may declare of a test, tied to the `LoadTest` model.

Every stored field of a test is either declared (the file's keys that set it, and the
kind of each) or named in `NOT_DECLARED` with the reason; a unit test enumerates the
model's fields and fails on one in neither, so a field added to `LoadTest` cannot be
silently lost by `export` → `apply`. The format (`files.TEST_KEYS`), the plan's compared
fields (`plan.TEST_FIELDS`) and export all read this table.
"""

from __future__ import annotations

# What a key holds: text, a whole number, a number, a duration (`5m`, or seconds), a list
# of texts, a table of texts, a list of whole numbers.
TEXT, WHOLE, NUMBER, DURATION, TEXTS, TABLE, WHOLES = (
    "text",
    "whole number",
    "number",
    "duration",
    "list of texts",
    "table of texts",
    "list of whole numbers",
)

# Stored field → the file's keys that set it, (key, kind) each; the first names the field
# in a plan's `~` lines.
DECLARED_TEST_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "targetUrl": (("target_url", TEXT),),
    "locustfile": (("locustfile", TEXT),),
    "locustClusterId": (("cluster", TEXT),),
    "description": (("description", TEXT),),
    "tags": (("tags", TEXTS),),
    "defaultUsers": (("users", WHOLE),),
    "defaultSpawnRate": (("spawn_rate", NUMBER),),
    "defaultDurationSec": (("duration", DURATION),),
    "maxDurationSec": (("max_duration", DURATION),),
    "warmupSec": (("warmup", DURATION),),
    "maxUsers": (("max_users", WHOLE),),
    "scenarioId": (("scenario", TEXT),),
    "thresholds": (("thresholds", TEXTS),),
    "metadata": (("metadata", TABLE),),
    "locustOptions": (("locust_options", TABLE),),
    "serverMetrics": (("server_metrics", TEXTS), ("source", TEXT)),
    "saturationCpuPct": (("saturation_cpu", NUMBER),),
    # `tests baseline --floor METRIC=VALUE`, as `{p95 = "2ms", rps = "1%"}`.
    "regressionFloors": (("floors", TABLE),),
    # `--steps 10,20,40 --step-duration 60s [--step-settle 6s]`.
    "steps": (("steps", WHOLES), ("step_duration", DURATION), ("step_settle", DURATION)),
}

# Stored fields a plan compares that no key sets directly, and how a plan names them.
COMPARED_TEST_FIELDS = {
    "locustfileSha256": "locustfile content",  # read from the declared locustfile
    "managedBy": "managed by",  # the marker apply writes
}

# Stored fields a file does not declare, and why.
NOT_DECLARED = {
    "name": "the entry's own name ([tests.NAME])",
    "id": "the database's identity of the test",
    "tenantId": "the scope apply runs in (--tenant)",
    "envId": "the scope apply runs in (--env)",
    "createdAt": "audit, written by the database's writer",
    "createdBy": "audit",
    "updatedAt": "audit",
    "updatedBy": "audit",
    "version": "the optimistic lock of concurrent updates",
    "locustfileContent": "read from the declared locustfile",
    "locustfileSha256": "read from the declared locustfile (compared as its content)",
    "locustfileBundle": "read from the declared locustfile",
    "shape": "read from the declared locustfile",
    "managedBy": "the marker apply writes: the file's name",
    "baselineRunId": "a run of this database (tests baseline)",
    "trendAcks": "a team's acknowledgements of this database's runs (tests trend --ack)",
}

# The file's key → its kind, in the table's order.
TEST_KEYS = {key: kind for keys in DECLARED_TEST_FIELDS.values() for key, kind in keys}
# Stored field → the key a plan's `~` line names it by.
TEST_FIELDS = {
    **{name: keys[0][0] for name, keys in DECLARED_TEST_FIELDS.items()},
    **COMPARED_TEST_FIELDS,
}
