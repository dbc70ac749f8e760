"""A policy run as SARIF 2.1.0, the form GitHub code scanning (and other SARIF consumers) accept.

- Every location is relative to the root of the git repository that holds the catalog, through the
  uriBaseId ``%SRCROOT%`` (``originalUriBaseIds`` says where it was), whatever the working directory
  and however the paths were given. Outside a git repository the root is the catalog's folder. A file
  outside the root (e.g. ``--synth-dir /tmp/out``) keeps an absolute ``file://`` URI.
- The driver carries the package's version; each rule its PascalCase name, short and full
  descriptions, help (text and Markdown) and ``helpUri``: the rule's anchor on modelcat's policies
  page, docs/policies.md (``MODELCAT_DOCS_URL`` sets the page's address, e.g. a fork's or an
  internal copy), or the ``help_uri`` its ``rule`` object declares.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from urllib.parse import quote

from catalog.gitio import repository_root
from catalog.policy.findings import Finding, PolicyResult, RuleInfo

__all__ = ["DOCS_URL", "DOCS_URL_ENV", "SRCROOT", "SourceRoot", "docs_url", "sarif_log", "source_root", "to_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
DOCS_URL = "https://github.com/modelcat/modelcat/blob/main/docs/policies.md"
DOCS_URL_ENV = "MODELCAT_DOCS_URL"


@dataclass(frozen=True, slots=True)
class SourceRoot:
    """The folder locations are relative to: a git repository's top folder, or the catalog's folder."""

    folder: Path  # absolute, symlinks resolved
    repository: bool


def source_root(catalog: Path) -> SourceRoot:
    """The root of the git repository holding ``catalog`` (asked from the catalog's folder), else
    the catalog's folder."""
    folder = catalog.absolute().parent.resolve()
    top = repository_root(folder)
    return SourceRoot(top, True) if top is not None else SourceRoot(folder, False)


def docs_url() -> str:
    """The address of modelcat's policies page, where each rule's helpUri points (its anchor)."""
    return os.environ.get(DOCS_URL_ENV, "").strip() or DOCS_URL


def sarif_log(result: PolicyResult, catalog: Path) -> str:
    """``result`` as SARIF, its locations relative to the repository that holds ``catalog``."""
    return to_sarif(result, source_root(catalog), str(catalog), docs_url())


def _artifact_location(file: str, root: SourceRoot) -> dict[str, str]:
    path = Path(file).absolute()  # a relative path is the working directory's
    path = path.parent.resolve() / path.name
    try:
        relative = path.relative_to(root.folder)
    except ValueError:
        return {"uri": path.as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}


def _descriptor(rule: RuleInfo, docs: str) -> dict[str, object]:
    uri = rule.help_uri or f"{docs}#{rule.id.lower()}"
    full = rule.description or rule.title
    waiver = (
        f"To accept a finding for a while, waive it in the policies' waivers.yaml "
        f"(rule {rule.id}, the finding's subject, a reason and an expiry date)."
        if rule.file  # a Rego rule's findings can be waived; validation, verification and waivers' own cannot
        else ""
    )
    heading, link = f"**{rule.id}: {rule.title}** ({rule.severity})", f"[{rule.id} in the documentation]({uri})"
    text = " ".join(part for part in (full, waiver, f"Documentation: {uri}") if part)
    markdown = "\n\n".join(part for part in (heading, full, waiver, link) if part)
    descriptor: dict[str, object] = {"id": rule.id}
    if rule.name:
        descriptor["name"] = rule.name
    descriptor |= {
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": full},
        "help": {"text": text, "markdown": markdown},
        "helpUri": uri,
        "defaultConfiguration": {"level": "error" if rule.severity == "deny" else "warning"},
    }
    return descriptor


def to_sarif(result: PolicyResult, root: SourceRoot, catalog: str, docs: str = DOCS_URL) -> str:
    """The SARIF log of ``result``; a finding without a file is placed on line 1 of ``catalog``."""
    rules = sorted(result.rules, key=lambda r: r.id)
    index = {r.id: i for i, r in enumerate(rules)}

    def sarif_result(f: Finding, suppressed: bool) -> dict[str, object]:
        entry: dict[str, object] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": "error" if f.severity == "deny" else "warning",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact_location(f.file or catalog, root),
                        "region": {"startLine": max(f.line, 1), "startColumn": max(f.column, 1)},
                    },
                    "logicalLocations": [{"name": f.subject, "kind": f.kind}],
                }
            ],
            "partialFingerprints": {"modelcatSubject/v1": f"{f.rule}:{f.subject}"},
        }
        if suppressed:
            entry["suppressions"] = [{"kind": "external", "justification": f.waived}]
        return entry

    base = root.folder.as_uri()
    where = (
        "the root of the git repository that holds the catalog"
        if root.repository
        else "the catalog's folder (not in a git repository)"
    )
    package = version("modelcat")
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "modelcat",
                        "version": package,
                        "semanticVersion": package,
                        "informationUri": docs,
                        "rules": [_descriptor(r, docs) for r in rules],
                    }
                },
                "originalUriBaseIds": {
                    SRCROOT: {"uri": base if base.endswith("/") else base + "/", "description": {"text": where}}
                },
                "columnKind": "unicodeCodePoints",
                "results": [sarif_result(f, False) for f in result.findings]
                + [sarif_result(f, True) for f in result.waived],
            }
        ],
    }
    return json.dumps(document, indent=2)
