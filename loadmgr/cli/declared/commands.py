"""`loadmgr apply` and `loadmgr export`: load tests kept in git as TOML files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.context import app_context, renders
from loadmgr.cli.output import notice

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer

app = typer.Typer(rich_markup_mode=None)
EXPORT_FORMATS = ("toml", "json")
# `apply -o csv` (docs/output.md): a row per changed field of each change.
APPLY_CSV = ("action", "kind", "name", "file", "key", "old", "new", "applied")


def plan_view(data: dict[str, Any]) -> RenderableType:
    """The plan as `terraform plan` shows one: `+` create, `~` update (each field old →
    new), `-` delete; then what was done."""
    from rich.text import Text

    from loadmgr.cli.output import json_text, sanitize

    def shown(value: Any) -> str:
        return "-" if value in (None, "", [], {}) else sanitize(json_text(value))

    text = Text()
    changes = data.get("changes") or []
    for change in changes:
        style = {"create": "green", "update": "yellow", "delete": "red"}[change["action"]]
        symbol = {"create": "+", "update": "~", "delete": "-"}[change["action"]]
        text.append(f"{symbol} {change['kind']} {sanitize(change['name'])}", style=style)
        text.append(f"  ({sanitize(change['file'])})\n", style="dim")
        for item in change["fields"]:
            text.append(f"    {item['key']}: {shown(item['old'])} → {shown(item['new'])}\n")
    if not changes:
        text.append("no changes: the database holds what the files declare")
        return text
    counts = {a: sum(c["action"] == a for c in changes) for a in ("create", "update", "delete")}
    text.append(
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete: "
    )
    text.append("applied" if data.get("applied") else "dry run, nothing written")
    return text


@app.command("apply")
@renders
def apply(
    context: AppContext,
    renderer: Renderer,
    file: Annotated[
        str,
        typer.Option(
            "--file",
            "-f",
            metavar="PATH",
            help="A TOML file of tests, schedules and notifications, or a folder: each "
            "*.toml in it.",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan only; write nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also delete what these files manage but no longer declare (never what "
            "another file or a person made; never a test with runs).",
        ),
    ] = False,
) -> None:
    """Make the database hold what the files declare: print the plan, then apply it.

    Every entry is checked before anything is written (exit 2 naming file:line and
    key); what an apply creates is marked as managed by its file's name. Idempotent: a
    second apply prints "no changes" and writes nothing. Exit 5 when an entry is managed
    by another file, or something changed meanwhile (nothing of the apply is kept).
    """
    from loadmgr.service.declared.apply import apply_files

    result = apply_files(
        context.store, context.settings.user, file, dry_run=dry_run, prune=prune, warn=notice
    )
    data = result.to_json()
    if renderer.format == "csv":  # a row per changed field (one for a create or delete)
        renderer.many(_csv_rows(data), [], csv_columns=APPLY_CSV)
    else:
        renderer.one(data, plan_view)


def _csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for change in data["changes"]:
        head = {key: change[key] for key in ("action", "kind", "name", "file")}
        head["applied"] = data["applied"]
        rows += [{**head, **item} for item in change["fields"]] or [head]
    return rows


@app.command("export")
def export(
    ctx: typer.Context,
    test: Annotated[
        list[str] | None,
        typer.Option(
            "--test", metavar="NAME", help="Only this test (repeatable).", show_default=False
        ),
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", metavar="TAG", help="Only tests with this tag.")
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="toml (what apply reads) or json.", **choices(EXPORT_FORMATS)
        ),
    ] = "toml",
) -> None:
    """Write tests, their schedules and notifications in the format `apply` reads;
    applying it changes nothing. Webhooks are named by variable or file, never a URL."""
    import sys

    from loadmgr.errors import ValidationFailed

    chosen = output.strip().lower()
    if chosen not in EXPORT_FORMATS:
        raise ValidationFailed(
            f"unknown output format {output!r} (one of {', '.join(EXPORT_FORMATS)})"
        )
    from loadmgr.service.declared.export import export_definitions

    data = export_definitions(app_context(ctx).store, tests=test, tag=tag)
    if chosen == "json":
        from loadmgr.cli.output import json_safe, json_text

        sys.stdout.write(json_safe(json_text(data, indent=2)) + "\n")
    else:
        from loadmgr.service.declared.toml_text import toml_text

        sys.stdout.write(toml_text(data))
    sys.stdout.flush()
