# Unit tests of MC008 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc008

import rego.v1

example_base(served) := {
	"known": true,
	"present": true,
	"stage": "production",
	"digest": "sha256:aaaa",
	"served": served,
	"served_by": "checkout, shop",
}

example_version(digest, base) := {
	"kind": "version",
	"model": {"name": "scorer", "owner": "ml@example.com", "present": true},
	"version": {"version": "1.0.0", "present": true, "digest": digest},
	"base": base,
}

test_a_released_version_keeping_its_digest_passes if {
	doc := example_version("sha256:aaaa", example_base(true))
	deny == [] with input as doc
}

test_a_released_version_with_a_new_digest_is_denied if {
	doc := example_version("sha256:bbbb", example_base(true))
	deny == ["scorer 1.0.0 served traffic on the base revision (checkout, shop) but its digest changed from sha256:aaaa to sha256:bbbb"] with input as doc
}

test_a_deleted_released_version_is_denied if {
	doc := {"kind": "version", "model": {"name": "scorer", "present": true}, "version": {"version": "1.0.0", "present": false}, "base": example_base(true)}
	deny == ["scorer 1.0.0 served traffic on the base revision (checkout, shop) but was deleted"] with input as doc
}

test_a_version_that_never_served_may_change if {
	doc := example_version("sha256:bbbb", example_base(false))
	deny == [] with input as doc
}
