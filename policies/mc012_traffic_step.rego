# MC012: a change raises a version's share of a binding's traffic by at most one step of its
# canary or linear rollout (the effective rollout's step_percent, or with a steps list its largest
# step: the largest rise between consecutive steps, the first from 0): a canary at 10 % with steps
# of 10 % goes to 20 %, not to 50 %, in one pull request. Only a rollout's candidate is paced: a
# version newer (semver) than every version whose share falls (route.newer_than_falling, computed
# in Python); traffic going back to an older version (a rollback) is not. Bindings rolled out all at
# once, bindings new in this change and versions whose share falls are not limited either. Skipped
# without --base.
package modelcat.mc012

import rego.v1

rule := {
	"id": "MC012",
	"title": "Traffic moves one rollout step at a time",
	"name": "TrafficMovesOneRolloutStepPerChange",
	"description": "Judged against the base revision (--base): a change raises a version's share of a canary or linear binding by at most one rollout step (10 % to 20 % with steps of 10 %, not to 50 %; with a steps list, its largest step). Only a version newer than every version whose share falls is limited, so going back to an older version (a rollback) is not; nor are bindings rolled out all at once, bindings new in the change and falling shares.",
	"severity": "deny",
	"kinds": ["binding"],
	"requires": ["base"],
}

deny := [msg |
	input.kind == "binding"
	input.binding.enabled
	input.base.routed
	input.rollout.strategy in ["canary", "linear"]
	step := input.rollout.largest_step
	step < 100
	some route in input.routes
	route.weight - route.base_weight > step
	route.newer_than_falling == true
	msg := sprintf("%s: %s %s goes from %v%% to %v%% of the traffic in one change, more than its %s rollout's %s of %v%%: raise it one step at a time", [input.application.name, input.binding.model, route.version, route.base_weight, route.weight, input.rollout.strategy, step_name, step])
]

# "largest step" for a steps list (its steps differ), "step" for a step_percent
step_name := "largest step" if {
	input.rollout.explicit_steps == true
} else := "step"
