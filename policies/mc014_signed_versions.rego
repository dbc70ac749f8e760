# MC014: an environment whose trust policy requires signatures (trust.environments[].require_signatures,
# the default) serves only versions signed by a key it trusts, at or above that key's min_version (how
# a compromised Vault key version is revoked). Every route with traffic counts, and the mirrored
# version of a shadow step (it receives copies of real requests); disabled bindings are exempt. The
# signature itself is verified cryptographically by modelcat review and by every replica.
package modelcat.mc014

import rego.v1

rule := {
	"id": "MC014",
	"title": "Served versions signed by a trusted key",
	"name": "ServedVersionsSignedByTrustedKey",
	"description": "In an environment whose trust policy requires signatures, every version a binding routes traffic (or mirrors requests) to carries a signature bundle by a key the environment trusts, at or above the key's min_version (a revoked key version is refused). Sign the version with modelcat sign, with a key listed under trust.environments.",
	"severity": "deny",
	"kinds": ["binding"],
}

# the routes whose version receives requests: traffic, or the copies of a shadow step
serving := [route |
	input.kind == "binding"
	input.binding.enabled
	input.trust.required
	some route in input.routes
	route.known
	receives_requests(route)
]

receives_requests(route) if route.weight > 0

receives_requests(route) if route.mirrored == true

deny := [msg | some part in [unsigned, untrusted, revoked]; some msg in part]

unsigned := [msg |
	some route in serving
	route.signed == false
	msg := sprintf("%s: %s %s is not signed, and environment %s serves only versions signed by a key it trusts (%s): sign it with modelcat sign", [input.application.name, input.binding.model, route.version, input.application.environment, input.trust.keys_text])
]

# count() of a comprehension is always defined: no `not` over a lookup that may be undefined
untrusted := [msg |
	some route in serving
	route.signed == true
	count([key | some key in input.trust.keys; key.name == route.bundle.key]) == 0
	msg := sprintf("%s: %s %s is signed by key %s, which environment %s does not trust (trusted: %s)", [input.application.name, input.binding.model, route.version, route.bundle.key, input.application.environment, input.trust.keys_text])
]

revoked := [msg |
	some route in serving
	route.signed == true
	some key in input.trust.keys
	key.name == route.bundle.key
	route.bundle.key_version < key.min_version
	msg := sprintf("%s: %s %s is signed by key %s version %v, below its min_version %v (a revoked key version): sign it again with the current version", [input.application.name, input.binding.model, route.version, key.name, route.bundle.key_version, key.min_version])
]
