# MC001: an artifact URI pins the bytes it names. An oci:// URI is pinned by a manifest digest;
# any other URI (a path, file://, http) must name the artifact's own sha256, so the object behind
# it cannot be replaced without the catalog changing.
package modelcat.mc001

import rego.v1

rule := {
	"id": "MC001",
	"title": "Artifact pinned by digest",
	"name": "ArtifactPinnedByDigest",
	"description": "An artifact URI pins the bytes it names: an oci:// URI by a manifest digest (@sha256:...), any other URI (a path, file://, http) by naming the artifact's own sha256, so the bytes behind it cannot change without the catalog changing.",
	"severity": "deny",
	"kinds": ["version"],
}

deny := [msg | some part in [oci_unpinned, uri_not_naming_digest]; some msg in part]

oci_unpinned := [msg |
	input.kind == "version"
	v := input.version
	v.present
	uri := v.uri
	startswith(uri, "oci://")
	not regex.match(`^oci://[^/@]+/[^@]+@sha256:[0-9a-f]{64}$`, uri)
	msg := sprintf("%s %s: artifact URI %s is not pinned by a manifest digest (@sha256:...)", [input.model.name, v.version, uri])
]

uri_not_naming_digest := [msg |
	input.kind == "version"
	v := input.version
	v.present
	uri := v.uri
	hex := substring(v.digest, 7, -1)
	not startswith(uri, "oci://")
	named := regex.find_n(`[0-9a-f]{64}`, uri, -1)
	not last_is(named, hex)
	msg := sprintf("%s %s: artifact URI %s does not name its digest %s", [input.model.name, v.version, uri, v.digest])
]

last_is(named, hex) if {
	count(named) > 0
	named[count(named) - 1] == hex
}
