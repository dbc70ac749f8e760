# MC002: an artifact is within the size limits: the model's own max_artifact_bytes (or the
# catalog's, whichever is lower) and the catalog's min_artifact_bytes. The size the catalog
# declares is checked, and the stored file's size when modelcat could see it.
# Sizes are printed with %v: regopy's %d wraps above 2^31.
package modelcat.mc002

import rego.v1

rule := {
	"id": "MC002",
	"title": "Artifact within the size limit",
	"name": "ArtifactWithinSizeLimit",
	"description": "An artifact is within the size limits: at most the model's max_artifact_bytes or the catalog's, whichever is lower, and at least the catalog's min_artifact_bytes. The size the catalog declares is checked, and the stored file's size when it is local.",
	"severity": "deny",
	"kinds": ["version"],
}

# The lower of the model's and the catalog's limit. Not min(): regopy's min() is wrong for numbers
# above 2^31 (min([2147483648, 4096]) gives 2147483648); comparisons are right.
limit := input.model.max_artifact_bytes if {
	is_number(input.model.max_artifact_bytes)
	input.model.max_artifact_bytes < input.limits.max_artifact_bytes
} else := input.limits.max_artifact_bytes

sizes contains ["declared", input.version.size_bytes] if is_number(input.version.size_bytes)

sizes contains ["stored", input.artifact.observed_size_bytes] if is_number(input.artifact.observed_size_bytes)

deny := [msg | some part in [too_large, too_small]; some msg in part]

too_large := [msg |
	input.kind == "version"
	input.version.present
	some pair in sizes
	pair[1] > limit
	msg := sprintf("%s %s: %s artifact size %v bytes is over the limit of %v bytes", [input.model.name, input.version.version, pair[0], pair[1], limit])
]

too_small := [msg |
	input.kind == "version"
	input.version.present
	is_number(input.limits.min_artifact_bytes)
	some pair in sizes
	pair[1] < input.limits.min_artifact_bytes
	msg := sprintf("%s %s: %s artifact size %v bytes is under the minimum of %v bytes", [input.model.name, input.version.version, pair[0], pair[1], input.limits.min_artifact_bytes])
]
