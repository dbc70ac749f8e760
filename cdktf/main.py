"""The CDK Terrain app: one stack per environment of models.yaml, for one target.

Run by the cdktn CLI (``cdktn synth`` in this folder) or directly (``python main.py``); the usual
way is ``modelcat synth``, which calls the same code. Everything lives in ``catalog.synth``.

Environment: ``MODELCAT_CATALOG`` (default ``../models.yaml``), ``MODELCAT_TARGET`` (default: each
environment's own target), ``CDKTF_OUTDIR`` (set by the CLI; default ``cdktf.out``).
"""

import os
from pathlib import Path

from catalog.synth import synthesize
from catalog.validate import validate_file


def main() -> None:
    here = Path(__file__).resolve().parent
    catalog_path = Path(os.environ.get("MODELCAT_CATALOG", here.parent / "models.yaml"))
    catalog = validate_file(catalog_path).raise_for_errors()
    outdir = Path(os.environ.get("CDKTF_OUTDIR", here / "cdktf.out"))
    synthesize(catalog, catalog_path, outdir, os.environ.get("MODELCAT_TARGET") or None)


if __name__ == "__main__":
    main()
