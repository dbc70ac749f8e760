"""The routing table: which replicas serve which version of which model, and with what share.

One router serves one application and reads one table, a JSON file that the deployment (later:
Terraform) writes and rewrites atomically (temporary file + rename); the router watches it and
swaps the new table in. The format, ``modelcat/routing-v1``::

    {
      "apiVersion": "modelcat/routing-v1",
      "application": "checkout",
      "sticky_key": "x-user-id",
      "models": [
        {
          "name": "fraud-scorer",
          "routes": [
            {"version": "1.3.0", "weight": 90, "digest": "sha256:fbe8...",
             "replicas": ["http://10.0.0.5:8001", "http://10.0.0.6:8001"],
             "grpc_replicas": ["10.0.0.5:9001", "10.0.0.6:9001"]},
            {"version": "1.4.0", "weight": 10, "digest": "sha256:344e...",
             "replicas": ["http://10.0.0.7:8001"]},
            {"version": "1.5.0", "weight": 0, "digest": "sha256:9a1c...",
             "replicas": ["http://10.0.0.8:8001"]}
          ],
          "mirror": {"version": "1.5.0", "percent": 20, "max_abs_difference": 0.05}
        }
      ]
    }

Fields (every one typed strictly: ``10`` is a weight, ``"10"`` and ``10.0`` are not; a field not
listed here is an error, so a typo never goes unnoticed):

- ``apiVersion`` (required): ``"modelcat/routing-v1"``.
- ``application`` (required): the application's name, a DNS label as in models.yaml.
- ``sticky_key`` (optional, null by default): a lowercase request header whose value pins a
  caller to one version (see ``catalog.domain.routing``); without it, requests are split at
  random by weight.
- ``outcomes`` (optional, none by default): the outcomes the application declares, ``{name:
  kind}`` (``proportion``, ``mean`` or ``label``), the ones ``POST /v2/feedback`` accepts.
- ``models`` (required, at least one): each with
  - ``name`` (required): the model's name; unique within the table.
  - ``sticky_key`` (optional): overrides the application's sticky header for this model, as a
    binding's ``sticky_key`` does in models.yaml.
  - ``routes`` (required, at least one), in the order of models.yaml's binding (the order fixes
    which buckets each version owns: put the version being rolled out last). Each with
    ``version`` (semantic version, unique within the model), ``weight`` (integer percent, 0-100;
    a model's weights sum to exactly 100), ``digest`` (``sha256:`` and 64 lowercase hex digits:
    the bytes this version is, echoed in every response and in the assignment log; unique within
    the model) and ``replicas`` (base URLs ``http[s]://host:port[/prefix]`` of the processes
    serving this version; may be empty only when the weight is 0), and optionally
    ``grpc_replicas`` (the ``host:port`` addresses where the version's replicas serve OIP over
    gRPC, which the router's gRPC side sends to; none by default: gRPC requests for the version
    are then answered UNAVAILABLE).
  - ``mirror`` (optional, none by default): a shadow step in force (``catalog.serving.mirror``).
    ``version`` (one of the model's routes, with replicas: usually the candidate at weight 0),
    ``percent`` (integer, 1-100: the share of the model's routed requests copied to it, drawn
    from the request id) and ``max_abs_difference`` (a number >= 0: two scores agree when they
    differ by at most this; labels agree when equal). The copies' answers are compared with the
    live ones and logged, never returned. A rewrite of the weights (the rollout's fast switch)
    keeps or drops this key as the catalog's binding says.

A router's Terraform body holds the same models (``catalog.domain.bodies.ModelBody``, its routes
in ``route`` blocks): ``table_document`` writes them as a table, ``model_blocks`` reads them back.

``load_table(path)`` returns a ``RoutingTable`` or raises ``RoutingTableInvalid`` with every
problem found (file, field path, message, hint) or ``RoutingTableUnreadable`` when the file
cannot be read at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from catalog.domain.analysis_plan import OutcomeKind
from catalog.domain.digests import DIGEST
from catalog.domain.models import DNS_LABEL, HEADER_NAME, SEMVER
from catalog.domain.outcomes import OUTCOME_NAME
from catalog.domain.problems import Loc, Problem, display_path
from catalog.domain.routing import BUCKETS, SPLIT_HINT, split_problem
from catalog.domain.strict import STRICT
from catalog.errors import RoutingTableInvalid, RoutingTableUnreadable
from catalog.wording import did_you_mean

__all__ = [
    "API_VERSION",
    "LoadedTable",
    "ModelRoutes",
    "RoutingTable",
    "TableMirror",
    "TableRoute",
    "load_table",
    "model_blocks",
    "parse_table",
    "table_document",
]

API_VERSION = "modelcat/routing-v1"
MAX_TABLE_BYTES = 16 << 20


def _replica_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("a replica is a base URL starting with http:// or https://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if not parts.hostname or port == 0:
        raise ValueError("a replica URL names a host (and a port), e.g. http://10.0.0.5:8001")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("a replica URL has no credentials, query or fragment: http[s]://host:port[/prefix]")
    return value.rstrip("/")


def _grpc_address(value: str) -> str:
    host, _, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not host or ("/" in value) or (":" in host and not bracketed) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("a gRPC replica is host:port, e.g. 10.0.0.5:9001 ([::1]:9001 for IPv6), no scheme")
    return value


class _Strict(BaseModel):
    model_config = STRICT


ReplicaUrl = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_replica_url)]
GrpcAddress = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_grpc_address)]
Header = Annotated[str, Field(pattern=HEADER_NAME, description="A lowercase request header name")]


class TableRoute(_Strict):
    version: Annotated[str, Field(pattern=SEMVER)]
    weight: Annotated[int, Field(ge=0, le=BUCKETS)]
    digest: Annotated[str, Field(pattern=DIGEST)]
    replicas: list[ReplicaUrl]
    grpc_replicas: list[GrpcAddress] | None = None


class TableMirror(_Strict):
    version: Annotated[str, Field(pattern=SEMVER)]
    percent: Annotated[int, Field(ge=1, le=BUCKETS)]
    max_abs_difference: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class ModelRoutes(_Strict):
    name: Annotated[str, Field(pattern=DNS_LABEL)]
    sticky_key: Header | None = None
    routes: list[TableRoute] = Field(min_length=1)
    mirror: TableMirror | None = None


class RoutingTable(_Strict):
    api_version: Literal["modelcat/routing-v1"] = Field(alias="apiVersion")
    application: Annotated[str, Field(pattern=DNS_LABEL)]
    sticky_key: Header | None = None
    outcomes: dict[Annotated[str, Field(pattern=OUTCOME_NAME)], OutcomeKind] = Field(default_factory=dict)
    models: list[ModelRoutes] = Field(min_length=1)

    def sticky_key_of(self, model: ModelRoutes) -> str | None:
        return model.sticky_key or self.sticky_key


def table_document(
    application: str, models: Sequence[Mapping[str, Any]], outcomes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The table of ``application`` whose models are ``models``, ``model`` blocks (``ModelBody``'s
    fields, as dicts): each block's ``route`` written ``routes``, a null sticky key, gRPC replicas and mirror left
    out (a ``mirror`` given as a list of one, as Terraform states hold it, is that one); the
    application's declared ``outcomes`` (name: kind) when it has any."""
    from catalog.domain.bodies import MirrorBody, RouteBody  # not loaded by the router, which only reads tables

    def model(block: Mapping[str, Any]) -> dict[str, Any]:
        routes = [
            {name: route[name] for name in RouteBody.model_fields if route.get(name) is not None}
            for route in block["route"] or []
        ]
        sticky_key = {"sticky_key": block["sticky_key"]} if block.get("sticky_key") else {}
        mirror = block.get("mirror")
        if isinstance(mirror, list):  # a Terraform state holds the block as a list of at most one
            mirror = mirror[0] if mirror else None
        mirrored = {"mirror": {name: mirror[name] for name in MirrorBody.model_fields}} if mirror else {}
        return {"name": block["name"], "routes": routes, **sticky_key, **mirrored}

    declared = {"outcomes": dict(outcomes)} if outcomes else {}
    return {"apiVersion": API_VERSION, "application": application, **declared, "models": [model(m) for m in models]}


