# Unit tests of MC006 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc006

import rego.v1

example_settings := {"max_step_percent": 25}

example_binding(strategy, step) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": strategy, "step_percent": step, "largest_step": step, "explicit_steps": false, "guarded": true},
}

example_steps(strategy, steps, largest) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": strategy, "step_percent": 100, "steps": steps, "largest_step": largest, "explicit_steps": true, "guarded": true},
}

test_a_step_within_the_maximum_passes if {
	doc := example_binding("canary", 25)
	deny == [] with input as doc with data.modelcat.settings as example_settings
}

test_a_step_over_the_maximum_is_denied if {
	doc := example_binding("canary", 50)
	deny == ["checkout: scorer canary step of 50% is over the maximum of 25%"] with input as doc with data.modelcat.settings as example_settings
}

test_a_linear_step_is_limited_too if {
	doc := example_binding("linear", 30)
	deny == ["checkout: scorer linear step of 30% is over the maximum of 25%"] with input as doc with data.modelcat.settings as example_settings
}

test_all_at_once_has_no_step if {
	doc := example_binding("all_at_once", 100)
	deny == [] with input as doc with data.modelcat.settings as example_settings
}

test_the_maximum_comes_from_the_settings if {
	doc := example_binding("canary", 50)
	deny == [] with input as doc with data.modelcat.settings as {"max_step_percent": 50}
}

test_a_steps_list_is_judged_by_its_largest_step if {
	doc := example_steps("canary", [5, 50, 100], 45)
	deny == ["checkout: scorer canary largest step of 45% is over the maximum of 25%"] with input as doc with data.modelcat.settings as example_settings
}

test_a_steps_list_of_small_steps_passes if {
	doc := example_steps("linear", [5, 25, 50, 75, 100], 25)
	deny == [] with input as doc with data.modelcat.settings as example_settings
}
