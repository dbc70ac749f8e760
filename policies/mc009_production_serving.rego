# MC009: a production binding runs at least data.modelcat.settings.min_production_replicas
# replicas, has max_replicas >= min_replicas (the effective serving block), and a rollout that
# moves traffic in steps (canary, linear) has guardrails that can stop a bad step.
package modelcat.mc009

import rego.v1

rule := {
	"id": "MC009",
	"title": "Production serving is redundant and guarded",
	"name": "ProductionServingIsRedundantAndGuarded",
	"description": "A production binding runs at least min_production_replicas (policies/settings.yaml) replicas with max_replicas >= min_replicas, and a canary or linear rollout has guardrails that can stop a bad step.",
	"severity": "deny",
	"kinds": ["binding"],
}

production if {
	input.kind == "binding"
	input.application.production
	input.binding.enabled
}

deny := [msg | some part in [too_few_replicas, bounds_inverted, unguarded_steps]; some msg in part]

too_few_replicas := [msg |
	production
	minimum := data.modelcat.settings.min_production_replicas
	input.serving.replicas < minimum
	msg := sprintf("%s: %s runs %v replica(s); production needs at least %v", [input.application.name, input.binding.model, input.serving.replicas, minimum])
]

bounds_inverted := [msg |
	production
	input.serving.max_replicas < input.serving.min_replicas
	msg := sprintf("%s: %s max_replicas %v is below min_replicas %v", [input.application.name, input.binding.model, input.serving.max_replicas, input.serving.min_replicas])
]

unguarded_steps := [msg |
	production
	input.rollout.strategy in ["canary", "linear"]
	input.rollout.guarded == false
	msg := sprintf("%s: %s %s rollout has no guardrails: nothing stops a bad step", [input.application.name, input.binding.model, input.rollout.strategy])
]
