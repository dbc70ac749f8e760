"""YAML in and out: a fast safe reader for validation, round-trip editing, atomic writes."""
