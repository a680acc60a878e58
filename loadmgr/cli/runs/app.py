"""`loadmgr runs`: the group's commands, gathered from the modules that define them."""

from __future__ import annotations

from loadmgr.cli.groups import new_group
from loadmgr.cli.runs import start, watch

app = new_group("runs", start, watch)
