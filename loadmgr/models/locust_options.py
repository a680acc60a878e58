"""Locust's own options a test or run hands to Locust (`--locust-option KEY=VALUE`), and the
ones loadmgr owns and refuses.

A key is an option of Locust's command line without its dashes (`tags`, `exclude-tags`,
`loglevel`) or a custom argument a locustfile adds with `init_command_line_parser`. A key
alone (`KEY`, no `=`) is a flag that takes no value. `tags` and `exclude-tags` take a
comma-separated list. See docs/design.md, "Locust's own options".

Every key is resolved to the destination (`dest`) Locust's own parser gives it, and the
owned ones are refused by dest: so `users`, `-u`, `num_users` and `num-users` are one
option. Locust's argparse also takes any unique prefix of a long option (`--logf` is
`--logfile`): a key that abbreviates one of Locust's options is refused, and a built-in
key is stored and handed on by its full long name.
"""

from __future__ import annotations

import re

LOCUST_OPTIONS_MAX = 50
LOCUST_OPTION_VALUE_MAX = 1_000
FLAG = ""  # the stored value of a key given alone: a flag without a value

# Locust 2.47's parser (`locust.argument_parser.get_parser()`): each dest and its option
# strings, the first long one its name here. A copy, because importing Locust would
# monkey-patch this process with gevent; tests/unit/test_locust_options_and_bundles.py
# checks it against the installed Locust's own parser.
_LOCUST_PARSER = """
help -h --help; locustfile -f --locustfile; config --config; host -H --host;
num_users -u --users; spawn_rate -r --spawn-rate; run_time -t --run-time;
list_commands -l --list; config_users --config-users; web_host --web-host;
web_host_display_name --web-host-display-name; web_port --web-port -P; headless --headless;
autostart --autostart; autoquit --autoquit; headful --headful; web_auth --web-auth;
web_login --web-login; tls_cert --tls-cert; tls_key --tls-key; class_picker --class-picker;
build_path --build-path; legacy_ui --legacy-ui; master --master;
master_bind_host --master-bind-host; master_bind_port --master-bind-port;
expect_workers --expect-workers; expect_workers_max_wait --expect-workers-max-wait;
enable_rebalancing --enable-rebalancing; expect_slaves --expect-slaves; worker --worker;
processes --processes; slave --slave; master_host --master-host; master_port --master-port;
web_base_path --web-base-path; tags -T --tags; exclude_tags -E --exclude-tags;
csv_prefix --csv; stats_history_enabled --csv-full-history; print_stats --print-stats;
only_summary --only-summary; reset_stats --reset-stats; html_file --html; json --json;
json_file --json-file; skip_log_setup --skip-log-setup; loglevel --loglevel -L;
logfile --logfile; show_task_ratio --show-task-ratio;
show_task_ratio_json --show-task-ratio-json; version --version -V;
exit_code_on_error --exit-code-on-error; stop_timeout -s --stop-timeout;
equal_weights --equal-weights; profile --profile; otel --otel
"""
LOCUST_PARSER: dict[str, tuple[str, ...]] = {
    dest: tuple(strings)
    for dest, *strings in (entry.split() for entry in _LOCUST_PARSER.split(";"))
}
# Option string (`--users`, `-u`) -> dest (`num_users`).
OPTION_DESTS = {string: dest for dest, strings in LOCUST_PARSER.items() for string in strings}
# user_classes is Locust's positional argument (and a /swarm field of its own).
BUILTIN_DESTS = frozenset(LOCUST_PARSER) | {"user_classes"}

# What loadmgr sets itself, or what would write files, bind ports or addresses, change the
# load (users, rate, time, host), the process's role (master, worker, headless), what it
# loads (config, locustfile), its web UI, TLS, logging or reports: by dest.
OWNED_DESTS = BUILTIN_DESTS - {
    "tags",
    "exclude_tags",
    "enable_rebalancing",
    "print_stats",
    "only_summary",
    "loglevel",
    "exit_code_on_error",
    "equal_weights",
    "profile",
    "otel",
}
# Every option string of an owned dest, without its dashes (docs, tests).
OWNED = frozenset(s.lstrip("-") for d in OWNED_DESTS for s in LOCUST_PARSER.get(d, ()))
# Options Locust reads as a list (nargs="*"): `tags=a,b` is `--tags a b`.
LIST_OPTIONS = frozenset({"tags", "exclude-tags"})

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")


def long_name(dest: str) -> str:
    """A built-in dest's full long option name, without its dashes (`num_users` → `users`)."""
    longs = [s for s in LOCUST_PARSER.get(dest, ()) if s.startswith("--")]
    return longs[0][2:] if longs else dest


