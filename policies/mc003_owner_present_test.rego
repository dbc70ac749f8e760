# Unit tests of MC003 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc003

import rego.v1

example_settings := {"owner_placeholders": ["tbd", "n/a"]}

example_model(owner) := {"kind": "model", "model": {"name": "scorer", "owner": owner}}

example_application(owner) := {"kind": "application", "application": {"name": "checkout", "owner": owner}}

test_a_named_owner_passes if {
	doc := example_model("ml@example.com")
	deny == [] with input as doc with data.modelcat.settings as example_settings
}

test_a_placeholder_owner_is_denied_whatever_its_case if {
	doc := example_model(" TBD ")
	deny == ["model scorer has no owner (owner is ' TBD ')"] with input as doc with data.modelcat.settings as example_settings
}

test_a_blank_application_owner_is_denied if {
	doc := example_application("  ")
	deny == ["application checkout has no owner (owner is '  ')"] with input as doc with data.modelcat.settings as example_settings
}

test_the_placeholders_come_from_the_settings if {
	doc := example_model("TBD")
	deny == [] with input as doc with data.modelcat.settings as {"owner_placeholders": []}
}
