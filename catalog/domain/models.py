"""The catalog's typed shape: pydantic v2, strict, unknown fields forbidden. No IO here.

The JSON Schema in ``schemas/catalog.schema.json`` is generated from these classes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, PlainValidator, WithJsonSchema

from catalog.domain.digests import DIGEST, SHA256_DIGEST
from catalog.domain.outcomes import Analysis, Guardrails, Outcome
from catalog.domain.strict import STRICT

__all__ = [
    "API_VERSION",
    "DEPLOY_TARGETS",
    "ROLLOUT_STRATEGIES",
    "STAGES",
    "Analysis",
    "Application",
    "Artifact",
    "ArtifactSource",
    "Binding",
    "Catalog",
    "DType",
    "Defaults",
    "DeployTarget",
    "EnvironmentSpec",
    "EnvironmentTrust",
    "Gates",
    "GatewayRef",
    "Guardrails",
    "KServeSettings",
    "KubernetesSettings",
    "Limits",
    "Mirror",
    "Model",
    "Outcome",
    "Resources",
    "Rollout",
    "RolloutStrategy",
    "Route",
    "SageMakerSettings",
    "SecretRef",
    "Serving",
    "Shadow",
    "Signature",
    "SignatureBundle",
    "Stage",
    "Store",
    "Task",
    "TensorSpec",
    "Trust",
    "TrustedKey",
    "Version",
    "is_free_dim",
]

API_VERSION = "modelcat/v1"
GIB = 1 << 30

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SEMVER = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
)
METRIC_NAME = r"^[a-z][a-z0-9_@.-]{0,62}$"
LABEL_KEY = r"^[a-z0-9]([-a-z0-9_./]{0,61}[a-z0-9])?$"
HEADER_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
# A dimension other than a fixed size: "?" (the model leaves it unnamed), a name such as batch
# (any size; one name is one size throughout a signature), or an expression over names such as
# "s0 + 1" or "2*s0" (a size computed from other dimensions, as PyTorch's dynamo exporter writes).
DIM_NAME = r"^([A-Za-z_][A-Za-z0-9_.-]*|[?])$"
_DIM_TERM = r"[A-Za-z0-9_.+*/%(),-]+"
DIM = rf"^([?]|(?=[^A-Za-z_]*[A-Za-z_]){_DIM_TERM}( {_DIM_TERM})*)$"  # terms set apart by single spaces
MAX_DIM_LENGTH = 256
MAX_TENSOR_NAME_LENGTH = 4096  # ONNX names are free text; exporters write long scoped names
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
# Kubernetes object names (Secrets, claims, Gateways, service accounts): RFC 1123 subdomains.
K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A container image: [host[:port]/]path[:tag][@sha256:digest], as the OCI distribution spec spells it.
IMAGE = (
    r"^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(:[0-9]+)?/)?"
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
    rf"(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(@{SHA256_DIGEST})?$"
)
HTTP_URL = r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?$"
_S3_BUCKET = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_KEY_PATH = r"(/[A-Za-z0-9!_.*'()-]+)*/?"
S3_PREFIX = rf"^{_S3_BUCKET}{_KEY_PATH}$"
STORAGE_URI_PREFIX = rf"^({_S3_BUCKET}|oci://[A-Za-z0-9.-]+(:[0-9]+)?){_KEY_PATH}$"
AWS_REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"
_AWS_PARTITION = r"arn:aws(-[a-z]+)*"
IAM_ROLE_ARN = rf"^{_AWS_PARTITION}:iam::[0-9]{{12}}:role/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{{1,64}}$"
SNS_TOPIC_ARN = rf"^{_AWS_PARTITION}:sns:[a-z]{{2}}(-[a-z]+)+-[0-9]{{1,2}}:[0-9]{{12}}:[A-Za-z0-9_-]{{1,256}}$"
INSTANCE_TYPE = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
# Vault: a Transit key (vault://MOUNT/keys/NAME) and a KV v2 secret (vault://MOUNT/PATH); MOUNT may nest.
_VAULT_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"  # no "." or ".." segment: Vault would resolve it elsewhere
VAULT_TRANSIT_KEY = rf"^vault://{_VAULT_SEGMENT}(/{_VAULT_SEGMENT})*/keys/{_VAULT_SEGMENT}$"
VAULT_KV_PATH = rf"^vault://{_VAULT_SEGMENT}(/{_VAULT_SEGMENT})+$"
# A file committed with the catalog, relative to it: no absolute path; no segment starts with '.' (no '..').
_REPO_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
REPO_PATH = rf"^{_REPO_SEGMENT}(/{_REPO_SEGMENT})*$"
SECRETS_MANAGER_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _instant(value: Any) -> Any:
    """Accept an RFC 3339 timestamp with a zone or a plain date (midnight UTC); nothing else."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    if not isinstance(value, str):
        raise ValueError("expected a date (2026-03-01) or an RFC 3339 timestamp with a zone")  # noqa: TRY004 -- pydantic turns only ValueError into a field error
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (2026-03-01) or an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add 'Z' for UTC")
    return parsed


Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}),
]
Name = Annotated[str, Field(pattern=DNS_LABEL, description="DNS label: lowercase letters, digits, '-'")]
Labels = dict[Annotated[str, Field(pattern=LABEL_KEY)], Annotated[str, Field(max_length=253)]]
K8sName = Annotated[
    str,
    Field(pattern=K8S_NAME, max_length=253, description="Kubernetes object name: lowercase letters, digits, '-', '.'"),
]


