"""Domain exceptions, each mapped to one exit code at the CLI boundary.

The core raises these; only `loadmgr.cli` turns them into `error: …` lines and exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of docs/design.md ("Exit codes"), the same for every command."""

    OK = 0
    THRESHOLD_FAILED = 1
    USAGE = 2
    DATABASE = 3
    NOT_FOUND = 4
    CONFLICT = 5
    CLUSTER = 6
    # The run was stopped before its duration by someone or something else (`runs stop`
    # from elsewhere, Locust stopped outside loadmgr): verdict `aborted`.
    ABORTED = 7
    # A check failed but cannot be trusted (the load generator was saturated or lost a
    # worker), or none failed but one cannot be trusted (a comparison's change beyond its
    # limit that is not significant): verdict `inconclusive`.
    INCONCLUSIVE = 8
    INTERRUPTED = 130


class LoadmgrError(Exception):
    """Base of every error loadmgr reports to a user."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ValidationFailed(LoadmgrError):
    """A value given by the user is malformed or not allowed."""

    exit_code = ExitCode.USAGE


class ConfigError(LoadmgrError):
    """The configuration file or a setting is malformed."""

    exit_code = ExitCode.USAGE


class DatabaseError(LoadmgrError):
    """MongoDB is unreachable, refused the request, or failed."""

    exit_code = ExitCode.DATABASE


class DatabaseRefused(DatabaseError):
    """MongoDB answered but refused this write or query: retrying the same will not help."""


class NotFound(LoadmgrError):
    """A test, run or cluster does not exist (in the current scope)."""

    exit_code = ExitCode.NOT_FOUND


class Conflict(LoadmgrError):
    """A duplicate name, a concurrent update, or a busy cluster."""

    exit_code = ExitCode.CONFLICT


class ClusterBusy(Conflict):
    """The cluster's lease is held by another run."""


class ClusterError(LoadmgrError):
    """A Locust cluster is unreachable, refused a request, or was lost."""

    exit_code = ExitCode.CLUSTER


class Interrupted(LoadmgrError):
    """The user interrupted a command (Ctrl-C or SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED


class WebhookError(LoadmgrError):
    """A webhook receiver did not take a notification (`notify test`): like an unreachable
    cluster, a remote service's failure (exit 6)."""

    exit_code = ExitCode.CLUSTER


class UnreadableDocument(UserWarning):
    """A stored document a read left out, because a field it needs is of no use (another
    program wrote it): the CLI says so once on stderr, and shows the rest."""


def left_out(collection: str, doc_id: object, why: str) -> None:
    """Warn that the document `doc_id` of `collection` was left out of a read, and why."""
    import warnings

    warnings.warn(
        UnreadableDocument(f"{collection} {doc_id} cannot be read ({why}): left out"),
        stacklevel=2,
    )


class SourceError(LoadmgrError):
    """A source of server-side metrics (Prometheus) could not be asked, or answered
    nonsense: the one-line reason, never a secret."""

    exit_code = ExitCode.CLUSTER
