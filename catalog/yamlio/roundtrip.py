"""Round-trip YAML for edits: comments, key order, quoting and indentation survive; writes are atomic."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from catalog.errors import EditRefused

__all__ = ["RoundTrip", "atomic_write"]


class RoundTrip:
    """A document loaded for editing, dumped back in the same layout."""

    def __init__(self, text: str, filename: str) -> None:
        try:
            _, indent, block_seq_indent = load_yaml_guess_indent(text)
            self._yaml = YAML(typ="rt")
            self._yaml.preserve_quotes = True
            self._yaml.width = 4096
            self._yaml.indent(mapping=indent or 2, sequence=(indent or 2) + (block_seq_indent or 0), offset=block_seq_indent or 0)
            self.document = self._yaml.load(text)
        except YAMLError as e:
            raise EditRefused(f"{filename} cannot be edited: {str(e).splitlines()[0]}") from e

    def dump(self) -> str:
        buffer = io.StringIO()
        self._yaml.dump(self.document, buffer)
        return buffer.getvalue()


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or the new one.

    The bytes go to a temporary file in the same directory, are flushed to disk, and the file is
    renamed over the target; the directory is synced so the rename itself survives a power cut.
    """
    target = Path(path)
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
