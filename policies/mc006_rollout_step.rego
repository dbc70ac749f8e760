# MC006: a canary or linear rollout moves at most data.modelcat.settings.max_step_percent of the
# traffic in one step (the effective rollout: the binding's block over defaults.rollout; with a
# steps list, its largest step: the largest rise to a step below 100, the first from 0; the last
# rise, to 100, is the rest, as for a canary's step_percent).
package modelcat.mc006

import rego.v1

rule := {
	"id": "MC006",
	"title": "Rollout step within the maximum",
	"name": "RolloutStepWithinMaximum",
	"description": "A canary or linear rollout moves at most max_step_percent (policies/settings.yaml) of the traffic in one step, judged on the effective rollout: the binding's block over defaults.rollout (with a steps list, its largest rise to a step below 100: the rise to 100 is the rest, as for step_percent).",
	"severity": "deny",
	"kinds": ["binding"],
}

deny := [msg |
	input.kind == "binding"
	input.binding.enabled
	input.rollout.strategy in ["canary", "linear"]
	maximum := data.modelcat.settings.max_step_percent
	step := input.rollout.largest_step
	step > maximum
	msg := sprintf("%s: %s %s %s of %v%% is over the maximum of %v%%", [input.application.name, input.binding.model, input.rollout.strategy, step_name, step, maximum])
]

# "largest step" for a steps list (its steps differ), "step" for a step_percent
step_name := "largest step" if {
	input.rollout.explicit_steps == true
} else := "step"
