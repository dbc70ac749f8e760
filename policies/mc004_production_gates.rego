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

# A metric is missing when the route's metrics hold no number under its name. Spelled with
# object.get: `not is_number(route.metrics[name])` is true under regopy for a missing key but
# undefined (no finding) under OPA. Numbers are printed from the input's *_text: OPA's sprintf
# prints %.4f of 1.0 as %!f(int64=0001).
metric_missing := [msg |
	some route in routed
	some name in object.keys(input.gates.min_metrics)
	value := object.get(object.get(route, "metrics", {}), name, null)
	not is_number(value)
	msg := sprintf("%s: %s %s has no %s metric (gate %s >= %s)", [input.application.name, input.binding.model, route.version, name, name, input.gates.min_metrics_text[name]])
]

metric_below := [msg |
	some route in routed
	some name
	minimum := input.gates.min_metrics[name]
	value := route.metrics[name]
	is_number(value)
	value < minimum
	msg := sprintf("%s: %s %s has %s %s, below the gate of %s", [input.application.name, input.binding.model, route.version, name, route.metrics_text[name], input.gates.min_metrics_text[name]])
]
