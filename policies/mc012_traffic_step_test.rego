# Unit tests of MC012 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc012

import rego.v1

# a canary of 10 % (steps 10, 100): 1.1.0 goes from base_weight to new_weight, 1.0.0 has the rest;
# next_step: the first planned step above base_weight, as the policy inputs compute it
example_binding(strategy, base_weight, new_weight, routed) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": strategy, "step_percent": 10, "steps": [10, 100], "largest_step": 10, "explicit_steps": false},
	"routes": [
		{"version": "1.0.0", "weight": 100 - new_weight, "base_weight": 100 - base_weight, "next_step": 100, "newer_than_falling": false, "known": true},
		{"version": "1.1.0", "weight": new_weight, "base_weight": base_weight, "next_step": next_canary_step(base_weight), "newer_than_falling": true, "known": true},
	],
	"base": {"known": true, "routed": routed},
}

next_canary_step(base_weight) := 10 if {
	base_weight < 10
} else := 100

test_the_canary_step_passes if {
	doc := example_binding("canary", 0, 10, true)
	deny == [] with input as doc
}

test_the_rest_after_the_canary_step_passes if {
	doc := example_binding("canary", 10, 100, true)
	deny == [] with input as doc
}

test_a_jump_past_the_next_step_is_denied if {
	doc := example_binding("canary", 0, 50, true)
	deny == ["checkout: scorer 1.1.0 goes from 0% to 50% of the traffic in one change, past its canary rollout's next step of 10%: raise it one step at a time"] with input as doc
}

test_all_at_once_is_not_limited if {
	doc := example_binding("all_at_once", 0, 50, true)
	deny == [] with input as doc
}

test_a_binding_new_in_this_change_is_not_limited if {
	doc := example_binding("canary", 0, 50, false)
	deny == [] with input as doc
}

# a linear rollout of 25 % (steps 25, 50, 75, 100) from 25 %: the next step is 50
example_linear(new_weight) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": "linear", "step_percent": 25, "steps": [25, 50, 75, 100], "largest_step": 25, "explicit_steps": false},
	"routes": [
		{"version": "1.0.0", "weight": 100 - new_weight, "base_weight": 75, "next_step": 100, "newer_than_falling": false, "known": true},
		{"version": "1.1.0", "weight": new_weight, "base_weight": 25, "next_step": 50, "newer_than_falling": true, "known": true},
	],
	"base": {"known": true, "routed": true},
}

test_a_linear_step_passes if {
	doc := example_linear(50)
	deny == [] with input as doc
}

test_two_linear_steps_at_once_are_denied if {
	doc := example_linear(75)
	deny == ["checkout: scorer 1.1.0 goes from 25% to 75% of the traffic in one change, past its linear rollout's next step of 50%: raise it one step at a time"] with input as doc
}

# a steps list [5, 25, 50, 100]: 1.1.0 from base_weight (next step: next_step) to new_weight
example_steps(base_weight, next_step, new_weight) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": "canary", "step_percent": 100, "steps": [5, 25, 50, 100], "largest_step": 50, "explicit_steps": true},
	"routes": [
		{"version": "1.0.0", "weight": 100 - new_weight, "base_weight": 100 - base_weight, "next_step": 100, "newer_than_falling": false, "known": true},
		{"version": "1.1.0", "weight": new_weight, "base_weight": base_weight, "next_step": next_step, "newer_than_falling": true, "known": true},
	],
	"base": {"known": true, "routed": true},
}

test_a_steps_list_allows_its_next_step if {
	deny == [] with input as example_steps(5, 25, 25)
	deny == [] with input as example_steps(50, 100, 100)
}

test_a_share_between_steps_may_rise_to_the_next_one if {
	deny == [] with input as example_steps(30, 50, 50)
}

test_a_jump_over_the_next_step_of_a_steps_list_is_denied if {
	doc := example_steps(5, 25, 50)
	deny == ["checkout: scorer 1.1.0 goes from 5% to 50% of the traffic in one change, past its canary rollout's next step of 25%: raise it one step at a time"] with input as doc
}

# after a promote (1.1.0 at 100 %, 1.0.0's route removed), VERSION goes from 0 to 90 % and 1.1.0 back
# to 10 %; newer: whether VERSION is newer than every version whose share falls (here 1.1.0)
example_return(version, newer) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": "canary", "step_percent": 10, "steps": [10, 100], "largest_step": 10, "explicit_steps": false},
	"routes": [
		{"version": version, "weight": 90, "base_weight": 0, "next_step": 10, "newer_than_falling": newer, "known": true},
		{"version": "1.1.0", "weight": 10, "base_weight": 100, "next_step": 100, "newer_than_falling": false, "known": true},
	],
	"base": {"known": true, "routed": true},
}

test_a_rollback_to_an_older_version_is_not_limited if {
	doc := example_return("1.0.0", false)
	deny == [] with input as doc
}

test_a_newer_version_jumping_is_still_denied if {
	doc := example_return("1.2.0", true)
	deny == ["checkout: scorer 1.2.0 goes from 0% to 90% of the traffic in one change, past its canary rollout's next step of 10%: raise it one step at a time"] with input as doc
}
