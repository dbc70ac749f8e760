# Unit tests of MC005 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc005

import rego.v1

example_binding(stage, weight, enabled) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": true},
	"binding": {"model": "scorer", "enabled": enabled},
	"routes": [
		{"version": "1.0.0", "weight": weight, "known": true, "stage": stage},
		{"version": "2.0.0", "weight": 100 - weight, "known": true, "stage": "production"},
	],
}

test_traffic_to_a_production_version_passes if {
	doc := example_binding("production", 20, true)
	deny == [] with input as doc
}

test_traffic_to_a_deprecated_version_is_denied if {
	doc := example_binding("deprecated", 20, true)
	deny == ["checkout: scorer 1.0.0 is deprecated but gets 20% of traffic"] with input as doc
}

test_a_retired_version_may_keep_a_zero_weight_route if {
	doc := example_binding("retired", 0, true)
	deny == [] with input as doc
}

test_a_disabled_binding_is_exempt if {
	doc := example_binding("retired", 20, false)
	deny == [] with input as doc
}
