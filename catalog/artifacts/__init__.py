"""Artifacts: streaming hashes, ONNX inspection, staging, and the stores that keep them by digest."""
