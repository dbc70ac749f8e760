# MC004: a production binding sends traffic only to versions that meet its gates: every metric of
# gates.min_metrics present and at least the minimum, and trained no more than max_age_days ago
# (the binding's gates over defaults.gates, field by field). Routes with weight 0 are exempt.
package modelcat.mc004

import rego.v1

rule := {
	"id": "MC004",
	"title": "Production versions meet the gates",
	"name": "ProductionVersionsMeetGates",
	"description": "A production binding sends traffic only to versions that meet its gates: every metric of gates.min_metrics present and at least the minimum, and trained no more than max_age_days ago (the binding's gates over defaults.gates, field by field). Routes with weight 0 are exempt.",
	"severity": "deny",
	"kinds": ["binding"],
}

routed contains route if {
	input.kind == "binding"
	input.application.production
	input.binding.enabled
	some route in input.routes
	route.known
	route.weight > 0
}

deny := [msg | some part in [too_old, metric_missing, metric_below]; some msg in part]

too_old := [msg |
	some route in routed
	is_number(input.gates.max_age_days)
	route.age_days > input.gates.max_age_days
	msg := sprintf("%s: %s %s is %v days old, over the gate of %v days", [input.application.name, input.binding.model, route.version, route.age_days, input.gates.max_age_days])
]

metric_missing := [msg |
	some route in routed
	some name
	minimum := input.gates.min_metrics[name]
	not is_number(route.metrics[name])
	msg := sprintf("%s: %s %s has no %s metric (gate %s >= %.4f)", [input.application.name, input.binding.model, route.version, name, name, minimum])
]

metric_below := [msg |
	some route in routed
	some name
	minimum := input.gates.min_metrics[name]
	value := route.metrics[name]
	is_number(value)
	value < minimum
	msg := sprintf("%s: %s %s has %s %.4f, below the gate of %.4f", [input.application.name, input.binding.model, route.version, name, value, minimum])
]
