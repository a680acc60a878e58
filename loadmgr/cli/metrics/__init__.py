"""`loadmgr metrics`: what a run measured, runs compared, reports."""
