"""`loadmgr clusters`: the registry of remote Locust masters."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.completion import ClusterRef
from loadmgr.cli.context import removes, renders
from loadmgr.cli.groups import new_group
from loadmgr.cli.inputs import given
from loadmgr.cli.output import (
    Column,
    audit_line,
    field,
    notice,
)
from loadmgr.errors import ValidationFailed

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer

app = new_group("clusters")

ClusterId = Annotated[str, typer.Argument(help="The cluster's id.", show_default=False)]


def _auth_summary(auth: dict[str, Any] | None) -> str:
    """Where the secrets come from, never the secrets (there are none stored)."""
    if not auth or auth.get("type") in (None, "none"):
        return "none"
    if auth["type"] == "header":
        source = (
            f"env {auth['secretEnv']}"
            if auth.get("secretEnv")
            else f"file {auth.get('secretFile')}"
        )
        return f"header {auth.get('headerName')} from {source}"
    users, passwords = auth.get("usernameEnv"), auth.get("passwordEnv")
    return f"login via {auth.get('loginPath') or '/login_submit'} (env {users}/{passwords})"


LIST_COLUMNS = [
    field("id", "ID"),
    Column("URL", lambda d: "(built in: this machine)" if d.get("builtIn") else d.get("baseUrl")),
    Column("AUTH", lambda d: _auth_summary(d.get("auth"))),
    field("description", "DESCRIPTION"),
]
# `-o csv` (docs/output.md): of the registered clusters, and of `clusters check`.
CLUSTER_CSV = (
    "id",
    "builtIn",
    "baseUrl",
    "description",
    "auth.type",
    "auth.headerName",
    "auth.secretEnv",
    "auth.secretFile",
    "auth.usernameEnv",
    "auth.passwordEnv",
    "auth.loginPath",
    "verifyTls",
    "caBundle",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
)
CHECK_CSV = (
    "id",
    "baseUrl",
    "verifyTls",
    "reachable",
    "version",
    "state",
    "workerCount",
    "userCount",
    "isDistributed",
    "pluginVersion",
    "pluginSupported",
    "builtIn",
    "cores",
    "workers",
    "pluginLoads",
    "error",
)


def cluster_view(data: dict[str, Any]) -> RenderableType:
    from loadmgr.cli.output import key_value_view

    if data.get("builtIn"):
        built_in = {
            "built in": "yes: not registered, in every tenant and environment",
            "description": data.get("description"),
            "workers": f"{data.get('workers')} (one a core)",
        }
        return key_value_view(built_in, title=f"cluster {data.get('id')}")
    shown = {
        "url": data.get("baseUrl"),
        "description": data.get("description") or "-",
        "auth": _auth_summary(data.get("auth")),
        "tls": ("verify" if data.get("verifyTls", True) else "NOT verified")
        + (f", CA bundle {data['caBundle']}" if data.get("caBundle") else ""),
        "created": audit_line(data, "created"),
        "updated": audit_line(data, "updated"),
    }
    return key_value_view(shown, title=f"cluster {data.get('id')}")


@app.command("add")
@renders
def add(
    context: AppContext,
    renderer: Renderer,
    cluster_id: ClusterId,
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="Base URL of the Locust master's web UI (no user:password@: use the "
            "header or login options).",
        ),
    ],
    description: Annotated[str, typer.Option("--description", help="Free text.")] = "",
    header_name: Annotated[
        str | None,
        typer.Option("--header-name", help="Send this header (for a proxy in front of Locust)."),
    ] = None,
    header_env: Annotated[
        str | None, typer.Option("--header-env", help="Env variable holding the header value.")
    ] = None,
    header_file: Annotated[
        str | None, typer.Option("--header-file", help="File holding the header value.")
    ] = None,
    login_user_env: Annotated[
        str | None,
        typer.Option("--login-user-env", help="Env variable with the --web-login user name."),
    ] = None,
    login_password_env: Annotated[
        str | None,
        typer.Option("--login-password-env", help="Env variable with the --web-login password."),
    ] = None,
    login_path: Annotated[
        str, typer.Option("--login-path", help="Login form endpoint of the master.")
    ] = "/login_submit",
    ca_bundle: Annotated[
        str | None, typer.Option("--ca-bundle", help="CA bundle to verify https with.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify https certificates (warns).")
    ] = False,
) -> None:
    """Register a Locust master. Secrets are never stored: only where to read them."""
    from loadmgr.service.definitions.clusters import ClusterSpec, add_cluster

    spec = given(ClusterSpec, locals())
    for warning in spec.warnings():
        notice(warning)
    cluster = add_cluster(context.store, context.settings.user, spec)
    renderer.one(cluster, cluster_view, csv_columns=CLUSTER_CSV)


@app.command("list")
@renders
def list_(context: AppContext, renderer: Renderer) -> None:
    """List the clusters: the built-in `local`, then the registered ones."""
    from loadmgr.service.definitions.clusters import list_clusters

    renderer.many(
        list_clusters(context.store),
        LIST_COLUMNS,
        empty="no clusters registered",
        csv_columns=CLUSTER_CSV,
    )


@app.command("show")
@renders
def show(context: AppContext, renderer: Renderer, cluster_id: ClusterRef) -> None:
    """Show one registered cluster, or the built-in `local`."""
    from loadmgr.service.definitions.clusters import get_cluster, is_built_in, local_cluster

    found = local_cluster() if is_built_in(cluster_id) else get_cluster(context.store, cluster_id)
    renderer.one(found, cluster_view, csv_columns=CLUSTER_CSV)


@app.command("remove")
@removes
def remove(context: AppContext, cluster_id: ClusterRef) -> tuple[str, str]:
    """Remove a registered cluster (not while a test uses it)."""
    from loadmgr.service.definitions.clusters import remove_cluster

    cluster = remove_cluster(context.store, cluster_id)
    return cluster.id, f"removed cluster {cluster.id!r}"


@app.command("check")
@renders
def check(context: AppContext, renderer: Renderer, cluster_id: ClusterRef) -> None:
    """Check a cluster: reachable, Locust version, state, workers (exit 6 if unreachable).

    For the built-in `local`: the Locust installed here, the cores (a local run starts one
    worker a core), and whether the loadmgr plugin loads in it (exit 6 if not).
    """
    from loadmgr.service.definitions.clusters import (
        check_cluster,
        check_local_cluster,
        check_warnings,
        is_built_in,
    )

    if is_built_in(cluster_id):
        renderer.one(check_local_cluster(), csv_columns=CHECK_CSV)
        return
    report = check_cluster(context.store, cluster_id)
    for warning in check_warnings(report):
        notice(warning)
    renderer.one(report, csv_columns=CHECK_CSV)


@app.command("plugin")
def plugin(
    write: Annotated[
        str | None,
        typer.Option(
            "--write",
            metavar="PATH",
            help="Write it to PATH (a file, or a directory to put loadmgr_plugin.py in) "
            "instead of printing it.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --write: replace a different existing file.")
    ] = False,
) -> None:
    """Print the loadmgr Locust plugin, for exact per-second numbers from a remote cluster.

    Load it on the master and on every worker, with the locustfile:

    \b
        locust -f locustfile.py,loadmgr_plugin.py --master ...
        locust -f locustfile.py,loadmgr_plugin.py --worker --master-host ...

    or add `import loadmgr_plugin` to the locustfile. The built-in `local` cluster always
    loads it. `clusters check` shows whether a cluster has it.
    """
    from loadmgr.service.definitions.clusters import export_plugin

    if force and write is None:
        raise ValidationFailed("--force applies only with --write")
    exported = export_plugin(write, force=force)
    if exported.path is None:
        sys.stdout.write(exported.source)
        sys.stdout.flush()
    elif exported.unchanged:
        notice(f"{exported.path} is already this plugin (protocol version {exported.version})")
    else:
        notice(f"wrote {exported.path} (loadmgr plugin, protocol version {exported.version})")
