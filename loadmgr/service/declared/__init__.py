"""Tests as code: `loadmgr apply` makes the database hold what TOML files declare (tests,
schedules, notifications), `loadmgr export` writes what it holds in the same format.

`files` reads a file and checks its format, `locations` finds each key's line, `entries`
turns entries into the typed inputs of `tests create`, `schedules add` and `notify add`
(checked by their services), `plan` compares them with the database, `writes` applies a
plan, and undoes it when a write fails; `export` and `toml_text` write files back.
"""
