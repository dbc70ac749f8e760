"""The `modelcat` command line: the only place that prints."""
