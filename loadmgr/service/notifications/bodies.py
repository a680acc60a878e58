"""What a notification says, by format: a registry of body builders, `json` and `slack` built in.

docs/notifications.md documents every key of the JSON body (`schema` names its version);
the Slack message says the same for people. Another format is one `register_body` call,
the same the built-ins go through.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTestRun, RunStatus, StopReason, utcnow
from loadmgr.models.formatting import format_count, format_ms, format_percent, format_rps
from loadmgr.models.verdicts import ReasonKind, Verdict, VerdictReason, explain

SCHEMA = "loadmgr.notification/v1"
REASONS_SHOWN_MAX = 10
SLACK_TEXT_MAX = 2_900  # Slack refuses a section text over 3,000 characters

_ICONS = {
    "passed": ":white_check_mark:",
    "failed": ":x:",
    "inconclusive": ":grey_question:",
    "aborted": ":warning:",
    "error": ":boom:",
}


@dataclass(frozen=True)
class Message:
    """One notification about one run end."""

    notification: str
    events: list[str]
    run: LoadTestRun
    test_name: str
    previous_verdict: str | None = None
    sample: bool = False  # sent by `notify test`: not about a real run


BodyBuilder = Callable[[Message], dict[str, Any]]

# Format name → how its body is built; filled by `register_body` (the built-ins below).
BODIES: dict[str, BodyBuilder] = {}


def register_body(name: str, builder: BodyBuilder) -> None:
    """Make `name` a notification format whose body `builder` makes."""
    BODIES[name.strip().lower()] = builder


def body_formats() -> tuple[str, ...]:
    """The formats a notification may have, in the order they were registered."""
    return tuple(BODIES)


def check_format(name: str) -> str:
    """`name` as a registered format (case and spaces ignored); ValidationFailed naming the
    formats otherwise."""
    fmt = name.strip().lower()
    if fmt not in BODIES:
        raise ValidationFailed(
            f"unknown notification format {name!r} (formats: {', '.join(body_formats())})"
        )
    return fmt


def body(fmt: str, message: Message) -> dict[str, Any]:
    """The body to POST in format `fmt` (one of `body_formats()`)."""
    return BODIES[check_format(fmt)](message)


def json_body(message: Message) -> dict[str, Any]:
    """The documented JSON body (docs/notifications.md)."""
    run = message.run
    return {
        "schema": SCHEMA,
        "notification": message.notification,
        "events": list(message.events),
        "sample": message.sample,
        "run": {
            "id": run.id,
            "name": run.name,
            "status": run.status.value,
            "verdict": run.verdict.value if run.verdict else None,
            "reasons": reason_lines(run),
            "stopReason": run.stopReason.value if run.stopReason else None,
            "error": run.error,
            "startedAt": _iso(run.startedAt),
            "finishedAt": _iso(run.finishedAt),
            "targetUsers": run.targetUsers,
            "durationSeconds": run.durationSeconds,
            "cluster": run.locustClusterId,
            "tenantId": run.tenantId,
            "envId": run.envId,
            "trigger": run.model_dump(mode="json").get("trigger"),
        },
        "test": {"id": run.loadTestId, "name": message.test_name},
        "previousVerdict": message.previous_verdict,
        "numbers": key_numbers(run),
        "command": show_command(run),
    }


def slack_body(message: Message) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the notification's one line) and blocks."""
    run = message.run
    verdict = run.verdict.value if run.verdict else "no verdict"
    headline = (
        f"{'[sample] ' if message.sample else ''}loadmgr: test {message.test_name!r}, "
        f"run {run.id[:8]} {verdict}"
    )
    reasons = reason_lines(run)
    summary = f"*{_escape(headline)}*"
    if reasons:
        summary += "\n" + "\n".join(f"• {_escape(line)}" for line in reasons)
    numbers = key_numbers(run)
    fields = [
        ("Requests", f"{format_count(numbers['requests'])} "
                     f"({format_percent(numbers['errorRate'])} failed)"),
        ("RPS", format_rps(numbers["rps"])),
        ("p95", format_ms(numbers["p95Ms"])),
        ("Finished", _iso(run.finishedAt) or "-"),
    ]
    context = f"`{show_command(run)}` · events: {', '.join(message.events)}"
    if message.previous_verdict is not None or "change" in message.events:
        context += f" · previous run: {message.previous_verdict or 'no verdict'}"
    return {
        "text": f"{_ICONS.get(verdict, '')} {_escape(headline)}".strip(),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(summary)}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{_escape(value)}"}
                    for name, value in fields
                ],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(_escape(context))}]},
        ],
    }


