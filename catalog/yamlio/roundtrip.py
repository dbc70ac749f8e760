"""Round-trip YAML for edits: comments, key order, quoting and indentation survive (write with catalog.files)."""

from __future__ import annotations

import io
import re

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from catalog.errors import EditRefused

__all__ = ["RoundTrip"]


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
