"""The root command group: global options anywhere on the line, one-line errors, exit codes."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from types import ModuleType
from typing import Any, NoReturn

import typer
import typer.core
import typer.main

from loadmgr.errors import ExitCode, LoadmgrError, UnreadableDocument, ValidationFailed


def _click_exceptions() -> ModuleType:
    """The exceptions of the click that Typer runs on: its own copy since Typer 0.29."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover - Typer before 0.29 runs on click itself
        return importlib.import_module("click.exceptions")


_CLICK = _click_exceptions()
ClickException: type[Exception] = _CLICK.ClickException
UsageError: type[Exception] = _CLICK.UsageError
# Click >= 8.2 raises this for `no_args_is_help`; older versions print the help and exit 0.
NoArgsIsHelpError: type[Exception] = getattr(_CLICK, "NoArgsIsHelpError", UsageError)
Abort: type[Exception] = getattr(_CLICK, "Abort", typer.Abort)

# Global options (name → takes a value). They may be written before or after the command
# (`loadmgr --tenant t tests list` or `loadmgr tests list --tenant t`), like kubectl's.
GLOBAL_OPTIONS = {
    "--mongo-uri": True,
    "--database": True,
    "--tenant": True,
    "--env": True,
    "--user": True,
    "--profile": True,
    "--config": True,
    "--server-selection-timeout": True,
    "--mongo-tls-ca-file": True,
    "--mongo-tls-cert-key-file": True,
    "--mongo-password-file": True,
    "--debug": False,
}


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the command path to the front, unchanged."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            front.append(arg)
            if GLOBAL_OPTIONS[name] and "=" not in arg and index + 1 < len(args):
                front.append(args[index + 1])
                index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest


def hoist_completion_words(environ: MutableMapping[str, str]) -> None:
    """The line a shell asks to complete, with its global options hoisted like argv's, so
    `loadmgr tests show --tenant a <Tab>` completes within tenant a.

    Bash gives the words and the index of the one being completed (COMP_WORDS, COMP_CWORD);
    zsh, fish and PowerShell the line (_TYPER_COMPLETE_ARGS), its last word the incomplete
    one unless the line ends with a space. A global option waiting for its value stays last.
    """
    import shlex

    def hoisted(words: list[str]) -> list[str]:
        waiting = words[-1:] if words and GLOBAL_OPTIONS.get(words[-1]) else []
        return [*words[:1], *hoist_global_options(words[1 : len(words) - len(waiting)]), *waiting]

    try:
        if "COMP_WORDS" in environ and "COMP_CWORD" in environ:
            words = shlex.split(environ["COMP_WORDS"])
            cword = int(environ["COMP_CWORD"])
            environ["COMP_WORDS"] = shlex.join(hoisted(words[:cword]) + words[cword:])
        elif "_TYPER_COMPLETE_ARGS" in environ:
            line = environ["_TYPER_COMPLETE_ARGS"]
            words = shlex.split(line)
            rest = [] if line.endswith(" ") or not words else words[-1:]
            head = hoisted(words[: len(words) - len(rest)])
            environ["_TYPER_COMPLETE_ARGS"] = shlex.join(head + rest) + (" " if not rest else "")
    except ValueError:  # an unfinished quote: complete the line as it is
        return


def _undecodable(text: str) -> bool:
    """Whether `text` holds bytes that were not UTF-8 (Python keeps them as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _as_bytes_text(text: str) -> str:
    """The original bytes, readable: `bad\\xffutf` for b'bad\\xffutf'."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte decodes to (text from elsewhere)
        return text.encode("utf-8", "backslashreplace").decode("ascii")
    return raw.decode("utf-8", "backslashreplace")


