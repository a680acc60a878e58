"""`loadmgr schedules`: cron schedules of runs."""
