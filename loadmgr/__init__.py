"""loadmgr: Locust load tests and their history, kept in MongoDB."""

__version__ = "0.1.0"
