"""Per-version request counts and latency: the local Prometheus, or the routers' own counters."""
