# Unit tests of MC009 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc009

import rego.v1

example_settings := {"min_production_replicas": 2}

example_binding := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"serving": {"replicas": 2, "min_replicas": 2, "max_replicas": 4},
	"rollout": {"strategy": "canary", "step_percent": 10, "guarded": true},
}

test_redundant_guarded_serving_passes if {
	deny == [] with input as example_binding with data.modelcat.settings as example_settings
}

test_too_few_replicas_are_denied if {
	doc := object.union(example_binding, {"serving": {"replicas": 1}})
	deny == ["checkout: scorer runs 1 replica(s); production needs at least 2"] with input as doc with data.modelcat.settings as example_settings
}

test_inverted_bounds_are_denied if {
	doc := object.union(example_binding, {"serving": {"min_replicas": 3, "max_replicas": 2}})
	deny == ["checkout: scorer max_replicas 2 is below min_replicas 3"] with input as doc with data.modelcat.settings as example_settings
}

test_an_unguarded_canary_is_denied if {
	doc := object.union(example_binding, {"rollout": {"guarded": false}})
	deny == ["checkout: scorer canary rollout has no guardrails: nothing stops a bad step"] with input as doc with data.modelcat.settings as example_settings
}

test_a_binding_outside_production_is_exempt if {
	doc := object.union(example_binding, {"application": {"production": false}, "serving": {"replicas": 1}})
	deny == [] with input as doc with data.modelcat.settings as example_settings
}
