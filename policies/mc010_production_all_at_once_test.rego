# Unit tests of MC010 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc010

import rego.v1

example_binding(strategy, production) := {
	"kind": "binding",
	"application": {"name": "checkout", "production": production},
	"binding": {"model": "scorer", "enabled": true},
	"rollout": {"strategy": strategy},
}

test_all_at_once_in_production_is_warned_about if {
	doc := example_binding("all_at_once", true)
	warn == ["checkout: scorer rolls out all at once in production: no step at which a guardrail could stop a bad version"] with input as doc
}

test_a_canary_in_production_passes if {
	doc := example_binding("canary", true)
	warn == [] with input as doc
}

test_all_at_once_outside_production_passes if {
	doc := example_binding("all_at_once", false)
	warn == [] with input as doc
}
