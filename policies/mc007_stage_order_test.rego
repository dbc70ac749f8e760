# Unit tests of MC007 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc007

import rego.v1

example_version(stage, base) := {
	"kind": "version",
	"model": {"name": "scorer", "owner": "ml@example.com", "present": true},
	"version": {"version": "1.1.0", "present": true, "stage": stage},
	"base": base,
}

test_a_version_new_in_production_is_denied if {
	doc := example_version("production", {"known": true, "present": false, "served": false})
	deny == ["scorer 1.1.0 is production but is new in this change: register it as a candidate first"] with input as doc
}

test_a_deprecated_version_brought_back_to_production_is_denied if {
	doc := example_version("production", {"known": true, "present": true, "stage": "deprecated", "served": false})
	deny == ["scorer 1.1.0 is production but was deprecated on the base revision: make it a candidate first"] with input as doc
}

test_a_candidate_promoted_to_production_passes if {
	doc := example_version("production", {"known": true, "present": true, "stage": "candidate", "served": false})
	deny == [] with input as doc
}

test_a_new_candidate_passes if {
	doc := example_version("candidate", {"known": true, "present": false, "served": false})
	deny == [] with input as doc
}

test_nothing_is_judged_without_a_base if {
	doc := example_version("production", {"known": false})
	deny == [] with input as doc
}
