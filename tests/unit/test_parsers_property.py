"""Property tests (hypothesis) of every parser of user input, and of the output guards.

Durations, thresholds, `--meta`, config profiles: whatever the text, a parser answers or
refuses with its one documented exception. `sanitize()` never lets a control character
through; `redact_uri()` never lets a password through.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from loadmgr.cli.output import sanitize
from loadmgr.config import _PROFILE_KEYS, load_profile
from loadmgr.errors import ConfigError
from loadmgr.models import parse_duration, parse_meta, parse_threshold
from loadmgr.models.durations import MAX_DURATION_SEC
from loadmgr.models.thresholds import METRICS
from loadmgr.store.connection import redact_text, redact_uri

# --- durations -------------------------------------------------------------------------------


@given(
    hours=st.integers(0, 200), minutes=st.integers(0, 500), secs=st.integers(0, 5000),
    parts=st.sets(st.sampled_from("hms"), min_size=1), upper=st.booleans(),
    pad=st.sampled_from(["", " ", "\t"]),
)
def test_durations_in_locust_units(
    hours: int, minutes: int, secs: int, parts: set[str], upper: bool, pad: str
) -> None:
    values = {"h": hours, "m": minutes, "s": secs}
    text = "".join(f"{values[u]}{u}" for u in "hms" if u in parts)
    text = pad + (text.upper() if upper else text) + pad
    expected = sum(values[u] * {"h": 3600, "m": 60, "s": 1}[u] for u in parts)
    assume(expected <= MAX_DURATION_SEC)
    assert parse_duration(text) == expected


@given(st.integers(0, MAX_DURATION_SEC))
def test_bare_seconds(seconds: int) -> None:
    assert parse_duration(str(seconds)) == seconds
    assert parse_duration(seconds) == seconds


@given(st.text(max_size=30) | st.from_regex(r"\A-?[0-9hms .]{0,12}\Z"))
@example("1h30")
@example("5x")
@example("9" * 400)
@example("-5")
@example("")
def test_any_duration_text_parses_or_is_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert str(exc).startswith("invalid duration")
    else:
        assert isinstance(seconds, int) and 0 <= seconds <= MAX_DURATION_SEC


# --- thresholds (their full grammar is in test_thresholds_property.py) ----------------------


@given(st.text(max_size=60) | st.from_regex(r"\A.{0,10}:?[a-z_0-9]{0,10}[<>=]{0,3}\S{0,8}\Z"))
@example("p95<<3")
@example("GET /x:p95<1s")
@example(":p95<1")
@example("error_rate<101%")
@example("p95<1e9")
def test_any_threshold_text_parses_or_is_a_value_error(text: str) -> None:
    try:
        threshold = parse_threshold(text)
    except ValueError as exc:
        assert str(exc).startswith("invalid threshold")
    else:
        assert threshold.metric in METRICS and threshold.op in ("<", "<=", ">", ">=")
        assert threshold.limit >= 0
        assert threshold.scope is None or threshold.scope.strip() == threshold.scope != ""


@given(
    scope=st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30
    ).filter(lambda s: s.strip() != ""),
    metric=st.sampled_from(METRICS),
    value=st.integers(0, 100),
)
def test_a_request_scope_is_kept_whatever_it_holds(scope: str, metric: str, value: int) -> None:
    unit = "%" if metric == "error_rate" else ""
    threshold = parse_threshold(f"{scope}:{metric}<{value}{unit}")
    assert threshold.scope == scope.strip()


# --- --meta KEY=VALUE ----------------------------------------------------------------------

meta_keys = st.text(min_size=1, max_size=20).filter(
    lambda k: k.strip() == k and k != "" and "=" not in k and "." not in k
    and not k.startswith("$")
)


@given(st.dictionaries(meta_keys, st.text(max_size=50), max_size=6))
def test_meta_pairs_round_trip(meta: dict[str, str]) -> None:
    assert parse_meta([f"{key}={value}" for key, value in meta.items()]) == meta


@given(st.lists(st.text(max_size=30), max_size=6))
@example(["$where=1"])
@example(["a.b=1"])
@example(["=x"])
@example(["x"])
@example([" k =v"])
def test_any_meta_parses_to_safe_keys_or_is_a_value_error(pairs: list[str]) -> None:
    try:
        meta = parse_meta(pairs)
    except ValueError as exc:
        assert "--meta" in str(exc)
        return
    for key, value in meta.items():
        assert key and key == key.strip() and not key.startswith("$") and "." not in key
        assert any(pair.partition("=")[2] == value for pair in pairs)


# --- config files ------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters as \\uXXXX."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_string(value)


def write_config(profiles: dict[str, dict[str, Any]], default: str | None) -> str:
    lines = [] if default is None else [f"default_profile = {toml_string(default)}", ""]
    for name, keys in profiles.items():
        lines.append(f"[profiles.{toml_string(name)}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in keys.items())
        lines.append("")
    return "\n".join(lines)


scalars = (
    st.text(max_size=20) | st.integers(-(2**40), 2**40) | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
)
profile_values = scalars | st.lists(scalars, max_size=3)
profile_keys = st.sampled_from(sorted(_PROFILE_KEYS)) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12
)
profiles = st.dictionaries(
    st.text(max_size=12), st.dictionaries(profile_keys, profile_values, max_size=5), max_size=3
)


def load_text(text: str | bytes, name: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.toml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return load_profile(path, name, explicit=True)


def well_typed(profile: dict[str, Any]) -> bool:
    return all(
        key in _PROFILE_KEYS
        and isinstance(value, _PROFILE_KEYS[key])
        and not isinstance(value, bool)
        for key, value in profile.items()
    )


@given(profiles, st.none() | st.text(max_size=12), st.none() | st.text(max_size=12))
def test_generated_profiles_load_or_raise_config_error(
    written: dict[str, dict[str, Any]], default: str | None, chosen: str | None
) -> None:
    text = write_config(written, default)
    try:
        loaded = load_text(text, chosen)
    except ConfigError as exc:
        assert "config" in exc.message or "profile" in exc.message
        return
    # As the loader reads it: an empty --profile is none given, but an empty
    # default_profile is a name (TOML allows [profiles.""]).
    name = chosen or default
    if name is None:
        name = "default" if "default" in written else None
    if name is None:
        assert loaded == {}
    else:
        assert well_typed(written[name]) and loaded == written[name]


@given(st.text(max_size=200) | st.binary(max_size=100), st.none() | st.text(max_size=8))
@example("[profiles.default]\nenv = \n", None)
@example("profiles = 3\n", None)
@example("[profiles]\ndefault = 1\n", None)
@example('default_profile = 3\n[profiles.x]\n', None)
@example('default_profile = ["a"]\n[profiles.x]\n', None)
def test_any_config_text_loads_or_raises_config_error(
    text: str | bytes, chosen: str | None
) -> None:
    try:
        loaded = load_text(text, chosen)
    except ConfigError as exc:
        assert "config.toml" in exc.message or "profile" in exc.message
    else:
        assert isinstance(loaded, dict) and well_typed(loaded)


# --- sanitize() --------------------------------------------------------------------------

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@given(st.text(), st.booleans())
@example("\x1b[31mred\x1b[0m\x07\r\n\x9b2J\x00", False)
@example("\u202eevil\u2066", True)
def test_sanitize_leaves_no_control_character_but_newline(text: str, in_cell: bool) -> None:
    shown = sanitize(text, in_cell=in_cell)
    assert not CONTROL.search(shown)
    assert not re.search(r"[\u200b-\u200f\u202a-\u202e\u2066-\u2069]", shown)
    if in_cell:
        assert "\n" not in shown
    else:
        assert shown.count("\n") == text.count("\n")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs"))))
def test_sanitize_keeps_ordinary_text_as_it_is(text: str) -> None:
    assert sanitize(text) == text == sanitize(text, in_cell=True)


# --- redact_uri() ------------------------------------------------------------------------

# Passwords of real life: printable, '@' and ':' included; '*' left out, since the
# redaction mark itself is made of it.
passwords = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="*"),
    min_size=4, max_size=24,
)
users = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12)
hosts = st.sampled_from(
    ["127.0.0.1:27017", "db.example.com", "a:1,b:2,c:3", "[::1]:27017", "mongo-0.svc"]
)
tails = st.sampled_from(
    ["", "/", "/loadmgr", "/?authSource=admin", "/db?tls=true&replicaSet=rs0"]
)


@given(users, passwords, hosts, tails, st.sampled_from(["mongodb://", "mongodb+srv://"]),
       st.booleans())
@example("bob", "p@ss:w/rd", "h", "/", "mongodb://", False)
@example("bob", "s3cretpw", "127.0.0.1:27017", "/?authSource=admin", "mongodb://", True)
def test_redacted_uri_never_holds_the_password(
    user: str, password: str, host: str, tail: str, scheme: str, encoded: bool
) -> None:
    shown_password = quote(password, safe="") if encoded else password
    uri = f"{scheme}{user}:{shown_password}@{host}{tail}"
    assume(password not in f"{scheme}{user}:@{host}{tail}")
    assume(shown_password not in f"{scheme}{user}:@{host}{tail}")
    redacted = redact_uri(uri)
    assert password not in redacted and shown_password not in redacted
    assert redacted == f"{scheme}{user}:***@{host}{tail}"
    message = f"cannot connect to {uri}: auth failed for {user} with {password}"
    cleaned = redact_text(message, uri)
    assert password not in cleaned and shown_password not in cleaned


@given(st.text(max_size=80))
def test_redact_uri_of_anything_never_raises(text: str) -> None:
    assert isinstance(redact_uri(text), str)
    assert redact_uri("mongodb://" + text).startswith("mongodb://")


@pytest.mark.parametrize(
    "uri", ["mongodb://h/?password=hunter22", "mongodb://u@h/?tlsCertificateKeyFilePassword=hunter22"]
)
def test_secrets_in_query_options_are_redacted(uri: str) -> None:
    assert "hunter22" not in redact_uri(uri)


# Whatever its shape (issue 11): a scheme in capitals, none, another one, blanks first.
any_schemes = st.sampled_from(
    ["MONGODB://", "Mongodb+SRV://", "mongo://", "https://", "", " mongodb://", "\tmongodb://",
     "mongodb://", "mongodb+srv://", "x-y.z+w://"]
)


@given(any_schemes, users, passwords, hosts, tails)
@example(" MONGODB://", "bob", "s3cretpw", "h", "/")
@example("", "bob", "p@ss:w/rd", "h:1", "")
def test_redacted_uri_of_any_shape_never_holds_the_password(
    scheme: str, user: str, password: str, host: str, tail: str
) -> None:
    uri = f"{scheme}{user}:{password}@{host}{tail}"
    assume(password not in f"{scheme}{user}:@{host}{tail}")
    redacted = redact_uri(uri)
    assert password not in redacted
    assert redacted == f"{scheme}{user}:***@{host}{tail}"
    assert password not in redact_text(f"{uri} refused {password}", uri)


@given(
    st.sampled_from(["password", "PASSWORD", "tlsCertificateKeyFilePassword", "proxyPassword",
                     "authMechanismProperties", "token", "apiKey", "secret", "sig"]),
    # No "@": one in a query makes the whole start look like `user:password@` (all hidden).
    passwords.filter(lambda p: not any(c in p for c in "&;#@")),
    any_schemes,
)
def test_secret_query_options_of_any_name_are_redacted(
    key: str, secret: str, scheme: str
) -> None:
    uri = f"{scheme}h:1/db?authSource=admin&{key}={secret}&w=1"
    assume(secret not in f"{scheme}h:1/db?authSource=admin&{key}=&w=1")
    assert secret not in redact_uri(uri)
    assert f"{key}=***" in redact_uri(uri)
