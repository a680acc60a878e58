"""Cron schedules of runs: their definitions, history, and the line that installs the tick."""
