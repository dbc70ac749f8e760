# Unit tests of MC013 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc013

import rego.v1

example_route := {"version": "1.0.0", "weight": 100, "known": true, "stage": "production", "age_days": 30}

example_gates := {"max_age_days": 180, "min_metrics": {}, "min_metrics_text": {}}

example_binding(route, production) := gated_binding(route, production, example_gates)

gated_binding(route, production, gates) := {
	"kind": "binding",
	"application": {"name": "nightly", "environment": "staging", "production": production},
	"binding": {"model": "scorer", "enabled": true},
	"gates": gates,
	"routes": [route],
}

test_a_fresh_version_passes if {
	doc := example_binding(example_route, false)
	warn == [] with input as doc
}

test_a_version_older_than_the_gate_is_warned_about if {
	doc := example_binding(object.union(example_route, {"age_days": 330}), false)
	warn == ["nightly: scorer 1.0.0 is 330 days old, over its max_age_days gate of 180 days: retrain it or route a newer version"] with input as doc
}

test_a_version_exactly_at_the_gate_passes if {
	doc := example_binding(object.union(example_route, {"age_days": 180}), false)
	warn == [] with input as doc
}

test_a_route_without_traffic_passes if {
	doc := example_binding(object.union(example_route, {"age_days": 330, "weight": 0}), false)
	warn == [] with input as doc
}

test_production_is_left_to_mc004 if {
	doc := example_binding(object.union(example_route, {"age_days": 330}), true)
	warn == [] with input as doc
}

test_a_disabled_binding_passes if {
	doc := object.union(example_binding(object.union(example_route, {"age_days": 330}), false), {"binding": {"enabled": false}})
	warn == [] with input as doc
}

test_no_age_gate_passes if {
	doc := gated_binding(object.union(example_route, {"age_days": 3000}), false, {"min_metrics": {}, "min_metrics_text": {}})
	warn == [] with input as doc
}