class Strict(BaseModel):
    model_config = STRICT


Stage = Literal["candidate", "production", "deprecated", "retired"]
STAGES: tuple[str, ...] = ("candidate", "production", "deprecated", "retired")
Task = Literal[
    "classification",
    "regression",
    "ranking",
    "recommendation",
    "embedding",
    "detection",
    "forecasting",
    "other",
]
# ONNX tensor element types, by their numpy-style names.
DType = Literal[
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "string",
]


_DIM = re.compile(DIM)
_DIM_NAME = re.compile(DIM_NAME)


def _dim(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and len(value) <= MAX_DIM_LENGTH and _DIM.fullmatch(value):
        return value
    raise ValueError(
        "a dimension is a size (an integer >= 0), a name such as batch, ? (unknown), or an expression "
        f"over names such as s0 + 1 (at most {MAX_DIM_LENGTH} characters)"
    )


def is_free_dim(dim: int | str) -> bool:
    """A dimension of any size: a name or "?" (not a fixed size, not an expression of other dims)."""
    return isinstance(dim, str) and _DIM_NAME.fullmatch(dim) is not None


Dim = Annotated[
    int | str,
    PlainValidator(_dim),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": DIM, "maxLength": MAX_DIM_LENGTH},
            ]
        }
    ),
]


class TensorSpec(Strict):
    name: Annotated[str, Field(min_length=1, max_length=MAX_TENSOR_NAME_LENGTH)]
    dtype: DType
    shape: list[Dim] = Field(
        description="Fixed sizes as integers; symbolic dims as names (batch), ? when unnamed, or "
        "expressions over names (s0 + 1, 2*s0)"
    )


class Signature(Strict):
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)


class SignatureBundle(Strict):
    """An OpenSSF model signing bundle (OMS v1.0: an in-toto statement in a Sigstore bundle) over
    every file of a version's artifact, kept by digest in a store beside the artifact."""

    uri: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        description="Where the bundle lies, in one of the catalog's stores (content-addressed, like artifacts)"
    )
    digest: Annotated[str, Field(pattern=DIGEST)] = Field(description="sha256 of the bundle file")
    key: Name = Field(description="The trust policy's name of the key that signed (trust.keys)")
    key_version: Annotated[int, Field(ge=1)] = Field(
        description="The signing key's version (a Vault Transit key's; 1 for a PEM key)"
    )
    signed_at: Instant


class Artifact(Strict):
    uri: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        description="Where the bytes live: a path relative to the catalog, file:///abs/path, "
        "or oci://host/repo@sha256:<manifest digest>. Never a mutable tag."
    )
    digest: Annotated[str, Field(pattern=DIGEST)] = Field(
        description="sha256 of the artifact's bytes: 'sha256:' and 64 lowercase hex digits"
    )
    size_bytes: Annotated[int, Field(gt=0)]
    bundle: SignatureBundle | None = Field(
        None, description="The release signature over the artifact's files (modelcat sign); absent: unsigned"
    )


class Version(Strict):
    version: Annotated[str, Field(pattern=SEMVER, description="Semantic version, e.g. 1.4.0")]
    artifact: Artifact
    signature: Signature
    metrics: dict[Annotated[str, Field(pattern=METRIC_NAME)], float] = {}
    trained_at: Instant
    registered_at: Instant
    stage: Stage = "candidate"
    labels: Labels = {}


