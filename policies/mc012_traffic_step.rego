# MC012: a change raises a version's share of a binding's traffic at most to the next step its
# canary or linear rollout plans above the share the version had on the base revision
# (route.next_step, computed in Python from the effective rollout's steps: the first one above the
# base share, 100 when none is): with a canary of 10 % (steps 10, 100) a version goes from 0 to 10 %
# and then from 10 to 100 %, as the rollout controller moves it, but not from 0 to 50 % in one pull
# request. Only a rollout's candidate is paced: a version newer (semver) than every version whose
# share falls (route.newer_than_falling, computed in Python); traffic going back to an older version
# (a rollback) is not. Bindings rolled out all at once, bindings new in this change and versions
# whose share falls are not limited either. Skipped without --base.
package modelcat.mc012

import rego.v1

rule := {
	"id": "MC012",
	"title": "Traffic moves one rollout step at a time",
	"name": "TrafficMovesOneRolloutStepPerChange",
	"description": "Judged against the base revision (--base): a change raises a version's share of a canary or linear binding at most to the next step its rollout plans above the version's base share (a canary of 10 %: 0 to 10 %, then 10 to 100 %, not 0 to 50 %; linear 25 %: 25 to 50 %, not to 75 %; a steps list's next step). Only a version newer than every version whose share falls is limited, so going back to an older version (a rollback) is not; nor are bindings rolled out all at once, bindings new in the change and falling shares.",
	"severity": "deny",
	"kinds": ["binding"],
	"requires": ["base"],
}

deny := [msg |
	input.kind == "binding"
	input.binding.enabled
	input.base.routed
	input.rollout.strategy in ["canary", "linear"]
	some route in input.routes
	route.newer_than_falling == true
	route.weight > route.next_step
	msg := sprintf("%s: %s %s goes from %v%% to %v%% of the traffic in one change, past its %s rollout's next step of %v%%: raise it one step at a time", [input.application.name, input.binding.model, route.version, route.base_weight, route.weight, input.rollout.strategy, route.next_step])
]
