"""`loadmgr db`: the embedded store, and migrating a database."""
