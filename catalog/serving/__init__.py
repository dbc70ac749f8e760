"""Serving runtime: the replica (one model version over the Open Inference Protocol v2) and the router."""
