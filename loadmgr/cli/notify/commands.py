"""`loadmgr notify`: webhooks told when runs end (add, list, show, remove, test)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.completion import complete_test
from loadmgr.cli.context import removes, renders
from loadmgr.cli.groups import new_group
from loadmgr.cli.inputs import given
from loadmgr.cli.output import Column, audit_line, field

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer
    from loadmgr.models.notifications import Notification

app = new_group("notify")

NotificationRef = Annotated[
    str, typer.Argument(help="The notification's name or id.", show_default=False)
]


def _webhook(data: dict[str, Any]) -> str:
    """Where the URL is read from; the URL itself is never stored, so never shown."""
    if data.get("webhookEnv"):
        return f"env:{data['webhookEnv']}"
    return f"file:{data.get('webhookFile')}"


def _runs_of(data: dict[str, Any]) -> str:
    if data.get("testId"):
        return f"test {data.get('testName') or data['testId']}"
    if data.get("tag"):
        return f"tests tagged {data['tag']}"
    return "every test"


LIST_COLUMNS = [
    field("name", "NAME"),
    Column("WEBHOOK", _webhook),
    field("format", "FORMAT"),
    Column("ON", lambda d: ",".join(d.get("on") or [])),
    Column("RUNS OF", _runs_of),
    field("createdBy", "BY"),
]
# `-o csv` (docs/output.md): of the notifications, and of `notify test`'s delivery.
NOTIFICATION_CSV = (
    "id",
    "name",
    "tenantId",
    "envId",
    "webhookEnv",
    "webhookFile",
    "format",
    "on",
    "testId",
    "tag",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
)
DELIVERY_CSV = (
    "name",
    "notificationId",
    "events",
    "at",
    "ok",
    "attempts",
    "status",
    "error",
    "seconds",
)


def notification_view(data: dict[str, Any]) -> RenderableType:
    from loadmgr.cli.output import key_value_view

    shown = {
        "id": data.get("id"),
        "webhook": _webhook(data),
        "format": data.get("format"),
        "on": ", ".join(data.get("on") or []),
        "runs of": _runs_of(data),
        "created": audit_line(data, "created"),
    }
    return key_value_view(shown, title=f"notification {data.get('name')}")


def _show_one(context: AppContext, renderer: Renderer, notification: Notification) -> None:
    """Print one notification; a table names its test (the other formats keep the id)."""
    from loadmgr.service.notifications.subscriptions import names_of_tests

    names = names_of_tests(context.store, [notification]) if renderer.is_table else {}
    renderer.one(
        _with_test_name(notification, names), notification_view, csv_columns=NOTIFICATION_CSV
    )


def _with_test_name(notification: Notification, names: dict[str, str]) -> dict[str, Any]:
    """The stored document, with its test's name beside the id for people (tables)."""
    from loadmgr.cli.output import jsonable

    data: dict[str, Any] = jsonable(notification)
    if notification.testId and notification.testId in names:
        data["testName"] = names[notification.testId]
    return data


@app.command("add")
@renders
def add(
    context: AppContext,
    renderer: Renderer,
    name: Annotated[
        str, typer.Argument(help="A name, unique in the tenant/env.", show_default=False)
    ],
    webhook_env: Annotated[
        str | None,
        typer.Option(
            "--webhook-env",
            metavar="VAR",
            help="Environment variable holding the webhook URL, where runs end (a "
            "background collector inherits it; cron needs it in its environment).",
        ),
    ] = None,
    webhook_file: Annotated[
        str | None,
        typer.Option(
            "--webhook-file",
            metavar="PATH",
            help="File holding the webhook URL (keep it chmod 600); stored as an absolute "
            "path.",
        ),
    ] = None,
    body_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="Body: json (documented schema) or slack (incoming webhook).",
            **choices(("json", "slack")),
        ),
    ] = "json",
    on: Annotated[
        list[str] | None,
        typer.Option(
            "--on",
            metavar="EVENTS",
            help="Events, comma-separated or repeated: failed, inconclusive, error, aborted, "
            "regression, change (verdict differs from the test's previous run) [default: "
            "failed,inconclusive,error,aborted,regression].",
            show_default=False,
        ),
    ] = None,
    test: Annotated[
        str | None,
        typer.Option(
            "--test",
            metavar="TEST",
            help="Only runs of this test (id or name).",
            autocompletion=complete_test,
        ),
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", metavar="TAG", help="Only runs of tests with this tag.")
    ] = None,
) -> None:
    """Tell a webhook when matching runs end. The URL must be in the variable or file now;
    only that reference is stored, never the URL."""
    from loadmgr.service.notifications.subscriptions import NotificationSpec, add_notification

    spec = given(NotificationSpec, locals())
    _show_one(context, renderer, add_notification(context.store, context.settings.user, spec))


@app.command("list")
@renders
def list_(context: AppContext, renderer: Renderer) -> None:
    """List notifications (with where each URL is read from, never the URL)."""
    from loadmgr.service.notifications.subscriptions import (
        list_notifications,
        names_of_tests,
    )

    notifications = list_notifications(context.store)
    names = names_of_tests(context.store, notifications) if renderer.is_table else {}
    renderer.many(
        [_with_test_name(n, names) for n in notifications] if names else notifications,
        LIST_COLUMNS,
        empty="no notifications",
        csv_columns=NOTIFICATION_CSV,
    )


@app.command("show")
@renders
def show(context: AppContext, renderer: Renderer, ref: NotificationRef) -> None:
    """Show one notification."""
    from loadmgr.service.notifications.subscriptions import get_notification

    _show_one(context, renderer, get_notification(context.store, ref))


@app.command("remove")
@removes
def remove(context: AppContext, ref: NotificationRef) -> tuple[str, str]:
    """Remove a notification."""
    from loadmgr.service.notifications.subscriptions import remove_notification

    notification = remove_notification(context.store, ref)
    return notification.id, f"removed notification {notification.name!r}"


@app.command("test")
@renders
def test_(context: AppContext, renderer: Renderer, ref: NotificationRef) -> None:
    """Send a sample message (marked "sample": true) and show how it went; exit 6 when
    the receiver did not take it, 2 when the variable or file holds no URL."""
    from loadmgr.errors import WebhookError
    from loadmgr.service.notifications.subscriptions import send_test

    outcome = send_test(context.store, ref)
    renderer.one(outcome, id_key="notificationId", csv_columns=DELIVERY_CSV)
    if not outcome["ok"]:
        raise WebhookError(
            f"notification {outcome['name']!r}: the webhook did not take the sample: "
            f"{outcome['error']}"
        )
