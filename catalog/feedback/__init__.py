"""Outcome events and the assignment and outcome logs: stored before acknowledged, queried with DuckDB."""
