"""What runs measured, read back: views, windows, latency, comparisons, trends and change points."""
