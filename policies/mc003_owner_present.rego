# MC003: every model and application names an owner: not blank, not a placeholder such as TBD
# (the list is data.modelcat.settings.owner_placeholders).
package modelcat.mc003

import rego.v1

rule := {
	"id": "MC003",
	"title": "Owner present",
	"name": "OwnerPresent",
	"description": "Every model and application names an owner: not blank, and not a placeholder such as TBD (the list is owner_placeholders in policies/settings.yaml).",
	"severity": "deny",
	"kinds": ["model", "application"],
}

placeholder(owner) if trim_space(owner) == ""

placeholder(owner) if lower(trim_space(owner)) in data.modelcat.settings.owner_placeholders

deny := [msg | some part in [model_owner, application_owner]; some msg in part]

model_owner := [msg |
	input.kind == "model"
	placeholder(input.model.owner)
	msg := sprintf("model %s has no owner (owner is '%s')", [input.model.name, input.model.owner])
]

application_owner := [msg |
	input.kind == "application"
	placeholder(input.application.owner)
	msg := sprintf("application %s has no owner (owner is '%s')", [input.application.name, input.application.owner])
]
