"""Artifact URIs: the one place that says which ``artifact.uri`` values the catalog accepts.

Three forms, each naming bytes that cannot change under the same URI:

- a path relative to the catalog's folder, ``artifacts/sha256/ab/<hex>``;
- ``file:///absolute/path`` (an empty authority: three slashes);
- ``oci://host[:port]/repository@sha256:<manifest digest>``.

``parse_artifact_uri`` splits a URI into its form and parts, or says why it is not one of them
(characters no reader or URL keeps as written, ``..`` segments, a file URI with a host, a
malformed registry host, a Windows path). ``check_artifact_uri`` turns that, and whether the URI
is pinned to the version's digest, into problems. Checks that need more of the catalog (which
declared store a URI lies in) build on ``parse_artifact_uri``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from catalog.domain.digests import SHA256_HEX, is_digest
from catalog.domain.problems import Loc, Problem

__all__ = ["ArtifactURI", "UriRefusal", "check_artifact_uri", "parse_artifact_uri"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_PORT = re.compile(r"^[0-9]{1,5}$")
# The OCI distribution spec's repository name: lowercase components joined by '/'.
_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_CONTENT_HEX = re.compile(rf"(?<![0-9a-f]){SHA256_HEX}(?![0-9a-f])")
_CHARACTER_NAMES = {"\0": "a NUL byte", "\n": "a newline", "\r": "a carriage return", "\t": "a tab"}
# Written as they are, these would be read as URL syntax by an http artifact source (base_url + path).
_URL_SYNTAX = {"%": "a percent-escape, which nothing decodes", "?": "a query", "#": "a fragment"}
_FORMS = "a path relative to the catalog, file:///absolute/path or oci://host/repo@sha256:<64 hex>"


@dataclass(frozen=True, slots=True)
class ArtifactURI:
    """A well-formed artifact URI, split into its parts."""

    kind: Literal["path", "file", "oci"]
    path: str  # the relative path, the absolute path, or the registry's repository
    host: str = ""  # oci: host[:port] as written
    digest: str | None = None  # oci: the manifest digest after '@', when there is one
    tag: str | None = None  # oci: the tag after ':', when there is one


@dataclass(frozen=True, slots=True)
class UriRefusal:
    """Why a URI is not an artifact URI: what is wrong, and what to write instead."""

    code: str
    message: str
    hint: str


def parse_artifact_uri(uri: str) -> ArtifactURI | UriRefusal:
    """``uri`` split into its form and parts, or why it cannot name an artifact."""
    refusal = _characters(uri)
    if refusal is not None:
        return refusal
    if "\\" in uri or _DRIVE.match(uri):
        return UriRefusal(
            "artifact.malformed-uri",
            f"{uri!r} is a Windows path, which no other machine (nor CI, nor a cluster) can read",
            "write a path relative to the catalog with forward slashes, e.g. artifacts/sha256/ab/<64 hex>",
        )
    scheme = _SCHEME.match(uri)
    if scheme is None:
        return _path("path", uri, uri)
    name = scheme.group(1).lower()
    if name == "oci" and uri.startswith("oci://"):
        return _oci(uri)
    if name == "file":
        return _file(uri)
    if uri.startswith(f"{scheme.group(1)}://"):
        return UriRefusal(
            "artifact.unsupported-scheme",
            f"{scheme.group(1)}:// artifacts are not supported",
            f"use {_FORMS}",
        )
    return _path("path", uri, uri)  # a colon in a relative path (models/a:b) is just a character


def _characters(uri: str) -> UriRefusal | None:
    for i, char in enumerate(uri):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf") or char.isspace() or category.startswith("Z"):
            if char in _CHARACTER_NAMES:
                what = _CHARACTER_NAMES[char]
            elif char.isspace() or category.startswith("Z"):
                what = f"a space (U+{ord(char):04X})" if char != " " else "a space"
            else:
                kind = "control" if category == "Cc" else "invisible format"
                what = f"the {kind} character U+{ord(char):04X}"
            return UriRefusal(
                "artifact.malformed-uri",
                f"{uri!r} holds {what} (character {i + 1})",
                "artifact URIs are written without spaces or control characters; "
                "store the artifact by its digest (modelcat register) and use the URI it prints",
            )
    return None


def _file(uri: str) -> ArtifactURI | UriRefusal:
    if uri.startswith("file:///"):
        return _path("file", uri, uri[len("file://") :])
    rest = uri[len("file:") :].lstrip("/")
    if uri.startswith("file://"):
        message = (
            f"{uri!r} names the host {rest.split('/', 1)[0]!r}: a file URI holds an absolute path after three slashes"
        )
    else:
        message = f"{uri!r} is not a file URI: those start with file:///"
    return UriRefusal(
        "artifact.malformed-uri",
        message,
        f"write file:///{rest} for an absolute path, or {rest} for a path relative to the catalog",
    )


def _path(kind: Literal["path", "file"], uri: str, path: str) -> ArtifactURI | UriRefusal:
    segments = path.split("/")
    if ".." in segments:
        return UriRefusal(
            "artifact.malformed-uri",
            f"{uri!r} has a '..' segment: an artifact is named by where it is, not by a way out of a folder",
            "write the path without '..' (relative to the catalog's folder), or an absolute file:/// URI",
        )
    for char, what in _URL_SYNTAX.items():
        if char in path:
            return UriRefusal(
                "artifact.malformed-uri",
                f"{uri!r} holds '{char}', which an http artifact source would read as {what}",
                "name the artifact by its digest, e.g. artifacts/sha256/ab/<64 hex>",
            )
    if not path.strip("/"):
        return UriRefusal("artifact.malformed-uri", f"{uri!r} names no file", f"use {_FORMS}")
    return ArtifactURI(kind, path)


def _oci(uri: str) -> ArtifactURI | UriRefusal:
    reference, at, digest = uri[len("oci://") :].partition("@")
    host, _, repository = reference.partition("/")
    name, colon, tag = repository.partition(":")
    problem = _host_problem(host)
    if not problem and not _REPOSITORY.match(name):
        problem = (
            f"{name!r} is not an OCI repository name (lowercase letters and digits, separated by "
            "'.', '_', '__' or '-', in components joined by '/')"
        )
    if not problem and colon and not _TAG.match(tag):
        problem = f"{tag!r} is not a tag"
    if not problem and colon and at:
        problem = f"it names both the tag {tag!r} and a digest; the digest alone names the bytes"
    if problem:
        return UriRefusal(
            "artifact.malformed-uri",
            f"{uri!r}: {problem}",
            "write oci://host[:port]/repo@sha256:<64 hex> (an IPv6 host in brackets: oci://[::1]:5000/repo@sha256:...)",
        )
    return ArtifactURI("oci", name, host, digest if at else None, tag if colon else None)


def _host_problem(host: str) -> str:
    """What is wrong with ``host[:port]`` as a registry, or '' when it is right."""
    if host.startswith("["):
        address, bracket, port = host[1:].partition("]")
        if not bracket:
            return f"the host {host!r} opens '[' without closing it"
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return f"{address!r} in brackets is not an IPv6 address"
        if port and not port.startswith(":"):
            return f"the host {host!r} has {port!r} after ']'"
        port = port[1:]
    else:
        name, _, port = host.partition(":")
        if not _HOSTNAME.match(name):
            return f"{name!r} is not a host name" if name else "the URI names no registry host"
    if port and not (_PORT.match(port) and 0 < int(port) < 65536):
        return f"{port!r} is not a port (1-65535)"
    return ""


def check_artifact_uri(loc: Loc, uri: str, digest: str, what: str = "artifact") -> Iterator[Problem]:
    """The problems of ``uri`` as the ``what`` (an artifact, a signature bundle) whose digest is ``digest``."""
    parsed = parse_artifact_uri(uri)
    if isinstance(parsed, UriRefusal):
        yield Problem(parsed.code, parsed.message, loc=loc, hint=parsed.hint)
        return
    if parsed.kind == "oci":
        if not is_digest(parsed.digest):
            yield Problem(
                "artifact.mutable-reference",
                f"{uri!r} is not pinned by digest (a tag can be moved to other bytes)",
                loc=loc,
                hint="reference the manifest by digest: oci://host/repo@sha256:<64 hex>",
            )
        return
    named = _CONTENT_HEX.findall(parsed.path)
    hexdigest = digest.removeprefix("sha256:")
    if not named:
        yield Problem(
            "artifact.mutable-reference",
            f"{uri!r} does not name the {what}'s digest (the file behind it can be replaced)",
            loc=loc,
            hint="store artifacts by digest, e.g. artifacts/sha256/ab/<64 hex>",
        )
    elif named[-1] != hexdigest:
        yield Problem(
            "artifact.uri-digest-mismatch",
            f"the URI names sha256:{named[-1][:12]}… but digest is sha256:{hexdigest[:12]}…",
            loc=loc,
            hint="point the URI at the stored object of this digest",
        )