def model_blocks(table: RoutingTable) -> list[dict[str, Any]]:
    """The table's models as ``model`` blocks (each with its sticky key resolved): ``table_document``'s inverse."""
    from catalog.domain.bodies import MirrorBody, ModelBody, RouteBody

    return [
        ModelBody(
            name=model.name,
            sticky_key=table.sticky_key_of(model),
            route=[RouteBody(**route.model_dump()) for route in model.routes],
            mirror=MirrorBody(**model.mirror.model_dump()) if model.mirror else None,
        ).model_dump()
        for model in table.models
    ]


@dataclass(frozen=True, slots=True)
class LoadedTable:
    """A validated table with where it came from: the file and the sha256 of its bytes."""

    table: RoutingTable
    path: str
    sha256: str


def _field_names(loc: Loc) -> list[str]:
    """The fields allowed where an unknown field ``loc`` was found."""
    kinds: dict[int, type[BaseModel]] = {0: RoutingTable, 2: ModelRoutes, 4: TableRoute}
    model = TableMirror if len(loc) == 4 and loc[-2] == "mirror" else kinds.get(len(loc) - 1)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _schema_problem(error: Any, document: object, file: str) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    message, hint, code = error["msg"], "", "table.schema"
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _field_names(loc)
        message = f"unknown field {name!r}"
        code = "table.unknown-field"
        hint = did_you_mean(name, allowed) + (f"allowed here: {', '.join(allowed)}" if allowed else "")
    elif kind == "missing":
        message = f"required field {loc[-1]!r} is missing"
    elif kind in ("int_type", "int_from_float") and loc and loc[-1] == "weight":
        message = f"a weight is an integer percent (0-100), not {error.get('input')!r}"
    elif kind == "string_pattern_mismatch" and loc and loc[-1] == "digest":
        hint = "write sha256: followed by 64 lowercase hex digits"
    elif kind == "literal_error" and loc == ("apiVersion",):
        hint = f'write "apiVersion": "{API_VERSION}"'
    elif kind == "value_error":
        message = str(error.get("ctx", {}).get("error", message))
    return Problem(code, message, loc, hint=hint, path=display_path(loc, document), file=file)


