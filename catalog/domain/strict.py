"""The one pydantic configuration of modelcat's typed files: strict types, unknown fields forbidden.

Every model read from a user's file (the catalog, the routing table, policy settings, waivers,
fixture expectations) or written as a report (diff, blast radius) sets ``model_config = STRICT``
(a module with many models sets it once, on a local base class).
"""

from __future__ import annotations

from pydantic import ConfigDict

__all__ = ["STRICT"]

# No coercion ("1" is not 1), unknown fields are errors, instances are frozen, no inf or nan.
STRICT = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)
