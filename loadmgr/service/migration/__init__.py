"""Bringing stored documents to this loadmgr's schema: numbered steps, and the Go control
plane's documents.
"""
