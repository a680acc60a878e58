"""Shell completion: test names, run ids, cluster ids, and the values of fixed-choice options.

Completion runs on every Tab press, so it must be quick and silent: it reads the configured
database with a short timeout, never starts the embedded store (no server running: no
completions), and any failure (no server, bad config, a slow network) completes nothing
rather than printing an error into the user's command line.

The references (`RunRef`, `TestRef`, `ClusterRef`) carry their help and completion, so
every command naming a run, test or cluster completes it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from loadmgr.store import Store

# What a Tab press may cost at most, server selection included.
COMPLETION_TIMEOUT_SEC = 1.5
COMPLETION_LIMIT = 50

Completions = list[tuple[str, str]]


def choices(values: Sequence[str]) -> dict[str, Any]:
    """Settings of an option taking one of `values`: `--help` shows them as its metavar,
    the shell completes them. The command still checks the value itself, so a bad one is
    refused with loadmgr's own one-line message (naming the option and the choices)."""
    fixed = tuple(values)

    def complete(incomplete: str) -> list[str]:
        return [value for value in fixed if value.lower().startswith(incomplete.lower())]

    return {"metavar": f"<{'|'.join(fixed)}>", "autocompletion": complete}


@contextmanager
def _completion_store(ctx: typer.Context) -> Iterator[Store | None]:
    """The configured store, or None when there is none to ask without starting one."""
    from loadmgr.cli.context import AppContext, app_context
    from loadmgr.models import Scope
    from loadmgr.store import Store

    root = ctx.find_root()
    if not isinstance(root.obj, AppContext) and root.command.callback is not None:
        # Completion parses the line without running the root callback: run it now, so
        # the global options given (--tenant, --mongo-uri, a profile) apply here too.
        root.invoke(root.command.callback, **root.params)
    settings = app_context(ctx).settings
    uri = settings.connection_uri
    if not uri:
        from loadmgr.store.embedded import EmbeddedServer

        uri = EmbeddedServer(settings.home).status().uri
        if uri is None:
            yield None
            return
    timeout_ms = min(settings.server_selection_timeout_ms, int(COMPLETION_TIMEOUT_SEC * 1000))
    store = Store.connect(
        uri,
        settings.database,
        Scope(settings.tenant, settings.env),
        timeout_ms,
        tls_ca_file=settings.mongo_tls_ca_file if settings.mongo_uri else None,
        tls_cert_key_file=settings.mongo_tls_cert_key_file if settings.mongo_uri else None,
    )
    try:
        with store.bounded(COMPLETION_TIMEOUT_SEC):
            yield store
    finally:
        store.close()


def _quietly(query: Callable[[Store], Completions]) -> Callable[[typer.Context, str], Completions]:
    """A completion callback running `query`; nothing at all when anything fails."""

    def complete(ctx: typer.Context, incomplete: str) -> Completions:
        del incomplete  # Typer keeps only the values starting with it
        try:
            with _completion_store(ctx) as store:
                return query(store) if store is not None else []
        except Exception:  # a Tab press must never print an error or a traceback
            return []

    return complete


def _test_names(store: Store) -> Completions:
    tests = store.tests.find_many(limit=COMPLETION_LIMIT * 4)
    return [(str(t.get("name")), str(t.get("description") or "")) for t in tests]


def _run_ids(store: Store) -> Completions:
    """Recent runs first (the shell may sort them again): id, with test and status."""
    runs = store.runs.find_many(limit=COMPLETION_LIMIT)
    return [
        (str(r.get("id")), f"{r.get('testName') or r.get('name') or ''} {r.get('status')}")
        for r in runs
    ]


def _cluster_ids(store: Store) -> Completions:
    from loadmgr.models import LOCAL_CLUSTER_ID

    clusters = store.clusters.find_many()
    return [(LOCAL_CLUSTER_ID, "built in")] + [
        (str(c.get("id")), str(c.get("baseUrl") or "")) for c in clusters
    ]


complete_test = _quietly(_test_names)
complete_run = _quietly(_run_ids)
complete_cluster = _quietly(_cluster_ids)

RUN_HELP = "The run's id, or a unique prefix of it (8+ characters)."
RunRef = Annotated[
    str, typer.Argument(help=RUN_HELP, show_default=False, autocompletion=complete_run)
]
TestRef = Annotated[
    str,
    typer.Argument(
        help="The test's name or id (or a unique prefix of its id, 8+ characters).",
        show_default=False,
        autocompletion=complete_test,
    ),
]
ClusterRef = Annotated[
    str,
    typer.Argument(
        help="The cluster's id ('local': the built-in one).",
        show_default=False,
        autocompletion=complete_cluster,
    ),
]
