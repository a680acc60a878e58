"""`loadmgr tests`: define load tests once, see their history and trend."""
