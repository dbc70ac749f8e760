"""Round-trip YAML for edits: comments, key order, quoting and indentation survive; writes are atomic."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from catalog.errors import DiskFull, EditRefused

__all__ = ["RoundTrip", "atomic_write"]


class RoundTrip:
    """A document loaded for editing, dumped back in the same layout."""

    def __init__(self, text: str, filename: str) -> None:
        try:
            _, sequence_indent, dash_offset = load_yaml_guess_indent(text)
            self._yaml = YAML(typ="rt")
            self._yaml.preserve_quotes = True
            self._yaml.width = 4096
            self._yaml.indent(mapping=_mapping_indent(text), sequence=sequence_indent or 2, offset=dash_offset or 0)
            self.document = self._yaml.load(text)
        except YAMLError as e:
            raise EditRefused(f"{filename} cannot be edited: {str(e).splitlines()[0]}") from e

    def load_fragment(self, text: str) -> object:
        """Parse a snippet with the document's settings, to insert it with its own styles."""
        return self._yaml.load(text)

    def dump(self) -> str:
        buffer = io.StringIO()
        self._yaml.dump(self.document, buffer)
        return buffer.getvalue()


_KEY_OPENS_BLOCK = re.compile(r"^( *)[^\s#-][^:#]*:[ \t]*(#.*)?$")
_CONTENT = re.compile(r"^( *)([^\s#])")


def _mapping_indent(text: str) -> int:
    """How far a nested mapping is indented under its key (2 when the file does not tell)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        opener = _KEY_OPENS_BLOCK.match(line)
        if not opener:
            continue
        for following in lines[i + 1 :]:
            content = _CONTENT.match(following)
            if content is None:
                continue
            if content.group(2) != "-" and len(content.group(1)) > len(opener.group(1)):
                return len(content.group(1)) - len(opener.group(1))
            break
    return 2


def atomic_write(path: str | os.PathLike[str], data: bytes, *, expected: bytes | None = None) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or the new one.

    The bytes go to a temporary file in the same directory, are flushed to disk, and the file is
    renamed over the target; the directory is synced so the rename itself survives a power cut.
    With ``expected``, the file must still hold those bytes (compared by sha256) just before the
    rename: a program that does not take modelcat's lock (an editor) may have written it meanwhile.
    A full disk raises DiskFull; in every failure the temporary file is removed.
    """
    target = Path(path)
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    with DiskFull.translating(target):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, mode)
            if expected is not None and _sha256(target) != hashlib.sha256(expected).digest():
                raise EditRefused(
                    f"{target} changed on disk while it was being edited (by a program that does not take"
                    " modelcat's lock, e.g. an editor); run the command again",
                    path=str(target),
                )
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


def _sha256(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except FileNotFoundError:
        return None
