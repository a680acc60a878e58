"""Shell completion: test names, run ids and cluster ids, read from the database.

Completion runs on every Tab press, so it must be quick and silent: it reads the configured
database with a short timeout, never starts the embedded store (no server running: no
completions), and any failure (no server, bad config, a slow network) completes nothing
rather than printing an error into the user's command line.

The references (`RunRef`, `TestRef`, `ClusterRef`) carry their help and completion, so
every command naming a run, test or cluster completes it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from loadmgr.store import Store

# What a Tab press may cost at most, server selection included.
COMPLETION_TIMEOUT_SEC = 1.5
COMPLETION_LIMIT = 50

Completions = list[tuple[str, str]]


@contextmanager
def _completion_store(ctx: typer.Context) -> Iterator[Store]:
    """The configured store, asked with a short timeout; never an embedded one started
    for a Tab press (none running: DatabaseError, so nothing is completed)."""
    from loadmgr.cli.context import AppContext, app_context
    from loadmgr.service.context import open_store

    root = ctx.find_root()
    if not isinstance(root.obj, AppContext) and root.command.callback is not None:
        # Completion parses the line without running the root callback: run it now, so
        # the global options given (--tenant, --mongo-uri, a profile) apply here too.
        root.invoke(root.command.callback, **root.params)
    settings = app_context(ctx).settings
    timeout_ms = int(COMPLETION_TIMEOUT_SEC * 1000)
    store = open_store(settings, timeout_ms=timeout_ms, start_embedded=False)
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
                return query(store)
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