def locust_dest(key: str) -> str | None:
    """The dest of the built-in Locust option `key` names, however spelled (`html`, `HTML`,
    `html_file`, `html-file`; `-P` by its letter), or None for a key Locust does not have
    (a locustfile's custom argument). ValueError when `key` abbreviates a Locust option,
    which Locust's argparse would take for that option."""
    if len(key) == 1:
        return OPTION_DESTS.get(f"-{key}")
    spellings = {key, key.lower(), key.replace("_", "-").lower()}
    for spelled in sorted(spellings):
        dest = OPTION_DESTS.get(f"--{spelled}")
        if dest is None and spelled.replace("-", "_") in BUILTIN_DESTS:
            dest = spelled.replace("-", "_")
        if dest is not None:
            return dest
    for spelled in sorted(spellings):
        longer = sorted(s for s in OPTION_DESTS if s.startswith(f"--{spelled}"))
        if longer:
            raise ValueError(
                f"--locust-option {key} abbreviates Locust's {longer[0]}: give an option "
                "by its full name"
            )
    return None


def check_locust_option(key: str, value: str) -> str:
    """The key as stored and handed on (a built-in option's full long name, a custom
    argument as given); ValueError with a one-line reason for a bad or owned one."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(
            f"invalid --locust-option {key!r}: KEY=VALUE with KEY a Locust option "
            "without its dashes (e.g. tags=checkout,search)"
        )
    dest = locust_dest(key)
    if dest in OWNED_DESTS:
        raise ValueError(
            f"--locust-option {key} is set by loadmgr and cannot be given "
            '(see docs/design.md, "Locust\'s own options")'
        )
    if not isinstance(value, str):
        raise ValueError(f"--locust-option {key}: the value is not a string")
    if len(value) > LOCUST_OPTION_VALUE_MAX:
        raise ValueError(
            f"--locust-option {key}: value longer than {LOCUST_OPTION_VALUE_MAX} characters"
        )
    if "\0" in value or "\n" in value:
        raise ValueError(f"--locust-option {key}: value has a NUL or a line break")
    return key if dest is None else long_name(dest)


def parse_locust_options(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` (or `KEY`) pairs as a dict, in order; ValueError with a one-line reason."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip().lstrip("-")
        options[check_locust_option(key, value)] = value if equals else FLAG
    if len(options) > LOCUST_OPTIONS_MAX:
        raise ValueError(f"at most {LOCUST_OPTIONS_MAX} --locust-option keys")
    return options


def check_stored_options(options: dict[str, str]) -> dict[str, str]:
    """Options as read from the database (a test's, a schedule's, a run's), checked again:
    whoever writes the database is not trusted to have gone through the CLI."""
    checked = {check_locust_option(key, value): value for key, value in options.items()}
    if len(checked) > LOCUST_OPTIONS_MAX:
        raise ValueError(f"at most {LOCUST_OPTIONS_MAX} --locust-option keys")
    return checked


def command_line(options: dict[str, str]) -> list[str]:
    """The options as Locust's command line arguments (checked again: they may come
    straight from a stored run)."""
    args: list[str] = []
    for key, value in check_stored_options(options).items():
        flag = f"-{key}" if len(key) == 1 else f"--{key}"
        if value == FLAG:
            args.append(flag)
        elif key in LIST_OPTIONS:
            args += [flag, *[item.strip() for item in value.split(",") if item.strip()]]
        else:
            args.append(f"{flag}={value}")
    return args


def remote_builtin(options: dict[str, str]) -> str | None:
    """The first key a remote master must not take through /swarm: any of Locust's own
    options (its /swarm sets whatever parsed option a field names, `html_file` included;
    a list one would become a string). Only a locustfile's custom arguments go there."""
    for key in options:
        if locust_dest(key) is not None:
            return key
    return None


def swarm_form(options: dict[str, str]) -> list[tuple[str, str]]:
    """The options as fields of Locust's `/swarm` form: a remote master updates every
    key it already has in its parsed options (a custom argument, keeping its type) and
    hands those to its workers; other keys are ignored. ValueError for one of Locust's own
    options (the plan refuses them; a stored run is checked again here)."""
    checked = check_stored_options(options)
    refused = remote_builtin(checked)
    if refused is not None:
        raise ValueError(f"--locust-option {refused} cannot be handed to a remote Locust")
    return [
        (key.replace("-", "_"), "true" if value == FLAG else value)
        for key, value in checked.items()
        if len(key) > 1
    ]
