# Unit tests of MC004 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc004

import rego.v1

example_route := {
	"version": "1.0.0",
	"weight": 100,
	"known": true,
	"stage": "production",
	"age_days": 30,
	"metrics": {"auc": 0.95},
	"metrics_text": {"auc": "0.9500"},
}

example_binding(route) := {
	"kind": "binding",
	"application": {"name": "checkout", "owner": "payments@example.com", "environment": "production", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"gates": {"max_age_days": 180, "min_metrics": {"auc": 0.9}, "min_metrics_text": {"auc": "0.9000"}},
	"routes": [route],
}

test_a_version_that_meets_the_gates_passes if {
	doc := example_binding(example_route)
	deny == [] with input as doc
}

test_a_version_too_old_is_denied if {
	doc := example_binding(object.union(example_route, {"age_days": 330}))
	deny == ["checkout: scorer 1.0.0 is 330 days old, over the gate of 180 days"] with input as doc
}

test_a_metric_below_its_gate_is_denied if {
	doc := example_binding(object.union(example_route, {"metrics": {"auc": 0.85}, "metrics_text": {"auc": "0.8500"}}))
	deny == ["checkout: scorer 1.0.0 has auc 0.8500, below the gate of 0.9000"] with input as doc
}

# The case regopy and OPA once disagreed on (`not is_number(route.metrics[name])` of a missing key).
test_a_missing_metric_is_denied if {
	route := object.union(object.remove(example_route, ["metrics", "metrics_text"]), {"metrics": {"recall": 0.99}, "metrics_text": {"recall": "0.9900"}})
	doc := example_binding(route)
	deny == ["checkout: scorer 1.0.0 has no auc metric (gate auc >= 0.9000)"] with input as doc
}

test_a_route_without_metrics_is_denied if {
	doc := example_binding(object.remove(example_route, ["metrics", "metrics_text"]))
	deny == ["checkout: scorer 1.0.0 has no auc metric (gate auc >= 0.9000)"] with input as doc
}

test_a_route_without_traffic_is_exempt if {
	doc := example_binding(object.union(example_route, {"weight": 0, "age_days": 999, "metrics": {}}))
	deny == [] with input as doc
}

test_a_binding_outside_production_is_exempt if {
	doc := object.union(example_binding(object.union(example_route, {"age_days": 999})), {"application": {"production": false}})
	deny == [] with input as doc
}
