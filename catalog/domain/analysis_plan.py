"""What a binding's analysis compares, with every default filled in: the input of ``modelcat analyze``.

``catalog.domain.effective.effective_analysis`` (from the binding's ``analysis`` block, its
rollout's ``guardrails`` and the defaults) is the one place these values are decided. Pure, no IO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_SAMPLES_PER_ARM",
    "DEFAULT_WINDOW_HOURS",
    "AnalysisPlan",
    "Direction",
    "OutcomeGuardrail",
    "OutcomeKind",
    "PrimaryOutcome",
]

DEFAULT_MIN_SAMPLES_PER_ARM = 500
DEFAULT_ALPHA = 0.05
DEFAULT_WINDOW_HOURS = 72

OutcomeKind = Literal["proportion", "mean", "label"]
Direction = Literal["increase", "decrease"]


@dataclass(frozen=True)
class PrimaryOutcome:
    """The outcome the candidate must improve: by ``mde`` (absolute, in the outcome's unit) is what the
    test is sized for; ``max_drop`` is how far it may fall (in the bad direction) before that is harm."""

    outcome: str
    kind: OutcomeKind
    direction: Direction
    mde: float
    max_drop: float = 0.0


@dataclass(frozen=True)
class OutcomeGuardrail:
    """An outcome that may not move in its bad direction by more than ``max_drop`` against the baseline."""

    outcome: str
    kind: OutcomeKind
    max_drop: float
    direction: Direction = "increase"  # the good direction


@dataclass(frozen=True)
class AnalysisPlan:
    application: str
    environment: str
    model: str
    baseline: str
    candidates: tuple[str, ...]  # the other routed versions, in route order
    sticky: bool  # units are users (the sticky key), else requests
    primary: PrimaryOutcome | None = None
    max_error_rate: float | None = None
    max_p99_latency_ms: int | None = None
    outcome_guardrails: tuple[OutcomeGuardrail, ...] = ()
    min_samples_per_arm: int = DEFAULT_MIN_SAMPLES_PER_ARM
    alpha: float = DEFAULT_ALPHA
    window_hours: int = DEFAULT_WINDOW_HOURS
