"""Webhook subscriptions, what a notification says, and telling them when a run ends."""
