"""Locust's own options a test or run hands to Locust (`--locust-option KEY=VALUE`), and the
ones loadmgr owns and refuses.

A key is an option of Locust's command line without its dashes (`tags`, `exclude-tags`,
`loglevel`) or a custom argument a locustfile adds with `init_command_line_parser`. A key
alone (`KEY`, no `=`) is a flag that takes no value. `tags` and `exclude-tags` take a
comma-separated list. See docs/design.md, "Locust's own options".
"""

from __future__ import annotations

import re

LOCUST_OPTIONS_MAX = 50
LOCUST_OPTION_VALUE_MAX = 1_000
FLAG = ""  # the stored value of a key given alone: a flag without a value

# Locust 2.x options that say how Locust runs, where it listens, what it writes or how
# long: loadmgr sets those itself (or they would break its control of the run).
OWNED = frozenset(
    """
    locustfile config help version list show-task-ratio show-task-ratio-json
    master worker slave expect-slaves master-host master-port master-bind-host
    master-bind-port expect-workers expect-workers-max-wait processes
    host users spawn-rate run-time config-users class-picker
    headless headful autostart autoquit
    web-host web-port web-base-path web-auth web-login web-host-display-name
    tls-cert tls-key legacy-ui build-path
    csv csv-full-history html json json-file logfile skip-log-setup reset-stats
    stop-timeout
    """.split()
)
# Short forms of owned options (`-u 10`): refused like their long names.
OWNED_SHORT = frozenset("f h V l H u r t L".split())
# Options Locust reads as a list (nargs="*"): `tags=a,b` is `--tags a b`.
LIST_OPTIONS = frozenset({"tags", "exclude-tags", "T", "E"})

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")


def canonical_key(key: str) -> str:
    """How an option is compared with the owned ones: dashes, lower case."""
    return key.replace("_", "-").lower()


def parse_locust_options(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` (or `KEY`) pairs as a dict, in order; ValueError with a one-line reason."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip().lstrip("-")
        if not _KEY.fullmatch(key):
            raise ValueError(
                f"invalid --locust-option {pair!r}: KEY=VALUE with KEY a Locust option "
                "without its dashes (e.g. tags=checkout,search)"
            )
        if canonical_key(key) in OWNED or key in OWNED_SHORT:
            raise ValueError(
                f"--locust-option {key} is set by loadmgr and cannot be given "
                '(see docs/design.md, "Locust\'s own options")'
            )
        if len(value) > LOCUST_OPTION_VALUE_MAX:
            raise ValueError(
                f"--locust-option {key}: value longer than {LOCUST_OPTION_VALUE_MAX} characters"
            )
        if "\0" in value or "\n" in value:
            raise ValueError(f"--locust-option {key}: value has a NUL or a line break")
        options[key] = value if equals else FLAG
    if len(options) > LOCUST_OPTIONS_MAX:
        raise ValueError(f"at most {LOCUST_OPTIONS_MAX} --locust-option keys")
    return options


def command_line(options: dict[str, str]) -> list[str]:
    """The options as Locust's command line arguments."""
    args: list[str] = []
    for key, value in options.items():
        flag = f"-{key}" if len(key) == 1 else f"--{key}"
        if value == FLAG:
            args.append(flag)
        elif key in LIST_OPTIONS:
            args += [flag, *[item.strip() for item in value.split(",") if item.strip()]]
        else:
            args.append(f"{flag}={value}")
    return args


def swarm_form(options: dict[str, str]) -> list[tuple[str, str]]:
    """The options as fields of Locust's `/swarm` form: a remote master updates every
    key it already has in its parsed options (a custom argument, keeping its type) and
    hands those to its workers; other keys are ignored. List options are left out: a
    master started without them would take `tags=a` as a string (the plan refuses them)."""
    return [
        (key.replace("-", "_"), "true" if value == FLAG else value)
        for key, value in options.items()
        if len(key) > 1 and key not in LIST_OPTIONS
    ]
