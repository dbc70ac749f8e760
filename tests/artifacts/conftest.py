"""Fixtures for artifact-store tests: a local OCI registry and small real ONNX models."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.onnx_models import dense_model, save, save_with_external_data
from tests.registry import RegistryUnavailable, running_registry

_serial = itertools.count()


@pytest.fixture(scope="session")
def registry() -> Iterator[tuple[str, Path]]:
    """``(http://127.0.0.1:PORT, storage folder)`` of a registry shared by the session."""
    try:
        with running_registry() as running:
            yield running
    except RegistryUnavailable as e:
        pytest.fail(str(e), pytrace=False)


def build_model(folder: Path, *, external: bool) -> Path:
    """A small real ONNX model in ``folder``; with ``external`` its weights live in ``weights.bin``.

    Every call makes different bytes, so blobs are never shared between tests (one test damages one).
    """
    model = dense_model(seed=1000 + next(_serial))
    return save_with_external_data(model, folder) if external else save(model, folder / "model.onnx")


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., Path]:
    """``make_model(external=False)``: the path of a fresh model in its own temp folder."""

    def _make(external: bool = False) -> Path:
        return build_model(tmp_path / f"source-{next(_serial)}", external=external)

    return _make
