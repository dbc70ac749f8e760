"""Serving runtime: the replica (one model version over the Open Inference Protocol v2) and the router."""

__all__ = ["DEFAULT_MAX_BODY_BYTES"]

DEFAULT_MAX_BODY_BYTES = 64 << 20  # 64 MiB of JSON per inference request
