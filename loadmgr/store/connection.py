"""Connecting to MongoDB and turning pymongo's errors into ours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymongo
import pymongo.errors
from pymongo.database import Database

from loadmgr.errors import Conflict, DatabaseError, ValidationFailed

_USERINFO = re.compile(r"^(?P<scheme>mongodb(?:\+srv)?://)(?P<user>[^:@/]*):(?P<pw>[^@/]*)@")
_QUERY_SECRETS = re.compile(
    r"((?:password|tlsCertificateKeyFilePassword|authMechanismProperties)=)[^&]*", re.I
)


def redact_uri(uri: str) -> str:
    """The URI with any password replaced by `***`, safe to print or log."""
    redacted = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri)
    return _QUERY_SECRETS.sub(r"\1***", redacted)


def redact_text(text: str, uri: str) -> str:
    """`text` with the URI, and its password wherever it appears, redacted."""
    match = _USERINFO.match(uri)
    text = text.replace(uri, redact_uri(uri))
    if match and match["pw"]:
        text = text.replace(match["pw"], "***")
    return text


def open_client(uri: str, timeout_ms: int) -> pymongo.MongoClient[dict[str, Any]]:
    """A client that fails within `timeout_ms` when the server cannot be reached."""
    try:
        return pymongo.MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=min(timeout_ms, 10_000),
            tz_aware=True,
            appname="loadmgr",
        )
    except pymongo.errors.ConfigurationError as exc:
        raise DatabaseError(
            f"invalid MongoDB URI {redact_uri(uri)}: {redact_text(str(exc), uri)}"
        ) from None
    except (ValueError, TypeError) as exc:
        raise DatabaseError(
            f"invalid MongoDB URI {redact_uri(uri)}: {redact_text(str(exc), uri)}"
        ) from None


@contextmanager
def translate_errors(uri: str) -> Iterator[None]:
    """Map pymongo exceptions raised inside the block to loadmgr's, secrets redacted."""
    try:
        yield
    except pymongo.errors.DuplicateKeyError as exc:
        raise Conflict(f"duplicate key: {_first_line(str(exc))}") from None
    except pymongo.errors.ServerSelectionTimeoutError as exc:
        raise DatabaseError(
            f"cannot reach MongoDB at {redact_uri(uri)}: {_short(redact_text(str(exc), uri))}",
            hint="check --mongo-uri / LOADMGR_MONGO_URI and that the server is running",
        ) from None
    except pymongo.errors.OperationFailure as exc:
        if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
            reason = exc.details.get("errmsg", exc) if exc.details else exc
            raise DatabaseError(
                f"MongoDB refused the request at {redact_uri(uri)}: "
                f"{_short(redact_text(str(reason), uri))}",
                hint="check the user, password and roles in the MongoDB URI",
            ) from None
        raise DatabaseError(f"MongoDB error: {_short(redact_text(str(exc), uri))}") from None
    except pymongo.errors.PyMongoError as exc:
        raise DatabaseError(f"MongoDB error: {_short(redact_text(str(exc), uri))}") from None


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _short(text: str, limit: int = 300) -> str:
    """One line, bounded: pymongo's topology descriptions run to kilobytes."""
    line = _first_line(text)
    line = line.split(", Timeout:")[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def get_database(
    client: pymongo.MongoClient[dict[str, Any]], name: str
) -> Database[dict[str, Any]]:
    """The named database, checked for a name MongoDB accepts."""
    if not name or any(ch in name for ch in '/\\. "$*<>:|?') or len(name) > 63:
        raise ValidationFailed(f"invalid database name {name!r}")
    return client[name]