def check_utf8(args: Sequence[str], environ: Mapping[str, str]) -> None:
    """Refuse an argument or LOADMGR_* variable that is not valid UTF-8.

    Such text cannot be stored (BSON strings are UTF-8) nor printed, so it is refused
    before any command runs, naming the option it was given to.
    """
    for index, arg in enumerate(args):
        if not _undecodable(arg):
            continue
        name, sep, value = arg.partition("=")
        if arg.startswith("--") and sep:
            label = name
        elif index and args[index - 1].startswith("-") and args[index - 1] != "--":
            label, value = args[index - 1], arg
        else:
            label, value = f"argument {index + 1}", arg
        raise ValidationFailed(f"invalid {label}: not valid UTF-8 text ({_as_bytes_text(value)})")
    for name, value in environ.items():
        if name.startswith("LOADMGR_") and _undecodable(value):
            shown = _as_bytes_text(value)
            raise ValidationFailed(f"invalid {name}: not valid UTF-8 text ({shown})")


def debug_enabled(args: Sequence[str]) -> bool:
    return "--debug" in args or os.environ.get("LOADMGR_DEBUG", "") not in ("", "0", "false")


# An error line quotes what the user typed; a 100 kB argument is not worth echoing whole.
ERROR_LINE_MAX = 1_000


def print_error(message: str, hint: str | None = None) -> None:
    """`error: …` (and `hint: …`) on stderr, control characters made visible, bounded."""
    from loadmgr.cli.output import sanitize

    typer.echo(f"error: {_bounded(sanitize(message))}", err=True)
    if hint:
        typer.echo(f"hint: {_bounded(sanitize(hint))}", err=True)


def _bounded(text: str) -> str:
    if len(text) <= ERROR_LINE_MAX:
        return text
    half = ERROR_LINE_MAX // 2
    return f"{text[:half]}…{text[-half:]}"


