"""`loadmgr sources`: the registry of Prometheus servers that server metrics are read from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.context import removes, renders
from loadmgr.cli.groups import new_group
from loadmgr.cli.inputs import given
from loadmgr.cli.output import Column, audit_line, field

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer

app = new_group("sources")

SourceName = Annotated[str, typer.Argument(help="The source's name.", show_default=False)]


def _auth_summary(data: dict[str, Any]) -> str:
    """Where the credentials come from, never a credential (none is stored)."""
    parts = []
    if data.get("bearerTokenEnv"):
        parts.append(f"bearer token from env {data['bearerTokenEnv']}")
    elif data.get("bearerTokenFile"):
        parts.append(f"bearer token from file {data['bearerTokenFile']}")
    if data.get("headerName"):
        parts.append(f"header {data['headerName']} from env {data.get('headerEnv')}")
    return ", ".join(parts) or "none"


LIST_COLUMNS = [
    field("id", "NAME"),
    field("type", "TYPE"),
    field("baseUrl", "URL"),
    Column("AUTH", _auth_summary),
    field("description", "DESCRIPTION"),
]
SOURCE_CSV = (
    "id",
    "type",
    "baseUrl",
    "description",
    "bearerTokenEnv",
    "bearerTokenFile",
    "headerName",
    "headerEnv",
    "caBundle",
    "timeoutSec",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
)
CHECK_CSV = ("id", "baseUrl", "reachable", "version", "roundTripMs", "queryOk")


def source_view(data: dict[str, Any]) -> RenderableType:
    from loadmgr.cli.output import key_value_view

    shown = {
        "type": data.get("type"),
        "url": data.get("baseUrl"),
        "description": data.get("description") or "-",
        "auth": _auth_summary(data),
        "tls": f"CA bundle {data['caBundle']}" if data.get("caBundle") else "verify",
        "timeout": f"{data.get('timeoutSec', 5.0):g}s",
        "created": audit_line(data, "created"),
        "updated": audit_line(data, "updated"),
    }
    return key_value_view(shown, title=f"source {data.get('id')}")


@app.command("add")
@renders
def add(
    context: AppContext,
    renderer: Renderer,
    name: SourceName,
    prometheus: Annotated[
        str,
        typer.Option(
            "--prometheus",
            help="Base URL of the Prometheus server (no user:password@: use a token option).",
        ),
    ],
    description: Annotated[str, typer.Option("--description", help="Free text.")] = "",
    bearer_token_env: Annotated[
        str | None,
        typer.Option("--bearer-token-env", help="Env variable holding a bearer token."),
    ] = None,
    bearer_token_file: Annotated[
        str | None, typer.Option("--bearer-token-file", help="File holding a bearer token.")
    ] = None,
    header_name: Annotated[
        str | None, typer.Option("--header-name", help="Send this header (a proxy's).")
    ] = None,
    header_env: Annotated[
        str | None, typer.Option("--header-env", help="Env variable holding the header value.")
    ] = None,
    ca_bundle: Annotated[
        str | None, typer.Option("--ca-file", help="CA bundle to verify https with.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds a query may take (at most 60).")
    ] = 5.0,
) -> None:
    """Register a Prometheus server. Credentials are never stored: only where to read them."""
    from loadmgr.service.server_metrics.sources import SourceSpec, add_source

    spec = given(SourceSpec, locals())
    source = add_source(context.store, context.settings.user, spec)
    renderer.one(source, source_view, csv_columns=SOURCE_CSV)


@app.command("list")
@renders
def list_(context: AppContext, renderer: Renderer) -> None:
    """List the registered sources of the scope."""
    from loadmgr.service.server_metrics.sources import list_sources

    renderer.many(
        list_sources(context.store),
        LIST_COLUMNS,
        empty="no sources registered",
        csv_columns=SOURCE_CSV,
    )


@app.command("show")
@renders
def show(context: AppContext, renderer: Renderer, name: SourceName) -> None:
    """Show one registered source."""
    from loadmgr.service.server_metrics.sources import get_source

    renderer.one(get_source(context.store, name), source_view, csv_columns=SOURCE_CSV)


@app.command("remove")
@removes
def remove(context: AppContext, name: SourceName) -> tuple[str, str]:
    """Remove a registered source (not while a test reads from it)."""
    from loadmgr.service.server_metrics.sources import remove_source

    source = remove_source(context.store, name)
    return source.id, f"removed source {source.id!r}"


@app.command("check")
@renders
def check(context: AppContext, renderer: Renderer, name: SourceName) -> None:
    """Check a source: Prometheus' version and a trivial query's round trip (exit 6 if
    it cannot be asked)."""
    from loadmgr.service.server_metrics.sources import check_source

    renderer.one(check_source(context.store, name), csv_columns=CHECK_CSV)
