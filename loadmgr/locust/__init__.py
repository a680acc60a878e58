"""Locust: the web API client, stats into snapshots, and the built-in local cluster.

Import the submodules you need: `client` and `local` pull in `requests`, which
`loadmgr --help` must not load, while `stats` and `protocol` stay light.
"""
