# MC008: a version that served traffic on the base revision (weight > 0 in an enabled binding)
# keeps its digest and is not deleted: released bytes are never swapped or lost. Register a new
# version instead. Skipped without --base. served_by is a ready-made string: regopy's sprintf
# quotes a string returned by another built-in such as concat().
package modelcat.mc008

import rego.v1

rule := {
	"id": "MC008",
	"title": "Released versions keep their bytes",
	"name": "ReleasedVersionsKeepTheirBytes",
	"description": "Judged against the base revision (--base): a version that served traffic there (weight > 0 in an enabled binding) keeps its digest and is not deleted, so released bytes are never swapped or lost. Register a new version instead.",
	"severity": "deny",
	"kinds": ["version"],
	"requires": ["base"],
}

deny := [msg | some part in [digest_changed, deleted]; some msg in part]

digest_changed := [msg |
	input.kind == "version"
	input.base.known
	input.base.served
	input.version.present
	input.version.digest != input.base.digest
	msg := sprintf("%s %s served traffic on the base revision (%s) but its digest changed from %s to %s", [input.model.name, input.version.version, input.base.served_by, input.base.digest, input.version.digest])
]

deleted := [msg |
	input.kind == "version"
	input.base.known
	input.base.served
	input.version.present == false
	msg := sprintf("%s %s served traffic on the base revision (%s) but was deleted", [input.model.name, input.version.version, input.base.served_by])
]
