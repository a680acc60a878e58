"""`loadmgr sources`: register the Prometheus servers server-side metrics come from."""
