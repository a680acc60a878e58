"""Prometheus' HTTP API: the module of loadmgr that asks a Prometheus server for numbers.

Like `loadmgr/locust/`, it is the floor that owns `requests` for its server; the service
(`service/server_metrics/`) decides what to ask and what the answers mean for a run.
"""
