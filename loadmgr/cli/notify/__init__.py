"""`loadmgr notify`: webhook subscriptions."""
