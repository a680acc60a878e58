"""`schedules install`: the crontab line (or systemd timer and service) that ticks every
minute on this machine, with the environment it needs. It prints; it installs nothing.

The notifications of the schedules' runs read their webhooks from variables the tick must
have too: their names (never their values) are printed with the line, to be filled in, and
said in a note; else every notification under cron would be recorded "NOT sent".

The MongoDB URI is printed with its password as `***`: a crontab or unit file is read by
more people and tools than the password should be. The password belongs in a file named
by LOADMGR_MONGO_PASSWORD_FILE (chmod 600), which the tick reads itself.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from loadmgr.config import CONTROL_CHARACTERS, DEFAULT_DATABASE, Settings
from loadmgr.errors import ValidationFailed
from loadmgr.uris import redact_uri

if TYPE_CHECKING:
    from loadmgr.store import Store

UNIT_NAME = "loadmgr-schedules-tick"


def loadmgr_command() -> list[str]:
    """This loadmgr, by absolute path: cron's PATH is not the user's."""
    script = Path(sys.executable).parent / "loadmgr"
    if script.exists():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "loadmgr"]


def tick_environment(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """The variables a tick needs to reach the same database in the same scope, and notes
    for the person installing it."""
    from loadmgr.service.runs.background import connection_environment

    env: dict[str, str] = {"LOADMGR_HOME": str(settings.home)}
    if settings.database != DEFAULT_DATABASE:
        env["LOADMGR_DATABASE"] = settings.database
    notes: list[str] = []
    for name, value in connection_environment(settings).items():
        if name == "LOADMGR_MONGO_PASSWORD":
            if value:
                notes.append(
                    "LOADMGR_MONGO_PASSWORD is not printed: put the password in a file only "
                    "the cron user may read (chmod 600) and set LOADMGR_MONGO_PASSWORD_FILE"
                )
        elif name == "LOADMGR_MONGO_URI" and value:
            env[name] = redact_uri(value)
            if env[name] != value:
                notes.append(
                    "the URI's secrets are shown as ***, never printed: put the password in "
                    "a file only the cron user may read (chmod 600) and set "
                    "LOADMGR_MONGO_PASSWORD_FILE to it, instead of writing it here"
                )
        elif value:
            env[name] = value
    from loadmgr.secret_refs import ALLOWED_SECRET_DIRS_VAR, ALLOWED_SECRETS_VAR, TICK_LOCAL_VAR

    for name in (ALLOWED_SECRETS_VAR, ALLOWED_SECRET_DIRS_VAR, TICK_LOCAL_VAR):
        if os.environ.get(name):  # names and directories, never a secret: the tick needs them
            env[name] = os.environ[name]
    if not settings.mongo_uri:
        notes.append(
            "no MongoDB URI is configured: the tick uses this machine's embedded store, so "
            "schedules run on this machine only; set LOADMGR_MONGO_URI to tick from several"
        )
    return env, notes


# Schedules read to find the tests whose notifications matter: far more than a team has.
SCHEDULES_READ = 10_000


def notification_variables(store: Store) -> dict[str, list[str]]:
    """Variable name → the notifications reading their webhook from it, of those that may
    be told about a run of a schedule (of its test, a tag of its test, or any run)."""
    schedules = store.schedules.find_many(limit=SCHEDULES_READ)
    test_ids = {str(s.get("loadTestId")) for s in schedules}
    tags = {
        tag
        for test_id in test_ids
        if (test := store.tests.find_by_id(test_id)) is not None
        for tag in test.tags or []
    }
    needed: dict[str, list[str]] = {}
    for notification in store.notifications.find_many() if schedules else []:
        if notification.webhookEnv is None:
            continue
        if notification.testId is not None and notification.testId not in test_ids:
            continue
        if notification.tag is not None and notification.tag not in tags:
            continue
        needed.setdefault(notification.webhookEnv, []).append(notification.name)
    return needed


def _variable_notes(needed: dict[str, list[str]]) -> list[str]:
    return [
        f"{name} must be set for the tick too (the webhook of notification"
        f"{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)}): fill in its "
        "value where the text shows it, or every notification under the tick is NOT sent"
        for name, names in needed.items()
    ]


def tick_log(settings: Settings) -> Path:
    return settings.home / "logs" / "schedules-tick.log"


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = re.compile(r"[A-Za-z0-9_./:@*+,=?&-]+")  # written as it is, without quotes


def _checked(env: dict[str, str], needed: dict[str, list[str]] | None) -> list[str]:
    """ValidationFailed naming the first variable whose value holds a control character
    (a newline would start a line the value's author chose: a cron job, an `ExecStartPre=`);
    the notification variables whose names are names (a stored one may be anything)."""
    for name, value in env.items():
        if CONTROL_CHARACTERS.search(value):
            raise ValidationFailed(
                f"{name} holds a newline or another control character: it cannot be written "
                "into a crontab or unit file"
            )
    return [name for name in needed or {} if _NAME.fullmatch(name)]


def _cron_value(name: str, value: str) -> str:
    """A crontab variable line: cron takes the value verbatim, minus one pair of quotes."""
    if _PLAIN.fullmatch(value):
        return f"{name}={value}"
    quote = "'" if '"' in value else '"'
    if quote in value:
        raise ValidationFailed(f"{name} holds both kinds of quotes: cron cannot be given it")
    return f"{name}={quote}{value}{quote}"


def _cron_command(argv: list[str]) -> str:
    """`argv` for cron's command field: quoted for the shell, and every `%` escaped (cron
    turns a bare `%` into a newline before the shell sees the line)."""
    return shlex.join(argv).replace("%", "\\%")


def crontab_text(
    settings: Settings, needed: dict[str, list[str]] | None = None
) -> tuple[str, list[str]]:
    """The crontab lines (variables, then the every-minute line), and the notes; `needed`:
    the notifications' variables, shown commented out with no value."""
    env, notes = tick_environment(settings)
    names = _checked(env, needed)
    log = str(tick_log(settings))
    command = _cron_command([*loadmgr_command(), "schedules", "tick"])
    _checked({"the loadmgr command": command}, None)
    lines = [_cron_value(name, value) for name, value in env.items()]
    lines += [f"# {name}=" for name in names]
    notes += _variable_notes(needed or {})
    lines.append(f"* * * * * {command} >> {_cron_command([log])} 2>&1")
    return "\n".join(lines) + "\n", notes