class RootGroup(typer.core.TyperGroup):
    """Turns every failure into one `error:` line and its exit code (docs/design.md, "Exit codes").

    Its command groups are loaded on use (see `loadmgr.cli.groups`): building all of them
    costs more than a command takes to start.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        from loadmgr.cli.groups import COMMANDS, GROUPS

        return [*GROUPS, *COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        from loadmgr.cli.groups import COMMANDS, GROUPS, group_app, root_command

        if cmd_name in COMMANDS:
            return root_command(cmd_name)
        if cmd_name not in GROUPS:
            return None
        group = typer.main.get_group(group_app(cmd_name))
        group.name = cmd_name
        tidy_help(group)
        return group

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """As Typer's, with its did-you-mean over the groups: they are loaded on use, so
        Typer, which looks only at loaded ones, suggests nothing for `loadmgr run list`."""
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            message = getattr(exc, "message", "")
            if args and message.startswith("No such command") and "Did you mean" not in message:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    suggestions = ", ".join(f"{match!r}" for match in matches)
                    exc.message = f"{message.rstrip('.')}. Did you mean {suggestions}?"  # type: ignore[attr-defined]
            raise

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        from loadmgr.cli.groups import COMMANDS, GROUPS

        rows = [(name, help_text) for name, (_, help_text) in {**GROUPS, **COMMANDS}.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        argv = hoist_global_options(argv)
        if os.environ.get(complete_var or "_LOADMGR_COMPLETE"):
            hoist_completion_words(os.environ)
        debug = debug_enabled(argv)
        try:
            check_utf8(argv, os.environ)
            with unreadable_documents_said():
                result = super().main(
                    argv, prog_name or "loadmgr", complete_var, standalone_mode=False, **extra
                )
        except LoadmgrError as exc:
            if debug:
                import traceback

                traceback.print_exc()
            print_error(exc.message, exc.hint)
            _exit(exc.exit_code, standalone_mode)
        except NoArgsIsHelpError as exc:
            context = getattr(exc, "ctx", None)
            # Typer's Rich help prints itself (to stdout) and returns ""; plain help is text.
            text = context.get_help() if context else str(exc)
            if text:
                typer.echo(text, err=True)
            _exit(ExitCode.USAGE, standalone_mode)
        except UsageError as exc:
            context = getattr(exc, "ctx", None)
            command = context.command_path if context else "loadmgr"
            print_error(_message(exc), f"see '{command} --help'")
            _exit(ExitCode.USAGE, standalone_mode)
        except ClickException as exc:
            print_error(_message(exc))
            _exit(getattr(exc, "exit_code", 1), standalone_mode)
        except (typer.Abort, Abort):
            # A declined confirmation (or Ctrl-C at a prompt): nothing was done.
            typer.echo("", err=True)
            print_error("aborted, nothing changed")
            _exit(ExitCode.INTERRUPTED, standalone_mode)
        except KeyboardInterrupt:
            typer.echo("", err=True)
            print_error("interrupted")
            _exit(ExitCode.INTERRUPTED, standalone_mode)
        except BrokenPipeError:
            # `loadmgr … | head`: the reader left; not an error worth a traceback.
            sys.stderr.close()
            _exit(ExitCode.OK, standalone_mode)
        except Exception as exc:  # a bug: say so in one line unless debugging
            if debug:
                raise
            print_error(
                f"unexpected {type(exc).__name__}: {exc}",
                "run again with --debug for the traceback, and please report it",
            )
            _exit(70, standalone_mode)
        code = result if isinstance(result, int) else 0
        _exit(code, standalone_mode)


@contextlib.contextmanager
def unreadable_documents_said() -> Iterator[None]:
    """Each stored document a read left out (`loadmgr.errors.left_out`) said once on
    stderr, as `warning: …`; every other warning as Python would show it."""
    seen: set[str] = set()
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
            if not issubclass(category, UnreadableDocument):
                shown(message, category, *args, **kwargs)
            elif str(message) not in seen:
                from loadmgr.cli.output import sanitize

                seen.add(str(message))
                typer.echo(f"warning: {_bounded(sanitize(str(message)))}", err=True)

        warnings.simplefilter("always", UnreadableDocument)
        warnings.showwarning = show
        yield


def tidy_help(group: Any) -> None:
    """The same help everywhere, whoever wrote the command: a command's line in its
    group's list is its whole first sentence (click cuts it at ~45 characters), and a
    repeatable option shows what one value is (`<str>`), not Typer's `<list[str]>`."""
    for command in getattr(group, "commands", {}).values():
        if not command.short_help and command.help:
            command.short_help = first_sentence(command.help)
        tidy_help(command)  # a group within the group
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and descriptor.is_list:
                # Typer has no setting for this; its help asks the parameter for its type.
                param.display_type = functools.partial(_one_value_type, param.display_type)


def _one_value_type(display_type: Callable[[Any], str], ctx: Any) -> str:
    """`<str>` for Typer's `<list[str]>`, `<a|b>` for `<list[a|b]>`."""
    shown = display_type(ctx)
    if shown.startswith("<list[") and shown.endswith("]>"):
        return f"<{shown[6:-2]}>"
    return shown


def first_sentence(text: str) -> str:
    """The first sentence of a help text's first paragraph, on one line."""
    paragraph = " ".join(text.split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph if end == -1 else paragraph[: end + 1]


def _message(exc: Exception) -> str:
    format_message = getattr(exc, "format_message", None)
    message = str(format_message() if callable(format_message) else exc)
    # Typer checks numbers with pydantic: its sentences in loadmgr's words, as elsewhere.
    bad_value = re.fullmatch(r"Invalid value for '([^']+)': (.*)", message, re.S)
    if bad_value is not None and bad_value[2].startswith(("Input should", "String should")):
        from loadmgr.service.validation import option_error

        return option_error(bad_value[1], bad_value[2])
    return message


def _exit(code: int, standalone_mode: bool) -> NoReturn:
    # CliRunner and the console script both expect SystemExit with the code.
    del standalone_mode
    sys.exit(int(code))
