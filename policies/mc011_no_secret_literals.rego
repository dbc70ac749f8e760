# MC011: no secret literal in the synthesized Terraform JSON (modelcat policy check --synth-dir):
# a password/token/secret/key field, or an env var so named, holding a literal value (not a
# ${...} reference), an AWS access key id, or a PEM private key. The value is never printed.
package modelcat.mc011

import rego.v1

rule := {
	"id": "MC011",
	"title": "No secret literals in synthesized output",
	"name": "NoSecretLiteralsInSynthesizedOutput",
	"description": "With --synth-dir: no secret literal in the synthesized Terraform JSON: a password, token, secret or key field (or an env var so named) holding a literal value rather than a reference, an AWS access key id, or a PEM private key. The value is never printed.",
	"severity": "deny",
	"kinds": ["resource"],
	"requires": ["synth"],
}

secret_word := `(^|[_.-])(password|passwd|passphrase|secret|token|api_?key|access_?key|secret_?key|private_?key|client_?secret|credentials?)($|[_.-])`

# fields that name a secret (a Secret's name, a reference, an ARN) rather than hold one
name_like := `(_name|_ref|_arn|_id|_path|_file|_names|_refs)$`

secret_key(key) if {
	regex.match(secret_word, lower(key))
	not regex.match(name_like, lower(key))
}

literal(value) if {
	trim_space(value) != ""
	not contains(value, "${")
}

deny := [msg | some part in [secret_field, secret_env_var, aws_key, private_key]; some msg in part]

secret_field := [msg |
	input.kind == "resource"
	some leaf in input.strings
	secret_key(leaf.key)
	literal(leaf.value)
	msg := sprintf("%s: %s: %s holds a literal secret: reference a Secret or variable instead", [input.stack, input.address, leaf.path])
]

secret_env_var := [msg |
	input.kind == "resource"
	some leaf in input.strings
	leaf.key == "value"
	secret_key(leaf.name)
	literal(leaf.value)
	msg := sprintf("%s: %s: %s (%s) holds a literal secret: use value_from with a Secret", [input.stack, input.address, leaf.path, leaf.name])
]

aws_key := [msg |
	input.kind == "resource"
	some leaf in input.strings
	regex.match(`(AKIA|ASIA)[0-9A-Z]{16}`, leaf.value)
	msg := sprintf("%s: %s: %s holds an AWS access key id", [input.stack, input.address, leaf.path])
]

private_key := [msg |
	input.kind == "resource"
	some leaf in input.strings
	regex.match(`-----BEGIN [A-Z ]*PRIVATE KEY-----`, leaf.value)
	msg := sprintf("%s: %s: %s holds a private key", [input.stack, input.address, leaf.path])
]
