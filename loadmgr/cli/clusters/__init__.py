"""`loadmgr clusters`: register remote Locust masters, get the plugin."""
