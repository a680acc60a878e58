"""Runs and trends for people and CI systems: self-contained HTML with inline SVG, and JUnit XML."""
