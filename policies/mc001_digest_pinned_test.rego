# Unit tests of MC001 (opa test policies/ --ignore fixtures, or conftest verify: modelcat's docs/policies.md).
package modelcat.mc001

import rego.v1

example_hex := "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"

example_other_hex := "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"

example_version(uri) := {
	"kind": "version",
	"model": {"name": "scorer", "owner": "ml@example.com", "present": true},
	"version": {
		"version": "1.0.0",
		"present": true,
		"uri": uri,
		"digest": concat("", ["sha256:", example_hex]),
	},
}

test_a_path_naming_its_digest_passes if {
	doc := example_version(concat("", ["artifacts/sha256/ca/", example_hex]))
	deny == [] with input as doc
}

test_a_path_without_a_digest_is_denied if {
	doc := example_version("artifacts/latest/model.onnx")
	deny == [concat("", ["scorer 1.0.0: artifact URI artifacts/latest/model.onnx does not name its digest sha256:", example_hex])] with input as doc
}

test_the_last_digest_in_the_path_is_the_one_that_counts if {
	uri := concat("", ["artifacts/", example_hex, "/", example_other_hex])
	doc := example_version(uri)
	deny == [concat("", ["scorer 1.0.0: artifact URI ", uri, " does not name its digest sha256:", example_hex])] with input as doc
}

test_an_oci_tag_is_denied if {
	doc := example_version("oci://registry.example.com/ml/scorer:v1")
	deny == ["scorer 1.0.0: artifact URI oci://registry.example.com/ml/scorer:v1 is not pinned by a manifest digest (@sha256:...)"] with input as doc
}

test_an_oci_manifest_digest_passes if {
	doc := example_version(concat("", ["oci://registry.example.com/ml/scorer@sha256:", example_other_hex]))
	deny == [] with input as doc
}

test_a_deleted_version_is_not_judged if {
	deny == [] with input as {"kind": "version", "model": {"name": "scorer", "present": true}, "version": {"version": "1.0.0", "present": false}}
}
