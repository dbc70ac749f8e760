# Unit tests of MC014 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc014

import rego.v1

signed_route(key, key_version) := {"version": "1.1.0", "weight": 100, "known": true, "mirrored": false, "signed": true, "bundle": {"key": key, "key_version": key_version}}

unsigned_route := {"version": "1.1.0", "weight": 100, "known": true, "mirrored": false, "signed": false}

example_trust := {"required": true, "keys": [{"name": "release", "min_version": 1}, {"name": "transit", "min_version": 3}], "keys_text": "release, transit"}

example_binding(route, trust) := {
	"kind": "binding",
	"application": {"name": "checkout", "environment": "production", "production": true},
	"binding": {"model": "scorer", "enabled": true},
	"trust": trust,
	"routes": [route],
}

test_a_version_signed_by_a_trusted_key_passes if {
	deny == [] with input as example_binding(signed_route("release", 1), example_trust)
	deny == [] with input as example_binding(signed_route("transit", 3), example_trust)
}

test_an_unsigned_version_is_denied if {
	deny == ["checkout: scorer 1.1.0 is not signed, and environment production serves only versions signed by a key it trusts (release, transit): sign it with modelcat sign"] with input as example_binding(unsigned_route, example_trust)
}

test_a_version_signed_by_an_untrusted_key_is_denied if {
	deny == ["checkout: scorer 1.1.0 is signed by key dev, which environment production does not trust (trusted: release, transit)"] with input as example_binding(signed_route("dev", 1), example_trust)
}

test_a_revoked_key_version_is_denied if {
	deny == ["checkout: scorer 1.1.0 is signed by key transit version 2, below its min_version 3 (a revoked key version): sign it again with the current version"] with input as example_binding(signed_route("transit", 2), example_trust)
}

test_a_mirrored_version_must_be_signed_too if {
	route := object.union(unsigned_route, {"weight": 0, "mirrored": true})
	count(deny) == 1 with input as example_binding(route, example_trust)
}

test_a_route_without_traffic_passes if {
	route := object.union(unsigned_route, {"weight": 0})
	deny == [] with input as example_binding(route, example_trust)
}

test_an_environment_that_does_not_require_signatures_passes if {
	trust := object.union(example_trust, {"required": false})
	deny == [] with input as example_binding(unsigned_route, trust)
}

test_a_disabled_binding_passes if {
	doc := object.union(example_binding(unsigned_route, example_trust), {"binding": {"model": "scorer", "enabled": false}})
	deny == [] with input as doc
}
