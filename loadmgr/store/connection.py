"""Connecting to MongoDB and turning pymongo's errors into ours."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bson.errors
import pymongo
import pymongo.errors
from pymongo.database import Database

from loadmgr.errors import Conflict, DatabaseError, DatabaseRefused, ValidationFailed
from loadmgr.local_files import not_a_file
from loadmgr.store.failures import Failure, classify
from loadmgr.uris import check_mongo_uri, redact_text, redact_uri

__all__ = ["get_database", "open_client", "redact_text", "redact_uri", "translate_errors"]

# Words of the ssl module's errors: a handshake that failed, not a server that is down.
_TLS_MARKERS = ("SSL", "CERTIFICATE", "violation of protocol", "TLS")


def open_client(
    uri: str,
    timeout_ms: int,
    *,
    tls_ca_file: str | None = None,
    tls_cert_key_file: str | None = None,
) -> pymongo.MongoClient[dict[str, Any]]:
    """A client that fails within `timeout_ms` when the server cannot be reached.

    TLS may also be set in the URI (`tls=true&tlsCAFile=…`); the options add to it.
    """
    tls: dict[str, Any] = {}
    if tls_ca_file or tls_cert_key_file:
        tls["tls"] = True
    if tls_ca_file:
        tls["tlsCAFile"] = tls_ca_file
    if tls_cert_key_file:
        tls["tlsCertificateKeyFile"] = tls_cert_key_file
    uri = check_mongo_uri(uri)
    for option, path in (
        ("--mongo-tls-ca-file", tls_ca_file),
        ("--mongo-tls-cert-key-file", tls_cert_key_file),
    ):
        # The ssl module reads these to their end: a FIFO would block, /dev/zero never end.
        kind = not_a_file(os.stat(path).st_mode) if path and os.path.exists(path) else None
        if kind is not None:
            raise ValidationFailed(f"invalid {option}: {path!r} is {kind}, not a file")
    try:
        # pymongo only warns about an unknown option or a bad option value, and goes on
        # without it: a misspelt `tlsCAFile` would silently connect without TLS.
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            return pymongo.MongoClient(
                uri,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=min(timeout_ms, 10_000),
                tz_aware=True,
                appname="loadmgr",
                **tls,
            )
    except OSError as exc:  # a TLS file named in the options or the URI cannot be read
        raise ValidationFailed(
            f"cannot read a MongoDB TLS file: {redact_text(exc.strerror or str(exc), uri)}",
            hint="check --mongo-tls-ca-file and --mongo-tls-cert-key-file "
            "(or tlsCAFile and tlsCertificateKeyFile in the URI)",
        ) from None
    except (pymongo.errors.ConfigurationError, ValueError, TypeError, UserWarning) as exc:
        # All about the URI or the options given with it: a usage error, never exit 3.
        why = _short(redact_text(str(exc), uri))
        raise ValidationFailed(
            f"invalid MongoDB URI {redact_uri(uri)}: {why}",
            hint=(
                "give the password with --mongo-password-file or LOADMGR_MONGO_PASSWORD"
                if "password is required" in why
                else "see https://www.mongodb.com/docs/manual/reference/connection-string/"
            ),
        ) from None


@contextmanager
def translate_errors(uri: str) -> Iterator[None]:
    """Map pymongo exceptions raised inside the block to loadmgr's, secrets redacted."""
    try:
        yield
    except pymongo.errors.DuplicateKeyError as exc:
        raise Conflict(f"duplicate key: {_first_line(str(exc))}") from None
    except pymongo.errors.ServerSelectionTimeoutError as exc:
        why = _short(redact_text(str(exc), uri))
        tls = any(marker in why for marker in _TLS_MARKERS)
        raise DatabaseError(
            f"cannot reach MongoDB at {redact_uri(uri)}: {why}",
            hint=(
                "TLS failed: check --mongo-tls-ca-file (the CA of the server's certificate) "
                "and --mongo-tls-cert-key-file (when it wants a client certificate)"
                if tls
                else "check --mongo-uri / LOADMGR_MONGO_URI and that the server is running"
            ),
        ) from None
    except (pymongo.errors.PyMongoError, bson.errors.BSONError, OverflowError) as exc:
        raise _ours(exc, uri) from None


def _ours(exc: BaseException, uri: str) -> DatabaseError:
    """pymongo's `exc` as loadmgr's: a refusal (never retried) or an outage (retried)."""
    failure = classify(exc)
    if failure is Failure.REFUSAL:
        if isinstance(exc, (bson.errors.BSONError, OverflowError)):
            # A document MongoDB cannot hold (an 8-byte int overflow, a 16 MB document).
            return DatabaseRefused(f"MongoDB cannot store it: {_short(str(exc))}")
        return DatabaseRefused(f"MongoDB error: {_short(redact_text(str(exc), uri))}")
    if failure is Failure.DENIED and isinstance(exc, pymongo.errors.OperationFailure):
        reason = exc.details.get("errmsg", exc) if exc.details else exc
        return DatabaseError(
            f"MongoDB refused the request at {redact_uri(uri)}: "
            f"{_short(redact_text(str(reason), uri))}",
            hint="check the user, password and roles in the MongoDB URI",
        )
    return DatabaseError(f"MongoDB error: {_short(redact_text(str(exc), uri))}")


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _short(text: str, limit: int = 300) -> str:
    """One line, bounded: pymongo's topology descriptions run to kilobytes."""
    line = _first_line(text)
    line = line.split(", Timeout:")[0].split(" (configured timeouts:")[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def get_database(
    client: pymongo.MongoClient[dict[str, Any]], name: str
) -> Database[dict[str, Any]]:
    """The named database, checked for a name MongoDB accepts."""
    if not name or any(ch in name for ch in '/\\. "$*<>:|?') or len(name) > 63:
        raise ValidationFailed(f"invalid database name {name!r}")
    return client[name]
