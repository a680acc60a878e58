"""What a command gets from the root: settings, resolved once, and a store, opened once.

`renders` and `removes` hand them to a command, with the options every printing (or
removing) command takes, so each command declares only its own.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from loadmgr.cli.output import Renderer
    from loadmgr.config import Settings
    from loadmgr.store import Store


@dataclass
class AppContext:
    """Held in `ctx.obj`; resolving settings and connecting wait until a command needs them."""

    options: dict[str, Any]
    _settings: Settings | None = None
    _store: Store | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from loadmgr.config import resolve_settings

            self._settings = resolve_settings(**self.options)
        return self._settings

    @property
    def store(self) -> Store:
        """The store, its schema brought up to this loadmgr's on first use (one read when
        it already is: see `loadmgr.service.migration.schema.ensure_schema`)."""
        if self._store is None:
            store = self.unmigrated_store()
            from loadmgr.cli.output import notice
            from loadmgr.service.migration.schema import ensure_schema

            ensure_schema(store, self.settings.user, notice)
        assert self._store is not None
        return self._store

    def unmigrated_store(self) -> Store:
        """The store as it is, for `db migrate` (which says itself what it does)."""
        if self._store is None:
            from loadmgr.service.context import open_store

            self._store = open_store(self.settings)
        return self._store

    def renderer(self, output: str | None, quiet: bool) -> Renderer:
        """The command's renderer: -o (or LOADMGR_OUTPUT), else the profile's, else table."""
        from loadmgr.cli.output import Renderer

        return Renderer(output, quiet, self.settings.output)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext of the root command (made by the root callback)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # a sub-app invoked on its own, as in some tests
        obj = AppContext(options={})
        ctx.find_root().obj = obj
    return obj


def rendering(ctx: typer.Context, output: str | None, quiet: bool) -> tuple[AppContext, Renderer]:
    """The AppContext and the command's renderer, made first: a bad `-o` is refused
    before anything is read."""
    context = app_context(ctx)
    return context, context.renderer(output, quiet)


def renders(command: Callable[..., None]) -> Callable[..., None]:
    """A command that prints documents, given its AppContext and renderer first.

    The command declares its own arguments and options only; the Typer command this
    returns takes them, then `-o` and `-q` last (as every such command lists them), and
    makes the renderer before the command runs: a bad `-o` is refused before anything
    is read. `renderer.quiet` is the `-q` given.
    """
    from loadmgr.cli.output import OutputOption, QuietOption

    def run(ctx: typer.Context, output: str | None = None, quiet: bool = False, **own: Any) -> None:
        command(*rendering(ctx, output, quiet), **own)

    return _typer_command(
        command,
        run,
        given=2,
        last=[
            inspect.Parameter("output", _KEYWORD, default=None, annotation=OutputOption),
            inspect.Parameter("quiet", _KEYWORD, default=False, annotation=QuietOption),
        ],
    )


def removes(command: Callable[..., tuple[str, str]]) -> Callable[..., None]:
    """A command that removes something, given the AppContext first; it returns the id
    and the sentence to print. The Typer command this returns takes `-q` last and prints
    the id with it, else the sentence (`loadmgr.cli.output.removed`)."""
    from loadmgr.cli.output import QuietOption, removed

    def run(ctx: typer.Context, quiet: bool = False, **own: Any) -> None:
        removed(quiet, *command(app_context(ctx), **own))

    return _typer_command(
        command,
        run,
        given=1,
        last=[inspect.Parameter("quiet", _KEYWORD, default=False, annotation=QuietOption)],
    )


_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _typer_command(
    command: Callable[..., Any],
    run: Callable[..., None],
    *,
    given: int,
    last: list[inspect.Parameter],
) -> Callable[..., None]:
    """`run` (which calls `command`) as Typer sees a command: `ctx`, then `command`'s
    parameters but its first `given` (which `run` passes), then `last`."""
    from loadmgr.cli.output import Renderer

    hints = typing.get_type_hints(
        command, localns={"AppContext": AppContext, "Renderer": Renderer}, include_extras=True
    )
    own = list(inspect.signature(command).parameters.values())[given:]
    signature = inspect.Signature(
        [
            inspect.Parameter("ctx", _KEYWORD, annotation=typer.Context),
            *(p.replace(annotation=hints[p.name]) for p in own),
            *last,
        ],
        return_annotation=None,
    )
    functools.update_wrapper(run, command)
    # Typer reads the parameters from here (not from `command`, which `__wrapped__` is).
    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return run


def config_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None