class Model(Strict):
    name: Name
    owner: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=4096)] = ""
    task: Task
    format: Literal["onnx"] = "onnx"
    max_artifact_bytes: Annotated[int, Field(gt=0)] | None = None
    labels: Labels = {}
    versions: list[Version] = Field(min_length=1)


class Resources(Strict):
    cpu: Annotated[str, Field(pattern=QUANTITY)] | None = None
    memory: Annotated[str, Field(pattern=QUANTITY)] | None = None


class Serving(Strict):
    """How many replicas serve each routed version; unset fields come from ``defaults.serving``."""

    replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    min_replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    target_concurrency: Annotated[int, Field(ge=1, le=100_000)] | None = None
    resources: Resources | None = None


class Gates(Strict):
    """What a routed version must meet: maximum age and minimum metric values."""

    max_age_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        None, description="Oldest allowed training date, in days"
    )
    min_metrics: dict[Annotated[str, Field(pattern=METRIC_NAME)], float] = {}


class Route(Strict):
    version: Annotated[str, Field(pattern=SEMVER)]
    weight: Annotated[int, Field(ge=0, le=100)] = Field(
        description="Integer percent of traffic; a binding's weights sum to 100"
    )


RolloutStrategy = Literal["all_at_once", "canary", "linear"]
ROLLOUT_STRATEGIES: tuple[str, ...] = ("all_at_once", "canary", "linear")


class Shadow(Strict):
    """A shadow step before the first real one: the router mirrors ``percent`` of requests to the
    candidate and compares its answers with the live version's; they are never returned."""

    percent: Annotated[int, Field(ge=1, le=100)] = Field(description="Percent of requests mirrored to the candidate")
    min_agreement: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.95, description="Least share of mirrored requests whose answers agree with the live version's"
    )
    max_abs_difference: Annotated[float, Field(ge=0.0)] = Field(
        0.05, description="Scores agree when they differ by at most this (labels agree when equal)"
    )


class Rollout(Strict):
    """How a change to a binding's routes takes effect; unset fields come from ``defaults.rollout``.

    A step moves a share of the traffic from the routes in force to the new routes: all_at_once in
    one step, canary one step of step_percent then the rest, linear equal steps of step_percent
    (a divisor of 100) until 100.
    """

    strategy: RolloutStrategy = "all_at_once"
    step_percent: Annotated[int, Field(ge=1, le=100)] | None = Field(
        None, description="Percent of traffic a step moves to the new routes; canary and linear only"
    )
    interval_seconds: Annotated[int, Field(ge=0, le=3_600)] | None = Field(
        None, description="Wait between steps (the guardrails are checked before the next one); default 300"
    )
    guardrails: Guardrails | None = None
    steps: list[Annotated[int, Field(ge=1, le=100)]] | None = Field(
        None,
        description="Cumulative percent of traffic on the new version after each step, rising to 100"
        " (e.g. [5, 25, 50, 100]); replaces step_percent; canary and linear only",
    )
    progress_deadline_seconds: Annotated[int, Field(ge=60, le=28_800)] | None = Field(
        None, description="How long a step may hold (analysis undecided) before the rollout aborts; default 1800"
    )
    shadow: Shadow | None = Field(
        None, description="Begin with a shadow step: mirror a share of requests to the new version, answers discarded"
    )


class Mirror(Strict):
    """Requests mirrored to a version that does not answer them (a rollout's shadow step): the
    router sends a copy of ``percent`` of the binding's requests to ``version`` and records whether
    its answers agree with those returned. Written by ``modelcat rollout`` (or by hand)."""

    version: Annotated[str, Field(min_length=1)]
    percent: Annotated[int, Field(ge=1, le=100)]


class Binding(Strict):
    model: Annotated[str, Field(min_length=1)]
    enabled: bool = Field(True, description="false keeps the binding declared but routes nothing")
    routes: list[Route] = Field(min_length=1)
    sticky_key: Annotated[str, Field(pattern=HEADER_NAME)] | None = Field(
        None, description="Request header whose value pins a user to one version"
    )
    serving: Serving = Serving()
    gates: Gates | None = None
    rollout: Rollout | None = None
    mirror: Mirror | None = Field(
        None, description="A shadow step in force: a share of requests copied to a version whose answers are discarded"
    )
    analysis: Analysis | None = Field(
        None, description="What `modelcat analyze` compares: the routed versions against a baseline, on outcomes"
    )


class Application(Strict):
    name: Name
    owner: Annotated[str, Field(min_length=1, max_length=256)]
    environment: Name
    description: Annotated[str, Field(max_length=4096)] = ""
    outcomes: list[Outcome] = Field(
        [], description="What this application reports back (POST /v2/feedback, modelcat feedback import)"
    )
    bindings: list[Binding] = Field(min_length=1)


