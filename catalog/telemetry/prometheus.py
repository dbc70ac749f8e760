"""The local Prometheus of a stack: its configuration, scrape targets, command line and record.

Layout under the stack's run directory (``catalog.layout.run_dir``)::

    metrics/prometheus.yml     the configuration: one job, ``honor_labels``, file_sd over targets/
    metrics/targets/<x>.json   scrape targets (file_sd format), one file per router or endpoint,
                               written as its processes start and removed as they stop
    metrics/data/              the TSDB (``--storage.tsdb.path``), kept as long as the resource's ``retention`` says (default 2 days)
    metrics/prometheus.json    the record of the running Prometheus: url, pid, start time, ...
    logs/prometheus.log        its log

A router's targets are labelled ``application`` and ``role="router"`` (its series carry model and
version themselves); an endpoint's replicas ``application``, ``model``, ``version``, ``endpoint``
and ``role="replica"``. With ``honor_labels`` a series' own labels win over the target's, so the
catalog's labels only fill in what the series lack.

The provider (``catalog.provider.metrics``) starts and stops the process; ``counters`` reads the
routers' targets when no Prometheus answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from catalog.domain.bodies import DEFAULT_RETENTION, DEFAULT_SCRAPE_INTERVAL
from catalog.errors import RunStateError
from catalog.files import atomic_write

__all__ = [
    "PROMETHEUS_BINARY",
    "MetricsDir",
    "PrometheusRecord",
    "prometheus_argv",
    "read_targets",
    "write_targets",
]

PROMETHEUS_BINARY = "/usr/bin/prometheus"  # Debian's package (make system-deps)
JOB = "modelcat"


class MetricsDir:
    """The paths of a stack's Prometheus under its run directory."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "metrics"
        self.config = self.root / "prometheus.yml"
        self.targets = self.root / "targets"
        self.data = self.root / "data"
        self.record = self.root / "prometheus.json"
        self.log = self.run_dir / "logs" / "prometheus.log"

    def router_targets(self, application: str) -> Path:
        return self.targets / f"router-{application}.json"

    def endpoint_targets(self, record_file: str | Path) -> Path:
        """The target file of the endpoint record ``record_file`` (a deposed one has its own)."""
        path = Path(record_file)
        prefix = "deposed-" if path.parent.name == "deposed" else "endpoint-"
        return self.targets / f"{prefix}{path.stem}.json"

    def write_config(self, scrape_interval: str = DEFAULT_SCRAPE_INTERVAL) -> Path:
        """Write the configuration (idempotent: same interval, same bytes)."""
        document = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "honor_labels": True,
                    "metrics_path": "/metrics",
                    "file_sd_configs": [{"files": [str(self.targets / "*.json")]}],
                }
            ],
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.targets.mkdir(parents=True, exist_ok=True)
        atomic_write(self.config, (json.dumps(document, indent=2) + "\n").encode())  # JSON is YAML
        return self.config


def _address(url: str) -> str | None:
    parts = urlsplit(url)
    return parts.netloc if parts.hostname and parts.port else None


def write_targets(path: Path, urls: Sequence[str], labels: Mapping[str, str]) -> None:
    """Make ``path`` list the processes at ``urls`` with ``labels``; without a URL, remove it."""
    addresses = sorted({a for a in map(_address, urls) if a})
    if not addresses:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    group = [{"targets": addresses, "labels": dict(sorted(labels.items()))}]
    atomic_write(path, (json.dumps(group, indent=2) + "\n").encode())


def read_targets(path: Path) -> list[tuple[str, dict[str, str]]]:
    """(base URL, labels) of every target in a target file; none if it is absent or unreadable."""
    try:
        groups = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return []
    found = []
    for group in groups if isinstance(groups, list) else []:
        labels = {str(k): str(v) for k, v in (group.get("labels") or {}).items()}
        found += [(f"http://{address}", labels) for address in group.get("targets") or []]
    return found


def prometheus_argv(metrics: MetricsDir, host: str, port: int, retention: str = DEFAULT_RETENTION) -> list[str]:
    return [
        PROMETHEUS_BINARY,
        f"--config.file={metrics.config}",
        f"--storage.tsdb.path={metrics.data}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address={host}:{port}",
    ]


@dataclass(frozen=True, slots=True)
class PrometheusRecord:
    """The running Prometheus of a stack, as ``metrics/prometheus.json`` records it."""

    url: str
    pid: int
    start_time: int
    host: str
    port: int
    retention: str
    scrape_interval: str
    log: str

    def write(self, metrics: MetricsDir) -> None:
        metrics.root.mkdir(parents=True, exist_ok=True)
        atomic_write(metrics.record, (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode())

    @classmethod
    def read(cls, metrics: MetricsDir) -> PrometheusRecord | None:
        """The record, or None if there is none; RunStateError if it is unreadable."""
        try:
            body: Any = json.loads(metrics.record.read_bytes())
            return None if body is None else cls(**{name: body[name] for name in cls.__dataclass_fields__})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise RunStateError(str(metrics.record), f"not a Prometheus record ({type(e).__name__}: {e})") from e