def systemd_quote(word: str, *, command: bool = False) -> str:
    """One word of a unit file's setting, double-quoted: `\\` and `"` escaped, `%` (a
    specifier) doubled, and in a command `$` (a variable there) doubled."""
    if _PLAIN.fullmatch(word):
        return word
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + (escaped.replace("$", "$$") if command else escaped) + '"'


def systemd_text(
    settings: Settings, needed: dict[str, list[str]] | None = None
) -> tuple[str, list[str]]:
    """A oneshot service and the timer starting it at every minute, and the notes."""
    env, notes = tick_environment(settings)
    names = _checked(env, needed)
    argv = [*loadmgr_command(), "schedules", "tick"]
    _checked({"the loadmgr command": " ".join(argv)}, None)
    command = " ".join(systemd_quote(word, command=True) for word in argv)
    environment = "\n".join(
        [f"Environment={systemd_quote(f'{k}={v}')}" for k, v in env.items()]
        + [f"# Environment={name}=" for name in names]
    )
    notes += _variable_notes(needed or {})
    service = f"""# {UNIT_NAME}.service
[Unit]
Description=loadmgr: start the schedules' due runs

[Service]
Type=oneshot
{environment}
ExecStart={command}
# The runs a tick starts are collected by processes of their own: let them outlive it.
KillMode=process
"""
    timer = f"""# {UNIT_NAME}.timer
[Unit]
Description=loadmgr: tick the schedules every minute

[Timer]
OnCalendar=*-*-* *:*:00
AccuracySec=1s

[Install]
WantedBy=timers.target
"""
    notes.append(
        f"save them as ~/.config/systemd/user/{UNIT_NAME}.service and .timer, then "
        f"'systemctl --user enable --now {UNIT_NAME}.timer' (and 'loginctl enable-linger' "
        "so that it ticks while you are logged out)"
    )
    return service + "\n" + timer, notes