class Defaults(Strict):
    serving: Serving = Serving()
    gates: Gates | None = None
    rollout: Rollout | None = None


DeployTarget = Literal["local", "kubernetes", "kserve", "sagemaker"]
DEPLOY_TARGETS: tuple[str, ...] = ("local", "kubernetes", "kserve", "sagemaker")


class GatewayRef(Strict):
    """The Gateway API Gateway (and listeners) an application's HTTPRoute and GRPCRoute attach to."""

    name: K8sName
    namespace: Name | None = Field(None, description="The Gateway's namespace; default: the environment's")
    section_name: K8sName | None = Field(None, description="One listener of the Gateway; default: all")
    grpc_section_name: K8sName | None = Field(
        None,
        description="The Gateway's listener for OIP gRPC: each application gets a GRPCRoute attached to it; "
        "none: no GRPCRoute (a listener cannot hold an HTTPRoute and a GRPCRoute for the same hostnames)",
    )


class ArtifactSource(Strict):
    """Where replicas fetch artifacts from; every fetch is verified against the catalog's digest."""

    kind: Literal["oci", "http", "pvc"] = Field(
        description="oci: pull the oci:// artifact URIs by digest; http: GET base_url/<artifact path>; "
        "pvc: read <artifact path> from a mounted PersistentVolumeClaim"
    )
    registry_secret: K8sName | None = Field(
        None, description="Secret with the credentials for the registry or server (oci, http); never inline them"
    )
    base_url: Annotated[str, Field(pattern=HTTP_URL, max_length=2048)] | None = Field(
        None, description="http only: the server the artifact paths are relative to"
    )
    pvc: K8sName | None = Field(None, description="pvc only: the PersistentVolumeClaim holding the artifacts")


class KubernetesSettings(Strict):
    namespace: Name
    gateway: GatewayRef
    image: Annotated[str, Field(pattern=IMAGE, max_length=512)] = Field(
        description="The modelcat replica/router container image, e.g. registry.example.com/modelcat:0.4.0"
    )
    image_pull_secret: K8sName | None = Field(None, description="Secret for pulling image; never inline credentials")
    hostnames: list[Annotated[str, Field(pattern=HOSTNAME, max_length=253)]] = Field(
        [], max_length=16, description="Hostnames the HTTPRoute answers to; default: the Gateway's"
    )
    artifact_source: ArtifactSource
    vault_role: K8sName | None = Field(
        None,
        description="The Vault role (Kubernetes auth) the Vault Agent Injector logs in with; needed when the "
        "environment has secrets",
    )


class KServeSettings(Strict):
    namespace: Name
    storage_uri_prefix: Annotated[str, Field(pattern=STORAGE_URI_PREFIX, max_length=2048)] | None = Field(
        None,
        description="Where artifacts whose URI is a path are published (oci://host/repo or s3://bucket/prefix); "
        "not needed when every artifact URI is oci://",
    )
    service_account: K8sName | None = Field(None, description="Service account holding the storage credentials")
    vault_role: K8sName | None = Field(
        None,
        description="The Vault role (Kubernetes auth) the Vault Agent Injector logs in with; needed when the "
        "environment has secrets",
    )
    protocol_version: Literal["v2", "grpc-v2"] = Field(
        "v2",
        description="The Open Inference Protocol the InferenceServices expose: v2 (REST) or grpc-v2 (gRPC, on "
        "grpc_port); serverless KServe routes one port of a predictor, so one or the other",
    )
    grpc_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        9000,
        description="grpc-v2 only: the serving runtime's gRPC port (9000 for kserve-tritonserver, KServe's runtime "
        "for ONNX)",
    )


class SageMakerSettings(Strict):
    region: Annotated[str, Field(pattern=AWS_REGION)] = Field(description="AWS region, e.g. eu-west-1")
    execution_role_arn: Annotated[str, Field(pattern=IAM_ROLE_ARN, max_length=2048)] = Field(
        description="IAM role SageMaker assumes: arn:aws:iam::<account>:role/<name>"
    )
    image: Annotated[str, Field(pattern=IMAGE, max_length=512)] = Field(description="Inference image URI (ECR)")
    artifact_bucket: Annotated[str, Field(pattern=S3_PREFIX, max_length=1024)] = Field(
        description="s3://bucket/prefix where the model artifacts live"
    )
    instance_type: Annotated[str, Field(pattern=INSTANCE_TYPE)] = "ml.m5.large"
    alarm_topic_arn: Annotated[str, Field(pattern=SNS_TOPIC_ARN, max_length=2048)] | None = Field(
        None, description="SNS topic that rollout alarms notify"
    )


