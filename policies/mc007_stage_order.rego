# MC007: stage order. The catalog keeps only each version's current stage, so the order is judged
# against the base revision (--base): a version may be production on the head only if it was a
# candidate or already production on the base. A version new in this change, or one brought back
# from deprecated or retired, must go through candidate first. Skipped without --base.
package modelcat.mc007

import rego.v1

rule := {
	"id": "MC007",
	"title": "Production only after candidate",
	"name": "ProductionOnlyAfterCandidate",
	"description": "Judged against the base revision (--base): a version may be production only if it was a candidate or already production on the base. A version new in the change, or one brought back from deprecated or retired, goes through candidate first.",
	"severity": "deny",
	"kinds": ["version"],
	"requires": ["base"],
}

deny := [msg | some part in [new_in_production, skipped_candidate]; some msg in part]

new_in_production := [msg |
	input.kind == "version"
	input.version.present
	input.version.stage == "production"
	input.base.known
	input.base.present == false
	msg := sprintf("%s %s is production but is new in this change: register it as a candidate first", [input.model.name, input.version.version])
]

skipped_candidate := [msg |
	input.kind == "version"
	input.version.present
	input.version.stage == "production"
	input.base.known
	input.base.present
	stage := input.base.stage
	not stage in ["candidate", "production"]
	msg := sprintf("%s %s is production but was %s on the base revision: make it a candidate first", [input.model.name, input.version.version, stage])
]
