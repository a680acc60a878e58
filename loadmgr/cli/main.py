"""`loadmgr`: the command groups, assembled, and the global options."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Annotated

import typer

from loadmgr import __version__
from loadmgr.cli.app import RootGroup
from loadmgr.cli.context import AppContext, config_path

app = typer.Typer(
    rich_markup_mode=None,
    cls=RootGroup,
    name="loadmgr",
    help=(
        "Keep Locust load tests and their whole history in MongoDB.\n\n"
        "With no MongoDB URI configured, an embedded store is started on loopback and "
        "reused. Exit codes: 0 ok, 1 run failed (threshold, regression, no successful "
        "request), 2 usage, 3 MongoDB, 4 not found, 5 conflict, 6 Locust cluster or run "
        "error, 7 run aborted (stopped early elsewhere), 8 run inconclusive (a check failed "
        "while the load generator was saturated), 130 interrupted."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loadmgr {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    mongo_uri: Annotated[
        str | None,
        typer.Option(
            envvar="LOADMGR_MONGO_URI",
            help="MongoDB URI; without one, the embedded store is used.",
            show_default=False,
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(envvar="LOADMGR_DATABASE", help="Database name (default: loadmgr)."),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(envvar="LOADMGR_TENANT", help="Work only within this tenant.")
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(envvar="LOADMGR_ENV", help="Work only within this environment."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(envvar="LOADMGR_USER", help="Who is acting (default: the OS login name)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(envvar="LOADMGR_PROFILE", help="Named profile of the config file."),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            envvar="LOADMGR_CONFIG",
            help="TOML config file (default: config.toml in the user config directory).",
        ),
    ] = None,
    server_selection_timeout: Annotated[
        int | None,
        typer.Option(
            envvar="LOADMGR_SERVER_SELECTION_TIMEOUT_MS",
            help="Milliseconds to wait for MongoDB before failing (default: 10000).",
        ),
    ] = None,
    mongo_tls_ca_file: Annotated[
        str | None,
        typer.Option(
            envvar="LOADMGR_MONGO_TLS_CA_FILE",
            help="CA file to verify MongoDB's TLS certificate (turns TLS on).",
        ),
    ] = None,
    mongo_tls_cert_key_file: Annotated[
        str | None,
        typer.Option(
            envvar="LOADMGR_MONGO_TLS_CERT_KEY_FILE",
            help="Client certificate and key (PEM) for MongoDB TLS (turns TLS on).",
        ),
    ] = None,
    mongo_password_file: Annotated[
        str | None,
        typer.Option(
            envvar="LOADMGR_MONGO_PASSWORD_FILE",
            help="File holding the password of the MongoDB URI's user, readable by you "
            "only (chmod 600); or set LOADMGR_MONGO_PASSWORD. Keeps it off command lines.",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(envvar="LOADMGR_DEBUG", help="Show tracebacks and debug logs."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Keep Locust load tests and their whole history in MongoDB."""
    context = AppContext(
        options={
            "mongo_uri": _given_empty(mongo_uri, "LOADMGR_MONGO_URI"),
            "database": _given_empty(database, "LOADMGR_DATABASE"),
            "tenant": _given_empty(tenant, "LOADMGR_TENANT"),
            "env": _given_empty(env, "LOADMGR_ENV"),
            "user": user,
            "profile": profile,
            "config": config_path(config),
            "server_selection_timeout_ms": server_selection_timeout,
            "mongo_tls_ca_file": mongo_tls_ca_file,
            "mongo_tls_cert_key_file": mongo_tls_cert_key_file,
            "mongo_password_file": mongo_password_file,
            # Only from the environment: an option would put it in the process list.
            "mongo_password": os.environ.get("LOADMGR_MONGO_PASSWORD"),
            "debug": debug,
        }
    )
    ctx.obj = context
    ctx.call_on_close(context.close)


def _given_empty(value: str | None, variable: str) -> str | None:
    """The option's value; "" when its variable is set but empty, which click ignores.

    `LOADMGR_TENANT=$TEAM` with $TEAM unset must not mean "every tenant", nor an unset
    `LOADMGR_MONGO_URI=$URI` the embedded store.
    """
    if value is None and os.environ.get(variable) == "":
        return ""
    return value


def run() -> None:
    """Console-script entry point.

    Once the command is done and its output flushed, the process ends at once: pymongo's
    background monitor threads would otherwise hold every command up by ~0.5 s at exit.
    Everything that must happen (stopping a local Locust, recording a run) has happened
    in the command itself by then.

    No library's warning reaches the user (scipy's "precision loss" on a near-flat trend,
    with a file path under it): loadmgr says what matters in its own one-line messages. A
    developer who asks for them (`python -W …`, PYTHONWARNINGS) still gets them.
    """
    if not sys.warnoptions:
        warnings.simplefilter("ignore")
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        code = code or 0
    os._exit(code)