def _cross_problems(table: RoutingTable, document: object, file: str) -> list[Problem]:
    problems: list[Problem] = []

    def add(code: str, message: str, loc: Loc, hint: str = "") -> None:
        problems.append(Problem(code, message, loc, hint=hint, path=display_path(loc, document), file=file))

    seen_models: set[str] = set()
    for i, model in enumerate(table.models):
        if model.name in seen_models:
            add("table.duplicate-model", f"model {model.name!r} is listed twice", ("models", i, "name"))
        seen_models.add(model.name)
        unbalanced = split_problem(route.weight for route in model.routes)
        if unbalanced:
            add("table.weights", unbalanced, ("models", i, "routes"), SPLIT_HINT)
        versions: set[str] = set()
        digests: dict[str, str] = {}
        for j, route in enumerate(model.routes):
            loc: Loc = ("models", i, "routes", j)
            if route.version in versions:
                add("table.duplicate-version", f"version {route.version} is routed twice", (*loc, "version"))
            versions.add(route.version)
            if route.digest in digests and digests[route.digest] != route.version:
                add(
                    "table.duplicate-digest",
                    f"versions {digests[route.digest]} and {route.version} name the same digest",
                    (*loc, "digest"),
                )
            digests.setdefault(route.digest, route.version)
            if route.weight > 0 and not route.replicas:
                add(
                    "table.no-replicas",
                    f"version {route.version} gets {route.weight}% of traffic but lists no replicas",
                    (*loc, "replicas"),
                    "list at least one replica URL, or set the weight to 0",
                )
        mirror = model.mirror
        if mirror is not None:
            target = next((route for route in model.routes if route.version == mirror.version), None)
            where: Loc = ("models", i, "mirror", "version")
            if target is None:
                add(
                    "table.mirror-version",
                    f"version {mirror.version} is mirrored but not routed",
                    where,
                    "add it to the model's routes (at weight 0), or mirror a routed version",
                )
            elif not target.replicas:
                add(
                    "table.mirror-replicas",
                    f"version {mirror.version} is mirrored but lists no replicas",
                    where,
                    "list at least one replica URL of the mirrored version",
                )
    return problems


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_table(data: bytes, file: str = "") -> RoutingTable:
    """Validate a table's bytes; raise ``RoutingTableInvalid`` listing every problem."""
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as e:
        raise RoutingTableInvalid(
            file, [Problem("table.encoding", f"not UTF-8 (byte {e.start} is {data[e.start]:#04x})", file=file)]
        ) from None
    except json.JSONDecodeError as e:
        problem = Problem("table.json", f"not valid JSON: {e.msg}", file=file, line=e.lineno, column=e.colno)
        raise RoutingTableInvalid(file, [problem]) from None
    except ValueError as e:  # a duplicate key, from the hook
        raise RoutingTableInvalid(file, [Problem("table.json", str(e), file=file)]) from None
    if not isinstance(document, dict):
        problem = Problem("table.schema", "the table is a JSON object ({...})", file=file)
        raise RoutingTableInvalid(file, [problem])
    try:
        table = RoutingTable.model_validate(document)
    except ValidationError as e:
        raise RoutingTableInvalid(file, [_schema_problem(err, document, file) for err in e.errors()]) from None
    problems = _cross_problems(table, document, file)
    if problems:
        raise RoutingTableInvalid(file, problems)
    return table


def load_table(path: str | Path) -> LoadedTable:
    """Read and validate the table at ``path``."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TABLE_BYTES + 1)
    except OSError as e:
        raise RoutingTableUnreadable(name, e.strerror or str(e)) from None
    if len(data) > MAX_TABLE_BYTES:
        raise RoutingTableInvalid(name, [Problem("table.size", f"larger than {MAX_TABLE_BYTES} bytes", file=name)])
    return LoadedTable(parse_table(data, name), name, hashlib.sha256(data).hexdigest())
