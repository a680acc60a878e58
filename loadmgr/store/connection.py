"""Connecting to MongoDB and turning pymongo's errors into ours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, unquote_plus

import bson.errors
import pymongo
import pymongo.errors
from pymongo.database import Database

from loadmgr.errors import Conflict, DatabaseError, DatabaseRefused, ValidationFailed

_SCHEME = re.compile(r"^(?P<scheme>mongodb(?:\+srv)?://)(?P<rest>.*)$", re.S)
# Words of the ssl module's errors: a handshake that failed, not a server that is down.
_TLS_MARKERS = ("SSL", "CERTIFICATE", "violation of protocol", "TLS")
_QUERY_SECRETS = re.compile(
    r"((?:password|tlsCertificateKeyFilePassword|authMechanismProperties)=)[^&]*", re.I
)


def _password(uri: str) -> tuple[str, str, str] | None:
    """(scheme + user, password, rest from the last '@') when the URI carries a password.

    The user information ends at the *last* '@': a password with an unescaped '@' (which
    pymongo refuses) must still be hidden whole when the refusal is printed.
    """
    match = _SCHEME.match(uri)
    if match is None:
        return None
    rest = match["rest"]
    at = rest.rfind("@")
    if at == -1:
        return None
    user, sep, password = rest[:at].partition(":")
    if not sep:
        return None
    return match["scheme"] + user, password, rest[at:]


def redact_uri(uri: str) -> str:
    """The URI with any password replaced by `***`, safe to print or log."""
    parts = _password(uri)
    redacted = f"{parts[0]}:***{parts[2]}" if parts else uri
    return _QUERY_SECRETS.sub(r"\1***", redacted)


def redact_text(text: str, uri: str) -> str:
    """`text` with the URI, and its password wherever it appears, redacted."""
    text = text.replace(uri, redact_uri(uri))
    parts = _password(uri)
    if parts and parts[1]:
        password = parts[1]
        for form in {password, unquote_plus(password), unquote(password)}:
            if form:
                text = text.replace(form, "***")
    return text


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
    try:
        return pymongo.MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=min(timeout_ms, 10_000),
            tz_aware=True,
            appname="loadmgr",
            **tls,
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
    except pymongo.errors.OperationFailure as exc:
        if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
            reason = exc.details.get("errmsg", exc) if exc.details else exc
            raise DatabaseError(
                f"MongoDB refused the request at {redact_uri(uri)}: "
                f"{_short(redact_text(str(reason), uri))}",
                hint="check the user, password and roles in the MongoDB URI",
            ) from None
        raise DatabaseRefused(f"MongoDB error: {_short(redact_text(str(exc), uri))}") from None
    except (bson.errors.BSONError, OverflowError) as exc:
        # A document MongoDB cannot hold (an 8-byte int overflow, a 16 MB document).
        raise DatabaseRefused(f"MongoDB cannot store it: {_short(str(exc))}") from None
    except pymongo.errors.PyMongoError as exc:
        raise DatabaseError(f"MongoDB error: {_short(redact_text(str(exc), uri))}") from None


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
