# Unit tests of MC012 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc012

import rego.v1

example_binding(strategy, new_weight, routed) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": strategy, "step_percent": 10},
	"routes": [
		{"version": "1.0.0", "weight": 100 - new_weight, "base_weight": 90, "known": true},
		{"version": "1.1.0", "weight": new_weight, "base_weight": 10, "known": true},
	],
	"base": {"known": true, "routed": routed},
}

test_one_step_passes if {
	doc := example_binding("canary", 20, true)
	deny == [] with input as doc
}

test_a_jump_of_several_steps_is_denied if {
	doc := example_binding("canary", 50, true)
	deny == ["checkout: scorer 1.1.0 goes from 10% to 50% of the traffic in one change, more than its canary rollout's step of 10%: raise it one step at a time"] with input as doc
}

test_all_at_once_is_not_limited if {
	doc := example_binding("all_at_once", 50, true)
	deny == [] with input as doc
}

test_a_binding_new_in_this_change_is_not_limited if {
	doc := example_binding("canary", 50, false)
	deny == [] with input as doc
}
