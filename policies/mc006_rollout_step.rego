# MC006: a canary or linear rollout moves at most data.modelcat.settings.max_step_percent of the
# traffic in one step (the effective rollout: the binding's block over defaults.rollout).
package modelcat.mc006

import rego.v1

rule := {
	"id": "MC006",
	"title": "Rollout step within the maximum",
	"name": "RolloutStepWithinMaximum",
	"description": "A canary or linear rollout moves at most max_step_percent (policies/settings.yaml) of the traffic in one step, judged on the effective rollout: the binding's block over defaults.rollout.",
	"severity": "deny",
	"kinds": ["binding"],
}

deny := [msg |
	input.kind == "binding"
	input.binding.enabled
	input.rollout.strategy in ["canary", "linear"]
	maximum := data.modelcat.settings.max_step_percent
	input.rollout.step_percent > maximum
	msg := sprintf("%s: %s %s step of %v%% is over the maximum of %v%%", [input.application.name, input.binding.model, input.rollout.strategy, input.rollout.step_percent, maximum])
]
