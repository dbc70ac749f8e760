"""The stock OpenSSF CLI, for interop tests: ``model_signing verify key ARTIFACT --signature BUNDLE
--public_key PEM`` (the ``model_signing`` script of the venv the tests run in)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MODEL_SIGNING = Path(sys.executable).parent / "model_signing"


def stock_verify(artifact: Path, bundle: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    command = [str(MODEL_SIGNING), "verify", "key", str(artifact), "--signature", str(bundle)]
    return subprocess.run(
        [*command, "--public_key", str(public_key)], capture_output=True, text=True, timeout=300, check=False
    )
