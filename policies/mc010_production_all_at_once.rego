# MC010 (warning): a production binding rolls out all at once: a route change reaches all of its
# traffic in one step, with no step at which guardrails could stop a bad version. A canary or
# linear rollout with guardrails is safer.
package modelcat.mc010

import rego.v1

rule := {
	"id": "MC010",
	"title": "Production rollout in steps",
	"name": "ProductionRolloutInSteps",
	"description": "A warning: a production binding rolls out all at once, so a route change reaches all of its traffic in one step, with no step at which guardrails could stop a bad version. A canary or linear rollout with guardrails is safer.",
	"severity": "warn",
	"kinds": ["binding"],
}

warn := [msg |
	input.kind == "binding"
	input.application.production
	input.binding.enabled
	input.rollout.strategy == "all_at_once"
	msg := sprintf("%s: %s rolls out all at once in production: no step at which a guardrail could stop a bad version", [input.application.name, input.binding.model])
]
