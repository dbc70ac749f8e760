# Unit tests of MC011 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc011

import rego.v1

example_block(leaf) := {
	"kind": "resource",
	"stack": "prod-kubernetes",
	"address": "kubernetes_deployment_v1.app",
	"strings": [leaf],
}

test_a_literal_password_is_denied if {
	doc := example_block({"path": "spec.db_password", "key": "db_password", "name": "", "value": "hunter2"})
	deny == ["prod-kubernetes: kubernetes_deployment_v1.app: spec.db_password holds a literal secret: reference a Secret or variable instead"] with input as doc
}

test_a_reference_passes if {
	doc := example_block({"path": "spec.db_password", "key": "db_password", "name": "", "value": "${var.db_password}"})
	deny == [] with input as doc
}

test_a_field_naming_a_secret_passes if {
	doc := example_block({"path": "spec.secret_name", "key": "secret_name", "name": "", "value": "db-credentials"})
	deny == [] with input as doc
}

test_a_secret_env_var_is_denied if {
	doc := example_block({"path": "env[0].value", "key": "value", "name": "API_TOKEN", "value": "abc123"})
	deny == ["prod-kubernetes: kubernetes_deployment_v1.app: env[0].value (API_TOKEN) holds a literal secret: use value_from with a Secret"] with input as doc
}

test_an_aws_access_key_id_is_denied_wherever_it_is if {
	doc := example_block({"path": "spec.note", "key": "note", "name": "", "value": "id AKIAIOSFODNN7EXAMPLE"})
	deny == ["prod-kubernetes: kubernetes_deployment_v1.app: spec.note holds an AWS access key id"] with input as doc
}

test_a_private_key_is_denied if {
	doc := example_block({"path": "spec.tls", "key": "tls", "name": "", "value": "-----BEGIN RSA PRIVATE KEY-----\nMII..."})
	deny == ["prod-kubernetes: kubernetes_deployment_v1.app: spec.tls holds a private key"] with input as doc
}
