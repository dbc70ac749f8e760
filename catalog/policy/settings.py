"""policies/settings.yaml: the knobs of the built-in rules, given to Rego as ``data.modelcat.settings``.

The same file works with conftest (``--data policies/settings.yaml``), since its top level is
``modelcat: {settings: ...}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from catalog.domain.strict import STRICT
from catalog.policy.yamlfile import load_model

__all__ = ["SETTINGS_FILE", "Settings", "load_settings"]

SETTINGS_FILE = "settings.yaml"


class Settings(BaseModel):
    model_config = STRICT

    max_step_percent: Annotated[int, Field(ge=1, le=100)] = Field(
        25, description="Largest share of traffic one canary or linear step may move"
    )
    production_environments: list[str] = Field(
        ["production"], description="Environments whose bindings must meet the production rules"
    )
    min_production_replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    owner_placeholders: list[str] = Field(
        ["tbd", "todo", "unknown", "none", "n/a", "-", "?", "nobody"],
        description="Owner values (lower-cased, trimmed) that name nobody",
    )


class _File(BaseModel):
    model_config = STRICT

    class _Modelcat(BaseModel):
        model_config = STRICT

        settings: Settings = Settings()

    modelcat: _Modelcat = _Modelcat()


def load_settings(policies: Path) -> Settings:
    """The settings in ``policies/settings.yaml``, or the defaults when the file does not exist."""
    path = policies / SETTINGS_FILE
    if not path.exists():
        return Settings()
    _, parsed = load_model(path, _File)
    return parsed.modelcat.settings
