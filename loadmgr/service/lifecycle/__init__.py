"""A run's life end to end, composed from the domains below: start, control, end steps, the
schedule tick.
"""
