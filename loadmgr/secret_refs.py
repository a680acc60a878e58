"""Secret references: the names of environment variables and files that stored documents
point at (a cluster's header or login, a webhook's URL), resolved only as far as the
machine that reads them allows; and masking a secret in every form it may be echoed in.

Whoever can write the database can store any reference. Read blindly, a reference to
`AWS_SECRET_ACCESS_KEY` or `~/.ssh/id_ed25519` would send that machine's secret to a URL
the writer chose (docs/reliability.md, "Trust model"). So a machine resolves:

- an environment variable only when its name starts with `LOADMGR_SECRET_` or is listed in
  its own `LOADMGR_ALLOWED_SECRETS` (names separated by commas or blanks);
- a file only when its absolute path, without any `..`, lies under `$LOADMGR_HOME/secrets/`
  or a directory listed in its own `LOADMGR_ALLOWED_SECRET_DIRS` (separated by `:`).

The allowances live in the machine's environment, never in the database, and are passed on
to the collectors it spawns (they inherit the environment). Symbolic links inside an allowed
directory are the machine owner's own choice and are followed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from html.entities import html5
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from loadmgr.errors import ValidationFailed

SECRET_ENV_PREFIX = "LOADMGR_SECRET_"
# A locustfile is Python: a schedule on the `local` cluster makes the ticking machine run
# code from the database. Only a machine whose own environment says so does that.
TICK_LOCAL_VAR = "LOADMGR_TICK_LOCAL"
ALLOWED_SECRETS_VAR = "LOADMGR_ALLOWED_SECRETS"
ALLOWED_SECRET_DIRS_VAR = "LOADMGR_ALLOWED_SECRET_DIRS"
SECRETS_DIR_NAME = "secrets"  # under LOADMGR_HOME
MASK = "***"
# A form of a secret shorter than this is not masked on its own: masking every `ab` of a
# message would hide the message, not a secret.
MASKED_FORM_MIN = 4

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretRefused(ValidationFailed):
    """A stored reference this machine does not allow to be read (its name, never a value)."""


def tick_runs_local_code() -> bool:
    """Whether this machine's `schedules tick` may start `local` runs (their locustfile is
    code from the database, run as this machine's user): only when it says so itself."""
    return os.environ.get(TICK_LOCAL_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def allowed_env_names() -> frozenset[str]:
    """The variable names this machine lists in LOADMGR_ALLOWED_SECRETS."""
    listed = os.environ.get(ALLOWED_SECRETS_VAR, "")
    return frozenset(name for name in re.split(r"[\s,]+", listed) if name)


def allowed_secret_dirs() -> list[Path]:
    """`$LOADMGR_HOME/secrets` and the directories of LOADMGR_ALLOWED_SECRET_DIRS, absolute."""
    from loadmgr.config import loadmgr_home

    dirs = [loadmgr_home() / SECRETS_DIR_NAME]
    dirs += [Path(d) for d in os.environ.get(ALLOWED_SECRET_DIRS_VAR, "").split(os.pathsep) if d]
    found: list[Path] = []
    for directory in dirs:
        absolute = Path(os.path.abspath(directory.expanduser()))
        for form in (absolute, Path(os.path.realpath(absolute))):
            if form not in found:
                found.append(form)
    return found


def check_env_reference(name: str | None, what: str) -> str:
    """`name` when this machine allows it to be read for a secret; SecretRefused naming it."""
    name = name or ""
    if not _ENV_NAME.fullmatch(name):
        raise SecretRefused(f"{what}: {name!r} is not an environment variable name")
    if not name.startswith(SECRET_ENV_PREFIX) and name not in allowed_env_names():
        raise SecretRefused(
            f"{what}: environment variable {name} is not one this machine allows for secrets",
            hint=f"name it {SECRET_ENV_PREFIX}…, or list it in {ALLOWED_SECRETS_VAR} "
            "on every machine that uses it",
        )
    return name


def check_file_reference(path: str | None, what: str) -> Path:
    """The absolute path of `path` when it lies in a directory this machine allows for
    secrets; SecretRefused naming it otherwise. A relative path is taken from the current
    directory, as it was given; `..` is refused, since it could climb out of the directory."""
    raw = path or ""
    if not raw.strip() or "\x00" in raw:
        raise SecretRefused(f"{what}: {raw!r} is not a file path")
    given = Path(raw).expanduser()
    if ".." in given.parts:
        raise SecretRefused(
            f"{what}: file {raw!r} has a '..' in its path, which no secret may have (it "
            "could climb out of the directories this machine allows)"
        )
    absolute = Path(os.path.abspath(given))
    if not any(_is_under(absolute, directory) for directory in allowed_secret_dirs()):
        raise SecretRefused(
            f"{what}: file {raw!r} is not in a directory this machine allows for secrets",
            hint=f"put it under $LOADMGR_HOME/{SECRETS_DIR_NAME}/, or list its directory in "
            f"{ALLOWED_SECRET_DIRS_VAR} on every machine that uses it",
        )
    return absolute


# A secret or a URL is a line: a file much larger than this is not one (and is not read).
SECRET_FILE_MAX_BYTES = 64_000


def read_file_secret(path: str | None, what: str) -> str:
    """The one line held by the secret file at `path` (stripped), read only where this
    machine allows it and never blocking. SecretRefused for a path it does not allow,
    ValidationFailed `WHAT: …` naming the file (never its content) for one that cannot
    serve: missing, not a regular file, too large, not UTF-8, empty."""
    from loadmgr.local_files import read_regular_file

    checked = check_file_reference(path, what)
    try:
        data = read_regular_file(checked, "secret file", max_bytes=SECRET_FILE_MAX_BYTES)
        value = data.decode("utf-8").strip()
    except ValidationFailed as exc:
        raise ValidationFailed(f"{what}: {exc.message}", hint=exc.hint) from None
    except UnicodeDecodeError:
        raise ValidationFailed(f"{what}: secret file {checked} is not UTF-8 text") from None
    if not value:
        raise ValidationFailed(f"{what}: secret file {checked} is empty")
    return value


def _is_under(path: Path, directory: Path) -> bool:
    return path != directory and path.parts[: len(directory.parts)] == directory.parts


def check_reference(env: str | None, file: str | None, what: str) -> None:
    """Whichever of `env` and `file` is given, checked (the other is None)."""
    if env:
        check_env_reference(env, what)
    elif file:
        check_file_reference(file, what)


def mask_secrets(text: str, secrets: Iterable[str | None], mask: str = MASK) -> str:
    """`text` with every secret replaced by `mask`, in every form a receiver or a proxy
    may echo it: as given, percent-decoded, plus-decoded (`+` read as a blank) and
    percent-encoded, letters in either case (`%2b` and `%2B` alike); and, sign by sign,
    quoted in a JSON string or an HTML page (`_sign_pattern`)."""
    forms: set[str] = set()
    decoded: set[str] = set()  # the forms a JSON string or an HTML page may quote escaped
    for secret in secrets:
        if secret:
            forms.update(secret_forms(secret))
            decoded.update((secret, unquote(secret), unquote_plus(secret)))
    kept = sorted((f for f in forms if len(f) >= MASKED_FORM_MIN and f.strip()), key=len)
    if not kept:
        return text
    pattern = re.compile(
        "|".join(
            "".join(map(_sign_pattern, f)) if f in decoded else re.escape(f) for f in reversed(kept)
        ),
        re.IGNORECASE,
    )
    return pattern.sub(lambda _: mask, text)


def _sign_pattern(char: str) -> str:
    """What matches `char` wherever a secret is quoted: itself, and for anything but an
    ASCII letter or digit its escapes, since an echo may escape any of them (PHP's JSON
    writes `\\/`, .NET's `\\u002B`, Python's `\\u00e9`; an HTML page `&#43;`, `&#x2B;`,
    `&plus;`), each sign on its own (a receiver may escape some and not others)."""
    if char.isascii() and char.isalnum():
        return re.escape(char)
    code = ord(char)
    units = char.encode("utf-16-be")
    json_escape = "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
    )
    literal = [json_escape, *(f"&{name}" for name in _ENTITY_NAMES.get(char, ()))]
    literal += [escape for escape, sign in _JSON_SHORT_ESCAPES.items() if sign == char]
    # The escapes before the sign itself: `\\` is masked whole, never its first half.
    forms = [*map(re.escape, literal), f"&#0*{code};", f"&#x0*{code:x};", re.escape(char)]
    return f"(?:{'|'.join(forms)})"


# JSON's two-character escapes (`\\/` is optional: PHP and some others write it).
_JSON_SHORT_ESCAPES = {
    "\\/": "/", '\\"': '"', "\\\\": "\\", "\\b": "\b", "\\f": "\f",
    "\\n": "\n", "\\r": "\r", "\\t": "\t",
}  # fmt: skip
# HTML's named references of one character (`plus;`, `sol;`, `amp;`…), by the character.
_ENTITY_NAMES: dict[str, list[str]] = {}
for _name, _sign in html5.items():
    if len(_sign) == 1 and _name.endswith(";"):
        _ENTITY_NAMES.setdefault(_sign, []).append(_name)


def secret_forms(secret: str) -> set[str]:
    """The forms `mask_secrets` masks: the secret decoded and encoded, each once and twice."""
    forms = {secret}
    for _ in range(2):
        for form in list(forms):
            forms.update((unquote(form), unquote_plus(form)))
    for form in list(forms):
        forms.update((quote(form, safe=""), quote(form), quote_plus(form)))
    return forms