class EnvironmentSpec(Strict):
    """A place applications run. ``target`` is where it deploys by default; the settings blocks say
    how to deploy it to each target (its own target's block is required unless that is local)."""

    name: Name
    target: DeployTarget = "local"
    kubernetes: KubernetesSettings | None = None
    kserve: KServeSettings | None = None
    sagemaker: SageMakerSettings | None = None
    secrets: list[SecretRef] = Field(
        [],
        description="Secrets its replicas read, by Vault KV v2 path: only the path and version are ever written "
        "down; the value reaches the replica as a file only its process can read",
    )


class SecretRef(Strict):
    """A secret an environment's replicas need (a preprocessing token, a store's credentials)."""

    name: Name = Field(description="The file the replica reads in its secrets folder ($MODELCAT_SECRETS_DIR/NAME)")
    vault: Annotated[str, Field(pattern=VAULT_KV_PATH, max_length=1024)] = Field(
        description="The KV v2 secret: vault://MOUNT/PATH (e.g. vault://secret/checkout/feature-token)"
    )
    field: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        None, description="One key of the secret's data; default: the whole data as JSON"
    )
    version: Annotated[int, Field(ge=1)] | None = Field(
        None, description="A pinned KV version; default: the latest, read at apply (a new version restarts replicas)"
    )
    secrets_manager: Annotated[str, Field(pattern=SECRETS_MANAGER_NAME)] | None = Field(
        None, description="sagemaker only: the Secrets Manager secret holding the same value"
    )


class TrustedKey(Strict):
    """A key that may sign releases: a public key committed with the catalog, or a Vault Transit key."""

    name: Name
    public_key: Annotated[str, Field(pattern=REPO_PATH, max_length=1024)] | None = Field(
        None, description="A PEM public key (EC P-256 or P-384) in the repository, relative to the catalog"
    )
    vault: Annotated[str, Field(pattern=VAULT_TRANSIT_KEY, max_length=1024)] | None = Field(
        None, description="A Vault Transit key (ecdsa-p256 or ecdsa-p384): vault://MOUNT/keys/NAME"
    )
    min_version: Annotated[int, Field(ge=1)] = Field(
        1, description="Signatures by an older key version are refused: how a compromised version is revoked"
    )


class EnvironmentTrust(Strict):
    """Which keys may sign the versions an environment serves, and whether it serves only signed ones."""

    environment: Name
    require_signatures: bool = Field(
        True, description="true: a replica of this environment serves only a version signed by one of keys"
    )
    keys: list[Name] = Field(min_length=1, description="Names of trust.keys that may sign for this environment")


class Trust(Strict):
    """The trust policy: the signing keys, and which of them each environment trusts."""

    keys: list[TrustedKey] = []
    environments: list[EnvironmentTrust] = []


class Store(Strict):
    """Where artifacts are kept: a content-addressed folder (``sha256/<2 hex>/<64 hex>``) or an OCI
    registry repository. ``modelcat register`` writes into the default store."""

    name: Name
    uri: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        description="A folder relative to the catalog (committed with it, e.g. artifacts), "
        "file:///absolute/folder, or oci://host[:port]/repository"
    )
    default: bool = Field(False, description="The store `modelcat register` writes into; exactly one store is")


class Limits(Strict):
    max_artifact_bytes: Annotated[int, Field(gt=0)] = 2 * GIB
    min_artifact_bytes: Annotated[int, Field(gt=0)] | None = None


class Catalog(Strict):
    api_version: Literal["modelcat/v1"] = Field(alias="apiVersion")
    defaults: Defaults = Defaults()
    limits: Limits = Limits()
    stores: list[Store] | None = Field(
        None,
        min_length=1,
        description="Where artifacts are kept; every version's artifact URI lies in one of them. When absent, "
        "one default store is implied: the folder artifacts beside the catalog (and URIs are not checked)",
    )
    environments: list[EnvironmentSpec] | None = Field(
        None,
        description="Where applications run, and how each deploys per target. When absent, every environment "
        "an application names exists implicitly with target local and no settings",
    )
    trust: Trust | None = Field(
        None, description="The trust policy: which keys may sign releases for which environment (modelcat sign)"
    )
    models: list[Model] = Field(min_length=1)
    applications: list[Application] = []
