"""Credentials in URIs and URLs: finding them, merging a password in, hiding them.

Pure text functions (no pymongo, no requests), shared by the settings, the store and the
services. Redaction assumes nothing about the shape of what it is given: a URI that is
malformed is exactly the one that ends up quoted in an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from loadmgr.errors import ValidationFailed

MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")
REDACTED = "***"

# Any scheme in any case (`MONGODB://`, `https://`, `mongo://`), after any blank, or none.
_SCHEME = re.compile(r"^(?P<lead>\s*)(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)?(?P<rest>.*)$", re.S)
# Query options that hold secrets, whatever driver or service reads them:
# `password=`, `tlsCertificateKeyFilePassword=`, `authMechanismProperties=AWS_SESSION_TOKEN:…`,
# `token=`, `apiKey=`, `secret=`…
_SECRET_OPTION = re.compile(
    r"(?P<key>(?:^|[?&;])[^=&;?#]*?"
    r"(?:pass|pwd|secret|token|credential|apikey|api_key|api-key|access_key|accesskey"
    r"|authmechanismproperties|signature|sig\b)[^=&;?#]*=)(?P<value>[^&;#]*)",
    re.I,
)


@dataclass(frozen=True)
class UserInfo:
    """The `user:password@` part of a URI, split around it."""

    head: str  # blanks and scheme before the user
    user: str
    password: str | None  # None: no ':' at all (a user without a password)
    tail: str  # from the '@' on

    def render(self, password: str | None) -> str:
        secret = "" if password is None else f":{password}"
        return f"{self.head}{self.user}{secret}{self.tail}"


def user_info(uri: str, *, in_authority: bool = False) -> UserInfo | None:
    """The user information of `uri`, whatever its scheme (or none); None without an '@'.

    For redaction it ends at the *last* '@': a password with an unescaped '@' or '/'
    (which pymongo refuses) must still be hidden whole when the refusal is printed.
    `in_authority` looks only before the first '/', '?' or '#', where a URI without a
    password keeps its user, so an '@' in the query is not taken for one.
    """
    match = _SCHEME.match(uri)
    if match is None:  # pragma: no cover - the pattern matches every string
        return None
    rest = match["rest"]
    end = len(rest)
    if in_authority:
        found = re.search(r"[/?#]", rest)
        end = found.start() if found else end
    at = rest.rfind("@", 0, end)
    if at == -1:
        return None
    user, sep, password = rest[:at].partition(":")
    head = match["lead"] + (match["scheme"] or "")
    return UserInfo(head, user, password if sep else None, rest[at:])


def _query_secrets(uri: str) -> list[str]:
    return [m["value"] for m in _SECRET_OPTION.finditer(uri) if m["value"]]


def redact_uri(uri: str) -> str:
    """`uri` with every credential-looking part as `***`, safe to print or log.

    `user:password@` keeps the user; secret query options keep their name.
    """
    info = user_info(uri)
    redacted = info.render(REDACTED if info.password is not None else None) if info else uri
    return _SECRET_OPTION.sub(lambda m: m["key"] + REDACTED, redacted)


def redact_text(text: str, uri: str) -> str:
    """`text` with the URI, and each of its secrets wherever it appears, redacted."""
    text = text.replace(uri, redact_uri(uri))
    info = user_info(uri)
    secrets = _query_secrets(uri)
    if info is not None and info.password:
        secrets.append(info.password)
    for secret in secrets:
        for form in {secret, unquote_plus(secret), unquote(secret)}:
            if form:
                text = text.replace(form, REDACTED)
    return text


def check_mongo_uri(uri: str) -> str:
    """`uri` without surrounding blanks; ValidationFailed when it cannot be a MongoDB URI.

    Refused here, before any connection: pymongo takes `notauri` for a host name and
    fails only after its server selection timeout.
    """
    cleaned = uri.strip()
    if not cleaned.startswith(MONGO_SCHEMES):
        raise ValidationFailed(
            f"invalid MongoDB URI {redact_uri(uri)!r}: it must start with mongodb:// or "
            "mongodb+srv:// (lowercase)",
            hint="e.g. mongodb://user@mongo.example.com:27017/?authSource=admin",
        )
    info = user_info(cleaned, in_authority=True)
    after_user = info.tail[1:] if info is not None else cleaned.split("://", 1)[1]
    if re.search(r"\s", re.split(r"[/?#]", after_user, maxsplit=1)[0]):
        # pymongo would look such a host name up, and fail only after its timeout.
        raise ValidationFailed(
            f"invalid MongoDB URI {redact_uri(uri)!r}: a host name cannot hold blanks",
            hint="e.g. mongodb://user@mongo.example.com:27017/?authSource=admin",
        )
    return cleaned


def with_password(uri: str, password: str) -> str:
    """`uri` with `password` (percent-encoded) after its user name.

    ValidationFailed when the URI names no user, or already holds a password: which of
    the two was meant cannot be guessed.
    """
    shown = redact_uri(uri)
    info = user_info(uri, in_authority=True)
    if info is None or not info.user:
        raise ValidationFailed(
            f"a MongoDB password was given, but the URI {shown!r} names no user",
            hint="put the user in the URI: mongodb://USER@host/?authSource=admin",
        )
    if info.password is not None:
        raise ValidationFailed(
            f"a MongoDB password was given, but the URI {shown!r} already holds one",
            hint="remove the password from the URI, or do not give it separately",
        )
    return info.render(quote(password, safe=""))


def url_has_credentials(url: str) -> bool:
    """Whether an http(s) URL carries `user[:password]@` before its host."""
    try:
        return "@" in urlsplit(url.strip()).netloc
    except ValueError:  # e.g. an unbalanced '[': not a URL, let its validation say so
        return False


def without_credentials(url: str) -> str:
    """`url` with no `user:password@` and no credential-looking query option (`token=…`,
    `sig=…`): removed, not masked, since the result is stored and shown (a CI build URL
    may carry a token, and nothing of a secret, not even its name's value, is kept)."""
    info = user_info(url, in_authority=True)
    if info is not None:
        url = info.head + info.tail[1:]
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [
        option
        for option in re.split(r"[&;]", parts.query)
        if option and not _SECRET_OPTION.match(option)
    ]
    return parts._replace(query="&".join(kept)).geturl()
