"""Whether a run passed: thresholds on final numbers, the live abort judge, window arithmetic."""