register_body("json", json_body)
register_body("slack", slack_body)


def reason_lines(run: LoadTestRun) -> list[str]:
    """Why the verdict is what it is, one sentence each, as `runs show` words them."""
    lines = explain(run.model_dump(mode="python"))[1]
    if len(lines) > REASONS_SHOWN_MAX:
        lines = [*lines[:REASONS_SHOWN_MAX], f"… and {len(lines) - REASONS_SHOWN_MAX} more"]
    return lines


def key_numbers(run: LoadTestRun) -> dict[str, Any]:
    """Requests, failures, error rate, RPS and p95 of the numbers the verdict judged; the
    last interval's when the run has no final stats (it could not complete)."""
    totals = (run.stats_to_judge or {}).get("totals") or {}
    if totals:
        return {
            "requests": totals.get("requests"),
            "failures": totals.get("failures"),
            "errorRate": totals.get("errorRate"),
            "rps": totals.get("rps"),
            "p95Ms": totals.get("p95ResponseMs"),
        }
    last = run.lastMetrics or {}
    requests, failures = last.get("totalRequests"), last.get("totalFailures")
    rate = failures / requests if isinstance(requests, int) and requests and failures else None
    return {
        "requests": requests,
        "failures": failures,
        "errorRate": rate,
        "rps": last.get("totalRPS"),
        "p95Ms": last.get("p95ResponseMs"),
    }


def show_command(run: LoadTestRun) -> str:
    """The command that shows the run, in its tenant and environment."""
    scope = ""
    if run.tenantId is not None:
        scope += f" --tenant {shlex.quote(run.tenantId)}"
    if run.envId is not None:
        scope += f" --env {shlex.quote(run.envId)}"
    return f"loadmgr{scope} runs show {run.id}"


def sample_message(notification: str, tenant: str | None, env: str | None) -> Message:
    """What `notify test` sends: a made-up failed run, marked `sample`."""
    now = utcnow()
    run = LoadTestRun(
        id="00000000-0000-4000-8000-000000000000",
        loadTestId="00000000-0000-4000-8000-000000000001",
        name="sample",
        tenantId=tenant,
        envId=env,
        targetUsers=10,
        spawnRate=1.0,
        durationSeconds=60,
        status=RunStatus.FINISHED,
        startedAt=now - timedelta(seconds=60),
        finishedAt=now,
        stopReason=StopReason.DURATION,
        verdict=Verdict.FAILED,
        verdictReasons=[
            VerdictReason(
                kind=ReasonKind.THRESHOLD,
                message="sample: p95 was 812ms, above its limit of 500ms (p95<500ms)",
            )
        ],
        finalStats={
            "totals": {
                "requests": 1200,
                "failures": 6,
                "errorRate": 0.005,
                "rps": 20.0,
                "p95ResponseMs": 812.0,
            }
        },
    )
    return Message(notification, ["test"], run, "sample test", "passed", sample=True)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def _escape(text: str) -> str:
    """Text Slack shows as written (its mrkdwn reads &, < and > as markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str) -> str:
    return text if len(text) <= SLACK_TEXT_MAX else text[: SLACK_TEXT_MAX - 1] + "…"
