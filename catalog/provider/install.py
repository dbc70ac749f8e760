"""Make the provider findable by an offline Terraform: a filesystem mirror and a CLI config.

``install_provider(mirror)`` writes the unpacked mirror layout Terraform searches::

    MIRROR/registry.terraform.io/modelcat/modelcat/<version>/linux_amd64/terraform-provider-modelcat_v<version>

an executable script whose shebang is this interpreter and which runs
``catalog.provider.main.main()``. ``write_cli_config(path, mirror)`` writes a CLI config that
takes ``registry.terraform.io/modelcat/*`` from the mirror and nothing of it from the network.
Both rewrite their file only when its content would change, and atomically.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import stat
import sys
from pathlib import Path

from catalog.files import atomic_write

__all__ = ["NAMESPACE", "PROVIDER_TYPE", "install_provider", "platform_name", "provider_version", "write_cli_config"]

HOSTNAME = "registry.terraform.io"
NAMESPACE = "modelcat"
PROVIDER_TYPE = "modelcat"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def provider_version() -> str:
    """The installed package's version, which is the provider's version too."""
    return importlib.metadata.version("modelcat")


def platform_name() -> str:
    """Terraform's name for this platform, e.g. ``linux_amd64``."""
    machine = platform.machine().lower()
    return f"{sys.platform.removesuffix('2')}_{_ARCH.get(machine, machine)}"


def _write_if_changed(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        same = path.read_bytes() == data and stat.S_IMODE(path.stat().st_mode) == mode
    except OSError:
        same = False
    if same:
        return
    if path.exists():
        os.chmod(path, mode)  # atomic_write keeps the target's mode
        atomic_write(path, data)
    else:
        atomic_write(path, data)
        os.chmod(path, mode)


def install_provider(mirror_dir: Path) -> Path:
    """Write the provider executable into the mirror ``mirror_dir``; return its path."""
    version = provider_version()
    folder = Path(mirror_dir) / HOSTNAME / NAMESPACE / PROVIDER_TYPE / version / platform_name()
    target = folder / f"terraform-provider-{PROVIDER_TYPE}_v{version}"
    script = (
        f"#!{sys.executable}\n"
        f'"""terraform-provider-{PROVIDER_TYPE} {version}, installed by catalog.provider.install."""\n'
        "from catalog.provider.main import main\n"
        "\n"
        "main()\n"
    )
    _write_if_changed(target, script.encode(), 0o755)
    return target


def write_cli_config(path: Path, mirror_dir: Path) -> Path:
    """Write a Terraform CLI config using ``mirror_dir`` for modelcat's providers; return ``path``."""
    pattern = f"{HOSTNAME}/{NAMESPACE}/*"
    text = (
        "# Written by catalog.provider.install: modelcat's provider comes from a local mirror.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(Path(mirror_dir).resolve()))}\n"
        f"    include = [{json.dumps(pattern)}]\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = [{json.dumps(pattern)}]\n"
        "  }\n"
        "}\n"
    )
    _write_if_changed(Path(path), text.encode(), 0o644)
    return Path(path)
