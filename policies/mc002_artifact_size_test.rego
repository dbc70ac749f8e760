# Unit tests of MC002 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc002

import rego.v1

example_version(size, limits) := {
	"kind": "version",
	"model": {"name": "scorer", "owner": "ml@example.com", "present": true},
	"version": {"version": "1.0.0", "present": true, "size_bytes": size},
	"limits": limits,
	"artifact": {},
}

test_a_size_within_the_limits_passes if {
	doc := example_version(2048, {"max_artifact_bytes": 4096, "min_artifact_bytes": 512})
	deny == [] with input as doc
}

test_a_declared_size_over_the_limit_is_denied if {
	doc := example_version(5000, {"max_artifact_bytes": 4096})
	deny == ["scorer 1.0.0: declared artifact size 5000 bytes is over the limit of 4096 bytes"] with input as doc
}

test_the_model_s_lower_limit_wins if {
	doc := object.union(example_version(5000, {"max_artifact_bytes": 2147483648}), {"model": {"max_artifact_bytes": 4096}})
	deny == ["scorer 1.0.0: declared artifact size 5000 bytes is over the limit of 4096 bytes"] with input as doc
}

test_the_stored_size_is_checked_too if {
	doc := object.union(example_version(2048, {"max_artifact_bytes": 4096}), {"artifact": {"observed_size_bytes": 9000}})
	deny == ["scorer 1.0.0: stored artifact size 9000 bytes is over the limit of 4096 bytes"] with input as doc
}

test_a_size_under_the_minimum_is_denied if {
	doc := example_version(100, {"max_artifact_bytes": 4096, "min_artifact_bytes": 512})
	deny == ["scorer 1.0.0: declared artifact size 100 bytes is under the minimum of 512 bytes"] with input as doc
}

test_sizes_above_2_pow_31_are_printed_exactly if {
	doc := example_version(3000000000, {"max_artifact_bytes": 2147483648})
	deny == ["scorer 1.0.0: declared artifact size 3000000000 bytes is over the limit of 2147483648 bytes"] with input as doc
}
