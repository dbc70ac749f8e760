"""The synthesizer: catalog → CDK Terrain stacks → Terraform JSON, one module per target."""

from catalog.synth.app import (
    TARGETS,
    StackOutput,
    SynthResult,
    build_app,
    check_environments,
    get_target,
    selected_environments,
    stack_targets,
    synthesize,
)

__all__ = [
    "TARGETS",
    "StackOutput",
    "SynthResult",
    "build_app",
    "check_environments",
    "get_target",
    "selected_environments",
    "stack_targets",
    "synthesize",
]
