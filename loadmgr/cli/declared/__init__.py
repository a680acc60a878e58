"""`loadmgr apply` and `loadmgr export`: tests as code."""
