"""`loadmgr tests`: the group's commands, gathered from the modules that define them."""

from __future__ import annotations

from loadmgr.cli.groups import new_group
from loadmgr.cli.tests import capacity, define, history

app = new_group("tests", define, history, capacity)  # definitions, history, capacity
