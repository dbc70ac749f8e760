"""What an application reports back (its outcomes) and what a binding compares on them (its analysis).

The declaration as written in the catalog: pydantic v2, strict, unknown fields forbidden. The
effective values (defaults filled in, ``rollout.guardrails`` merged) are ``effective_analysis`` in
``catalog.domain.effective``; the cross-reference rules are in ``catalog.domain.outcome_rules``. No IO.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from catalog.domain.analysis_plan import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_SAMPLES_PER_ARM,
    DEFAULT_WINDOW_HOURS,
    Direction,
    OutcomeKind,
)
from catalog.domain.strict import STRICT

__all__ = [
    "OUTCOME_NAME",
    "Analysis",
    "AnalysisGuardrails",
    "Guardrails",
    "Outcome",
    "OutcomeLimit",
    "PrimaryDeclaration",
]

OUTCOME_NAME = r"^[a-z][a-z0-9_]{0,62}$"

OutcomeName = Annotated[
    str, Field(pattern=OUTCOME_NAME, description="Lowercase letters, digits and '_', starting with a letter")
]


class _Strict(BaseModel):
    model_config = STRICT


class Outcome(_Strict):
    """One outcome the application reports back (POST /v2/feedback, ``modelcat feedback import``)."""

    name: OutcomeName
    kind: OutcomeKind = Field(
        description="proportion: values 0/1 (true/false accepted), e.g. a conversion; mean: any finite number, "
        "e.g. a basket value; label: a delayed ground-truth label (0/1) for live metrics, e.g. is_fraud"
    )


class Guardrails(_Strict):
    """What stops a rollout between steps (and rolls it back): the new routes' observed health."""

    max_error_rate: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="Highest tolerated share of failed requests, a fraction: 0.01 is 1 %"
    )
    max_p99_latency_ms: Annotated[int, Field(gt=0, le=3_600_000)] | None = Field(
        None, description="Highest tolerated 99th-percentile latency, in milliseconds"
    )


class OutcomeLimit(_Strict):
    """An outcome a candidate may not lower by more than ``max_drop`` against the baseline."""

    outcome: OutcomeName = Field(description="A proportion or mean outcome declared by the application")
    max_drop: Annotated[float, Field(ge=0)] = Field(
        description="Largest tolerated drop against the baseline, absolute, in the outcome's unit"
    )


class AnalysisGuardrails(Guardrails):
    """The rollout guardrails (merged over ``rollout.guardrails``, field by field) and outcome limits."""

    outcomes: list[OutcomeLimit] = Field([], description="Outcomes that may not drop by more than max_drop")


class PrimaryDeclaration(_Strict):
    """The outcome a candidate must improve to be promoted."""

    outcome: OutcomeName = Field(description="A proportion or mean outcome declared by the application")
    direction: Direction = Field(description="Which way is better: increase (e.g. conversion) or decrease")
    mde: Annotated[float, Field(gt=0)] = Field(
        description="Minimum detectable effect the test is sized for: absolute, in the outcome's unit "
        "(0.01 is one percentage point of a proportion)"
    )
    max_drop: Annotated[float, Field(ge=0)] = Field(
        0.0, description="How far the outcome may move the bad way before that counts as harm; default 0"
    )


class Analysis(_Strict):
    """What ``modelcat analyze`` compares for this binding: its routed versions against a baseline."""

    baseline: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        None, description="The version the others are compared with; default: the binding's first route"
    )
    primary: PrimaryDeclaration | None = Field(
        None, description="The outcome to improve; without it, promote means every guardrail passed"
    )
    guardrails: AnalysisGuardrails | None = None
    min_samples_per_arm: Annotated[int, Field(ge=1, le=1_000_000_000)] = Field(
        DEFAULT_MIN_SAMPLES_PER_ARM,
        description=f"Units per version below which every metric holds; default {DEFAULT_MIN_SAMPLES_PER_ARM}",
    )
    alpha: Annotated[float, Field(gt=0, le=0.5)] = Field(
        DEFAULT_ALPHA, description=f"Significance level, in (0, 0.5]; default {DEFAULT_ALPHA}"
    )
    window_hours: Annotated[int, Field(ge=1, le=8760)] = Field(
        DEFAULT_WINDOW_HOURS,
        description="How long after an assignment a unit's outcomes count for the version it got (sticky "
        f"bindings); default {DEFAULT_WINDOW_HOURS}",
    )
