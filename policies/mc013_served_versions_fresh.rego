# MC013 (warning): a binding outside production serves traffic from a version trained more than its
# gates' max_age_days ago (the binding's gates over defaults.gates, field by field), in every
# environment MC004 does not already deny it in. Routes with weight 0 and disabled bindings are
# exempt. The age is counted in whole days to the review's --now (the input's route.age_days).
package modelcat.mc013

import rego.v1

rule := {
	"id": "MC013",
	"title": "Served versions within their age gate",
	"name": "ServedVersionsWithinAgeGate",
	"description": "A warning: a binding outside production sends traffic to a version trained more than its gates' max_age_days ago (the binding's gates over defaults.gates; in production MC004 denies it). Routes with weight 0 and disabled bindings are exempt; the age is counted to the review's date.",
	"severity": "warn",
	"kinds": ["binding"],
}

warn := [msg |
	input.kind == "binding"
	input.binding.enabled
	input.application.production == false
	is_number(input.gates.max_age_days)
	some route in input.routes
	route.known
	route.weight > 0
	route.age_days > input.gates.max_age_days
	msg := sprintf("%s: %s %s is %v days old, over its max_age_days gate of %v days: retrain it or route a newer version", [input.application.name, input.binding.model, route.version, route.age_days, input.gates.max_age_days])
]
