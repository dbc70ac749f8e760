# Unit tests of MC012 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc012

import rego.v1

example_binding(strategy, new_weight, routed) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": strategy, "step_percent": 10, "largest_step": 10, "explicit_steps": false},
	"routes": [
		{"version": "1.0.0", "weight": 100 - new_weight, "base_weight": 90, "newer_than_falling": false, "known": true},
		{"version": "1.1.0", "weight": new_weight, "base_weight": 10, "newer_than_falling": true, "known": true},
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

example_steps(base_weight, new_weight) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": "canary", "step_percent": 100, "steps": [5, 25, 50, 100], "largest_step": 50, "explicit_steps": true},
	"routes": [
		{"version": "1.0.0", "weight": 100 - new_weight, "base_weight": 100 - base_weight, "newer_than_falling": false, "known": true},
		{"version": "1.1.0", "weight": new_weight, "base_weight": base_weight, "newer_than_falling": true, "known": true},
	],
	"base": {"known": true, "routed": true},
}

test_a_steps_list_allows_its_largest_step if {
	doc := example_steps(50, 100)
	deny == [] with input as doc
}

test_a_jump_over_the_largest_step_of_a_steps_list_is_denied if {
	doc := example_steps(5, 60)
	deny == ["checkout: scorer 1.1.0 goes from 5% to 60% of the traffic in one change, more than its canary rollout's largest step of 50%: raise it one step at a time"] with input as doc
}

# after a promote (1.1.0 at 100 %, 1.0.0's route removed), VERSION goes from 0 to 90 % and 1.1.0 back
# to 10 %; newer: whether VERSION is newer than every version whose share falls (here 1.1.0)
example_return(version, newer) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": "canary", "step_percent": 10, "largest_step": 10, "explicit_steps": false},
	"routes": [
		{"version": version, "weight": 90, "base_weight": 0, "newer_than_falling": newer, "known": true},
		{"version": "1.1.0", "weight": 10, "base_weight": 100, "newer_than_falling": false, "known": true},
	],
	"base": {"known": true, "routed": true},
}

test_a_rollback_to_an_older_version_is_not_limited if {
	doc := example_return("1.0.0", false)
	deny == [] with input as doc
}

test_a_newer_version_jumping_is_still_denied if {
	doc := example_return("1.2.0", true)
	deny == ["checkout: scorer 1.2.0 goes from 0% to 90% of the traffic in one change, more than its canary rollout's step of 10%: raise it one step at a time"] with input as doc
}
