# MC005: no traffic goes to a deprecated or retired version (weight 0 is allowed: it routes only
# pinned smoke requests). Disabled bindings route nothing and are exempt.
package modelcat.mc005

import rego.v1

rule := {
	"id": "MC005",
	"title": "No traffic to deprecated or retired versions",
	"name": "NoTrafficToDeprecatedOrRetiredVersions",
	"description": "No traffic goes to a deprecated or retired version. Weight 0 is allowed (it routes only pinned smoke requests); disabled bindings route nothing and are exempt.",
	"severity": "deny",
	"kinds": ["binding"],
}

deny := [msg |
	input.kind == "binding"
	input.binding.enabled
	some route in input.routes
	route.known
	route.weight > 0
	route.stage in ["deprecated", "retired"]
	msg := sprintf("%s: %s %s is %s but gets %v%% of traffic", [input.application.name, input.binding.model, route.version, route.stage, route.weight])
]
