"""Settings: option, then environment, then config-file profile, then default.

Options and environment variables are read by the CLI (Typer does both); this module adds
the TOML profiles underneath and the defaults below those.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from loadmgr.errors import ConfigError, ValidationFailed
from loadmgr.local_files import read_regular_file
from loadmgr.uris import check_mongo_uri, with_password

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_DATABASE = "loadmgr"
DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 10_000
# An hour: longer is a typo, and pymongo refuses a billion or more with a URI-shaped error.
MAX_SERVER_SELECTION_TIMEOUT_MS = 3_600_000
OUTPUT_FORMATS = ("table", "json", "jsonl", "csv")

# Keys a profile may set, with the type each must have.
_PROFILE_KEYS: dict[str, type] = {
    "mongo_uri": str,
    "database": str,
    "tenant": str,
    "env": str,
    "user": str,
    "output": str,
    "server_selection_timeout_ms": int,
    "mongo_tls_ca_file": str,
    "mongo_tls_cert_key_file": str,
    "mongo_password_file": str,
}
# A password file holds one line; anything bigger is not one. Nor is a config file this big.
PASSWORD_FILE_MAX_BYTES = 4_096
CONFIG_MAX_BYTES = 1_000_000
# A newline or another control character: never in a value written into a line of text.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def loadmgr_home() -> Path:
    """The base directory for the embedded store, logs and spool (`LOADMGR_HOME`)."""
    override = os.environ.get("LOADMGR_HOME")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("loadmgr", appauthor=False))


def default_config_path() -> Path:
    """Where the config file is looked for when neither --config nor LOADMGR_CONFIG says."""
    if os.environ.get("LOADMGR_HOME"):
        return loadmgr_home() / "config.toml"
    from platformdirs import user_config_dir

    return Path(user_config_dir("loadmgr", appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about where and as whom it works."""

    mongo_uri: str | None = None
    database: str = DEFAULT_DATABASE
    tenant: str | None = None
    env: str | None = None
    user: str = ""
    output: str | None = None
    server_selection_timeout_ms: int = DEFAULT_SERVER_SELECTION_TIMEOUT_MS
    mongo_tls_ca_file: str | None = None
    mongo_tls_cert_key_file: str | None = None
    # Given apart from the URI (a file, or LOADMGR_MONGO_PASSWORD) and merged into it in
    # memory only; never shown (repr=False), never written anywhere.
    mongo_password: str | None = field(default=None, repr=False)
    mongo_password_file: str | None = None
    debug: bool = False
    profile: str | None = None
    config_path: Path | None = None
    home: Path = field(default_factory=loadmgr_home)

    @property
    def connection_uri(self) -> str | None:
        """The URI to connect with: the configured one, with the password merged in."""
        if self.mongo_uri is None or self.mongo_password is None:
            return self.mongo_uri
        return with_password(self.mongo_uri, self.mongo_password)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (e.g. a container without a passwd entry)
        return "unknown"


def load_profile(path: Path, name: str | None, *, explicit: bool) -> dict[str, Any]:
    """The named profile's keys (or `default`), validated; {} when there is no file."""
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        if name:
            raise ConfigError(f"profile {name!r} not found: no config file at {path}")
        return {}
    if path == Path(os.devnull):  # the usual way to say "no config file"
        return {}
    try:
        # Never a blocking or endless read: `--config` may name a FIFO or /dev/zero.
        raw = read_regular_file(path, "config file", max_bytes=CONFIG_MAX_BYTES)
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc})") from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"config file {path}: [profiles] must be a table")
    chosen = name or data.get("default_profile")
    if chosen is not None and not isinstance(chosen, str):
        raise ConfigError(f"config file {path}: default_profile must be a string")
    if chosen is None:
        chosen = "default" if "default" in profiles else None
    if chosen is None:
        return {}
    if chosen not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"profile {chosen!r} not found in {path} (profiles: {known})")
    profile = profiles[chosen]
    if not isinstance(profile, dict):
        raise ConfigError(f"config file {path}: profile {chosen!r} must be a table")
    for key, value in profile.items():
        expected = _PROFILE_KEYS.get(key)
        if expected is None:
            raise ConfigError(
                f"config file {path}: profile {chosen!r} has unknown key {key!r} "
                f"(known: {', '.join(_PROFILE_KEYS)})"
            )
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(
                f"config file {path}: profile {chosen!r} key {key!r} must be {expected.__name__}"
            )
    return dict(profile)


