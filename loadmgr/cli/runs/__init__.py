"""`loadmgr runs`: start, follow, stop and list runs; the live view."""
