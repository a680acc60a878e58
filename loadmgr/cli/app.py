"""The root command group: global options anywhere on the line, one-line errors, exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
import typer.core

from loadmgr.errors import ExitCode, LoadmgrError

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


def debug_enabled(args: Sequence[str]) -> bool:
    return "--debug" in args or os.environ.get("LOADMGR_DEBUG", "") not in ("", "0", "false")


def print_error(message: str, hint: str | None = None) -> None:
    """`error: …` (and `hint: …`) on stderr, control characters made visible."""
    from loadmgr.cli.output import sanitize

    click.echo(f"error: {sanitize(message)}", err=True)
    if hint:
        click.echo(f"hint: {sanitize(hint)}", err=True)


class RootGroup(typer.core.TyperGroup):
    """Turns every failure into one `error:` line and the exit code of DESIGN §2."""

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
        debug = debug_enabled(argv)
        try:
            result = super().main(
                argv, prog_name or "loadmgr", complete_var, standalone_mode=False, **extra
            )
        except LoadmgrError as exc:
            if debug:
                import traceback

                traceback.print_exc()
            print_error(exc.message, exc.hint)
            _exit(exc.exit_code, standalone_mode)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            _exit(ExitCode.USAGE, standalone_mode)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "loadmgr"
            print_error(exc.format_message(), f"see '{command} --help'")
            _exit(ExitCode.USAGE, standalone_mode)
        except click.ClickException as exc:
            print_error(exc.format_message())
            _exit(exc.exit_code, standalone_mode)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("", err=True)
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


def _exit(code: int, standalone_mode: bool) -> NoReturn:
    # CliRunner and the console script both expect SystemExit with the code.
    del standalone_mode
    sys.exit(int(code))
