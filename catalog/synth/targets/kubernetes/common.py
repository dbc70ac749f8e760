"""What the ``kubernetes`` target's version objects (``endpoints``) and routers (``routing``) share:
the port numbers, the ``modelcat`` container with its probes, the pod security settings, and the
bodies of a Service and a PodDisruptionBudget.

A container serving gRPC (the replica's ``--grpc-port``) names that port ``grpc``; its Service then
has a ``grpc`` port too, with ``appProtocol: kubernetes.io/h2c`` (gRPC is HTTP/2 in clear text), so
that a Gateway or a mesh speaks HTTP/2 to it without guessing."""

from __future__ import annotations

from typing import Any

from catalog.domain.models import KubernetesSettings

__all__ = [
    "CONTAINER_PORT",
    "DEPLOYMENT",
    "GRPC_PORT",
    "H2C",
    "RUN_AS",
    "SERVICE_PORT",
    "SPEC",
    "budget_body",
    "container",
    "container_security",
    "metadata",
    "pod_security",
    "pull_secrets",
    "service_body",
]

CONTAINER_PORT = 8080
SERVICE_PORT = 80
GRPC_PORT = 8081  # the container's and the Service's gRPC port (named grpc)
H2C = "kubernetes.io/h2c"  # the appProtocol of a gRPC Service port: HTTP/2 over cleartext
RUN_AS = "10001"  # the Dockerfile's user
DEPLOYMENT = "kubernetes_deployment_v1"
SPEC = "DeploymentV1SpecTemplateSpec"


def metadata(k: Any, cls: str, name: str, namespace: str, labels: dict[str, str], **extra: Any) -> Any:
    return getattr(k, cls)(name=name, namespace=namespace, labels=labels, **extra)


def container_security(k: Any, prefix: str) -> Any:
    return getattr(k, f"{prefix}SecurityContext")(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=getattr(k, f"{prefix}SecurityContextCapabilities")(drop=["ALL"]),
    )


def pod_security(k: Any) -> Any:
    return k.DeploymentV1SpecTemplateSpecSecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS,
        run_as_group=RUN_AS,
        fs_group=RUN_AS,
        seccomp_profile=k.DeploymentV1SpecTemplateSpecSecurityContextSeccompProfile(type="RuntimeDefault"),
    )


def _probe(k: Any, kind: str, path: str, period: int, failures: int) -> Any:
    prefix = f"{SPEC}Container{kind}Probe"
    http_get = getattr(k, f"{prefix}HttpGet")(path=path, port="http")
    return getattr(k, prefix)(http_get=http_get, period_seconds=period, failure_threshold=failures)


def container(
    k: Any, name: str, image: str, args: list[str], mounts: list[tuple[str, str, bool]], *, grpc: bool, **extra: Any
) -> Any:
    """A ``modelcat`` container serving HTTP on the ``http`` port, with its probes (and, ``grpc``,
    OIP gRPC on the ``grpc`` port: its ``args`` then carry ``--grpc-port``)."""
    prefix = f"{SPEC}Container"
    port = getattr(k, f"{prefix}Port")
    ports = [port(name="http", container_port=CONTAINER_PORT, protocol="TCP")]
    if grpc:
        ports.append(port(name="grpc", container_port=GRPC_PORT, protocol="TCP"))
    return getattr(k, prefix)(
        name=name,
        image=image,
        command=["modelcat"],
        args=args,
        port=ports,
        startup_probe=_probe(k, "Startup", "/v2/health/live", 5, 120),  # up to 10 min to verify and load
        readiness_probe=_probe(k, "Readiness", "/v2/health/ready", 5, 3),
        liveness_probe=_probe(k, "Liveness", "/v2/health/live", 10, 3),
        volume_mount=[
            getattr(k, f"{prefix}VolumeMount")(name=v, mount_path=path, read_only=ro or None) for v, path, ro in mounts
        ],
        security_context=container_security(k, prefix),
        **extra,
    )


def pull_secrets(k: Any, settings: KubernetesSettings) -> list[Any] | None:
    secret = settings.image_pull_secret
    return [k.DeploymentV1SpecTemplateSpecImagePullSecrets(name=secret)] if secret else None


def service_body(
    k: Any, name: str, namespace: str, labels: dict[str, str], selector: dict[str, str], *, grpc: bool
) -> Any:
    """A Service: port 80 to the pods' ``http`` port and, ``grpc``, its gRPC port to theirs (h2c)."""
    ports = [k.ServiceV1SpecPort(name="http", port=SERVICE_PORT, target_port="http", protocol="TCP")]
    if grpc:
        ports.append(
            k.ServiceV1SpecPort(name="grpc", port=GRPC_PORT, target_port="grpc", protocol="TCP", app_protocol=H2C)
        )
    return k.ServiceV1Config(
        metadata=metadata(k, "ServiceV1Metadata", name, namespace, labels),
        spec=k.ServiceV1Spec(selector=selector, port=ports),
    )


def budget_body(k: Any, name: str, namespace: str, labels: dict[str, str], selector: dict[str, str]) -> Any:
    return k.PodDisruptionBudgetV1Config(
        metadata=metadata(k, "PodDisruptionBudgetV1Metadata", name, namespace, labels),
        spec=k.PodDisruptionBudgetV1Spec(
            max_unavailable="1", selector=k.PodDisruptionBudgetV1SpecSelector(match_labels=selector)
        ),
    )