def resolve_settings(
    *,
    mongo_uri: str | None = None,
    database: str | None = None,
    tenant: str | None = None,
    env: str | None = None,
    user: str | None = None,
    output: str | None = None,
    profile: str | None = None,
    config: Path | None = None,
    server_selection_timeout_ms: int | None = None,
    mongo_tls_ca_file: str | None = None,
    mongo_tls_cert_key_file: str | None = None,
    mongo_password_file: str | None = None,
    mongo_password: str | None = None,
    debug: bool = False,
) -> Settings:
    """Settings from options/env values (already merged by the CLI), a profile, defaults.

    The MongoDB password, when given apart from the URI, comes from `mongo_password_file`
    (--mongo-password-file / LOADMGR_MONGO_PASSWORD_FILE), else `mongo_password`
    (LOADMGR_MONGO_PASSWORD), else the profile's `mongo_password_file`.
    """
    for option, variable, text, without in (
        ("--tenant", "LOADMGR_TENANT", tenant, "work across every tenant"),
        ("--env", "LOADMGR_ENV", env, "work across every environment"),
        ("--database", "LOADMGR_DATABASE", database, f"use the {DEFAULT_DATABASE!r} database"),
        ("--mongo-uri", "LOADMGR_MONGO_URI", mongo_uri, "use the embedded store"),
    ):
        # Given, but empty: typically `--tenant "$TEAM"` with $TEAM unset. Falling back to
        # the profile's value or the default would silently widen the scope, or write to
        # another database than the one meant.
        if text is not None and not text.strip():
            raise ConfigError(
                f"{option} (or {variable}) is given but empty",
                hint=f"leave {option} out to {without}, or give one",
            )
    config_path = config or default_config_path()
    values = load_profile(config_path, profile, explicit=config is not None)
    given = {
        "mongo_uri": mongo_uri,
        "database": database,
        "tenant": tenant,
        "env": env,
        "user": user,
        "output": output,
        "server_selection_timeout_ms": server_selection_timeout_ms,
        "mongo_tls_ca_file": mongo_tls_ca_file,
        "mongo_tls_cert_key_file": mongo_tls_cert_key_file,
    }
    for key, value in given.items():
        if value not in (None, ""):
            values[key] = value
    if mongo_password_file or mongo_password is not None:
        # The environment's password beats the profile's file, as everywhere.
        values["mongo_password_file"] = mongo_password_file or None
    settings = Settings(debug=debug, profile=profile, config_path=config_path)
    known = {f.name for f in fields(Settings)}
    settings = replace(settings, **{k: v for k, v in values.items() if k in known})
    settings = _with_mongo_password(settings, mongo_password)
    if not settings.user:
        settings = replace(settings, user=_os_user())
    if settings.output is not None and settings.output not in OUTPUT_FORMATS:
        raise ConfigError(
            f"unknown output format {settings.output!r} (one of {', '.join(OUTPUT_FORMATS)})"
        )
    timeout_ms = settings.server_selection_timeout_ms
    if not 0 < timeout_ms <= MAX_SERVER_SELECTION_TIMEOUT_MS:
        raise ConfigError(
            f"server selection timeout must be 1 to {MAX_SERVER_SELECTION_TIMEOUT_MS} ms, "
            f"got {timeout_ms}"
        )
    for label, value in (("tenant", settings.tenant), ("env", settings.env)):
        if value is not None and (not value.strip() or len(value) > 200):
            raise ConfigError(f"{label} must have 1 to 200 characters")
    scope = (("tenant", settings.tenant), ("env", settings.env), ("database", settings.database))
    for label, value in scope:
        # They are written into crontab lines and unit files (`schedules install`), and
        # into the environment of detached collectors: a newline there starts a new line.
        if value is not None and CONTROL_CHARACTERS.search(value):
            raise ConfigError(f"{label} {value!r} holds a newline or another control character")
    return settings


def _with_mongo_password(settings: Settings, from_environment: str | None) -> Settings:
    """`settings` with its URI checked and the separately given password read and checked.

    Checked now, so a malformed URI or a password that cannot be merged is a usage error
    before anything connects.
    """
    uri = settings.mongo_uri
    if uri is not None:
        try:
            uri = check_mongo_uri(uri)
        except ValidationFailed as exc:
            raise ConfigError(exc.message, exc.hint) from None
    password = from_environment
    if settings.mongo_password_file:
        password = read_password_file(Path(settings.mongo_password_file).expanduser())
    elif password is not None and not password:
        raise ConfigError(
            "LOADMGR_MONGO_PASSWORD is set but empty",
            hint="unset it, or set it to the password of the URI's user",
        )
    settings = replace(settings, mongo_uri=uri, mongo_password=password)
    if password is not None:
        if uri is None:
            raise ConfigError(
                "a MongoDB password was given, but no MongoDB URI",
                hint="set --mongo-uri / LOADMGR_MONGO_URI to mongodb://USER@host/…",
            )
        try:
            with_password(uri, password)  # refused now, not when a command connects
        except ValidationFailed as exc:
            raise ConfigError(exc.message, exc.hint) from None
    return settings


def read_password_file(path: Path) -> str:
    """The password in `path`, without its final newline; the file must be private."""
    data = read_regular_file(
        path, "password file", max_bytes=PASSWORD_FILE_MAX_BYTES, private=True
    )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"password file {str(path)!r} is not UTF-8 text") from None
    # `echo secret > file` adds a newline that is not part of the password; nothing else
    # is stripped, since a password may begin or end with a blank.
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ConfigError(f"password file {str(path)!r} is empty")
    if "\n" in password or "\r" in password:
        raise ConfigError(f"password file {str(path)!r} has more than one line")
    return password
