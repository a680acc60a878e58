"""Where a cluster's credentials come from: environment variables or files, read when used.

The stored `ClusterAuth` only names them (docs/design.md, "Stored documents"), and nothing
here ever puts a secret in a message. A name is read only if this machine allows it
(`loadmgr.secret_refs`): whoever writes the database chooses the names.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from loadmgr.errors import ClusterError, ValidationFailed
from loadmgr.models import ClusterAuth
from loadmgr.secret_refs import (
    SecretRefused,
    check_env_reference,
    check_file_reference,
    read_file_secret,
)

AUTH_TYPES = ("none", "header", "login")
DEFAULT_LOGIN_PATH = "/login_submit"


def check_auth(auth: ClusterAuth) -> None:
    """Raise ValidationFailed when `auth` cannot work whatever the environment holds."""
    if auth.type not in AUTH_TYPES:
        raise ValidationFailed(
            f"unknown cluster auth type {auth.type!r} (one of {', '.join(AUTH_TYPES)})"
        )
    if auth.type == "header" and not (auth.headerName and (auth.secretEnv or auth.secretFile)):
        raise ValidationFailed("header auth needs a header name and a secret env or file")
    if auth.type == "login" and not (auth.usernameEnv and auth.passwordEnv):
        raise ValidationFailed("login auth needs a username env and a password env")


def check_references(auth: ClusterAuth) -> None:
    """SecretRefused (exit 2) naming the first variable or file of `auth` this machine does
    not allow to be read for a secret; reads nothing."""
    if auth.type == "header":
        if auth.secretEnv:
            check_env_reference(auth.secretEnv, "cluster auth")
        else:
            check_file_reference(auth.secretFile, "cluster auth")
    elif auth.type == "login":
        check_env_reference(auth.usernameEnv, "cluster auth")
        check_env_reference(auth.passwordEnv, "cluster auth")


def auth_headers(auth: ClusterAuth) -> dict[str, str]:
    """The headers to send with every request (empty unless auth is `header`)."""
    if auth.type != "header" or not auth.headerName:
        return {}
    return {auth.headerName: read_secret(auth)}


def read_secret(auth: ClusterAuth) -> str:
    """The header secret, from `secretEnv` or else `secretFile`, stripped."""
    if auth.secretEnv:
        return env_value(auth.secretEnv)
    try:
        return read_file_secret(auth.secretFile, "cluster auth")
    except ValidationFailed as exc:  # refused here, or no file that can serve
        raise ClusterError(exc.message, hint=exc.hint) from None


def env_value(name: str | None, *, strip: bool = True) -> str:
    """The value of environment variable `name`; ClusterError naming it when unset, or
    when this machine does not allow it to be read for a secret."""
    try:
        check_env_reference(name, "cluster auth")
    except SecretRefused as exc:
        raise ClusterError(exc.message, hint=exc.hint) from None
    value = os.environ.get(name or "", "")
    value = value.strip() if strip else value
    if not name or not value:
        raise ClusterError(f"cluster auth: environment variable {name or '?'} is not set")
    return value


def login_request(auth: ClusterAuth) -> tuple[str, list[tuple[str, str]]]:
    """The path (under the base path) and form of a `--web-login` login."""
    path = "/" + (auth.loginPath or DEFAULT_LOGIN_PATH).lstrip("/")
    # Credentials are sent exactly as set: a password may end with a space.
    form = [
        ("username", env_value(auth.usernameEnv, strip=False)),
        ("password", env_value(auth.passwordEnv, strip=False)),
    ]
    return path, form


def login_rejected(status_code: int, location: str) -> bool:
    """Whether a login answer means failure: an error, or a redirect back to the login page."""
    return status_code >= 400 or urlsplit(location).path.rstrip("/").endswith("/login")
