"""`loadmgr db retention`: how long runs keep their intervals' detail (set, list, remove);
`db prune` applies the policies, and `schedules tick` once a day when there are any."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from loadmgr.cli.completion import complete_test
from loadmgr.cli.context import removes, renders
from loadmgr.cli.inputs import given
from loadmgr.cli.output import field

if TYPE_CHECKING:
    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer

app = typer.Typer(
    rich_markup_mode=None,
    help="How long runs keep their intervals' detail; 'db prune' applies it.",
    no_args_is_help=True,
)

COLUMNS = [
    field("target", "TARGET"),
    field("keepDetail", "KEEP DETAIL"),
    field("downsample", "DOWNSAMPLE"),
    field("dropIntervalsAfter", "DROP INTERVALS AFTER"),
    field("dropRunsAfter", "DROP RUNS AFTER"),
    field("updatedBy", "BY"),
]
# `-o csv` (docs/output.md).
POLICY_CSV = (
    "id",
    "target",
    "keepDetail",
    "downsample",
    "dropIntervalsAfter",
    "dropRunsAfter",
    "updatedAt",
    "updatedBy",
)

TestOption = Annotated[
    str | None,
    typer.Option(
        "--test", help="The policy of one test (its name or id).", autocompletion=complete_test
    ),
]
TagOption = Annotated[
    str | None, typer.Option("--tag", help="The policy of the tests carrying this tag.")
]


@app.command("set")
@renders
def set_(
    context: AppContext,
    renderer: Renderer,
    keep_detail: Annotated[
        str,
        typer.Option(
            "--keep-detail",
            help="How long after a run ends its intervals stay as collected: 30d, 12h.",
            show_default=False,
        ),
    ],
    test: TestOption = None,
    tag: TagOption = None,
    downsample: Annotated[
        str | None,
        typer.Option(
            "--downsample",
            help="Then merge them, exactly, into windows this long: 1m, 5m (10s to 1d).",
        ),
    ] = None,
    drop_intervals_after: Annotated[
        str | None,
        typer.Option(
            "--drop-intervals-after",
            help="Then delete them (the run, its final stats and verdict stay): 400d.",
        ),
    ] = None,
    drop_runs_after: Annotated[
        str | None,
        typer.Option("--drop-runs-after", help="Then delete the runs themselves too."),
    ] = None,
) -> None:
    """Set the retention policy of a test, of a tag's tests, or (neither) of every test,
    replacing the one it had. Ages count from a run's end. A test's own policy beats a
    tag's, a tag's beats the default; of several tags, each age keeps the most."""
    from loadmgr.service.upkeep.policies import RetentionSpec, set_policy

    spec = given(RetentionSpec, locals())
    policy = set_policy(context.store, context.settings.user, spec)
    renderer.one(policy, id_key="id", csv_columns=POLICY_CSV)


@app.command("list")
@renders
def list_(context: AppContext, renderer: Renderer) -> None:
    """List the retention policies (ages as set; '-': never)."""
    from loadmgr.service.upkeep.policies import list_policies

    renderer.many(
        list_policies(context.store), COLUMNS, empty="no retention policies", csv_columns=POLICY_CSV
    )


@app.command("remove")
@removes
def remove(context: AppContext, test: TestOption = None, tag: TagOption = None) -> tuple[str, str]:
    """Remove the retention policy of a test, of a tag, or (neither) the default one."""
    from loadmgr.service.upkeep.policies import remove_policy

    name = remove_policy(context.store, test, tag)
    return name, f"removed the retention policy of {name}"
