"""Checks that message types and error codes are documented under docs/."""

import os
import re

from mmoshard.testing import checkoutRoot

# A type is documented by a heading, a table row or a list item that starts
# with it in backticks: "### `hello`", "| `chat.whisper` |", "- `world.move {x, z}`".
_ENTRY = re.compile(r"^(?:#{2,4} |\| |[-*] )`([A-Za-z0-9_.]+)[` ]", re.MULTILINE)
_CODE_ROW = re.compile(r"^\| `([a-z_.]+)` \|", re.MULTILINE)
# The fields a request takes: "| `chat.unblock` | `character_id` |" (backticked
# names in the second column) or "- `world.enter {character_id, ticket?}`".
_FIELD_ROW = re.compile(r"^\| `([a-z][A-Za-z0-9_.]+)` \| ([^|]*)\|", re.MULTILINE)
_FIELD_ITEM = re.compile(r"^[-*] `([a-z][A-Za-z0-9_.]+) \{([^}]*)\}", re.MULTILINE)


def docsDirectory():
    """The checkout's docs/ directory."""
    return os.path.join(checkoutRoot(), "docs")


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def documentedTypes(directory=None):
    """
    @return: every message type documented in C{docs/protocol.md} or any
        other page under C{docs/}: a heading, table row or list item starting
        with the type in backticks.
    """
    directory = directory or docsDirectory()
    types = set()
    for name in sorted(os.listdir(directory)):
        if name.endswith(".md"):
            types.update(_ENTRY.findall(_read(os.path.join(directory, name))))
    return types


def documentedFields(directory=None):
    """
    @return: message type -> the field names its documentation names (from
        a table row or list item starting with the type), for every type
        documented with fields under C{docs/}.
    """
    directory = directory or docsDirectory()
    fields = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".md"):
            continue
        text = _read(os.path.join(directory, name))
        for kind, body in _FIELD_ROW.findall(text):
            fields.setdefault(kind, set()).update(re.findall(r"`([a-z_]+)\??`", body))
        for kind, body in _FIELD_ITEM.findall(text):
            fields.setdefault(kind, set()).update(
                part.strip().rstrip("?") for part in body.split(",") if part.strip())
    return {kind: names for kind, names in fields.items() if names}


def documentedErrorCodes(directory=None):
    """@return: the codes in the error table of C{docs/protocol.md}."""
    directory = directory or docsDirectory()
    text = _read(os.path.join(directory, "protocol.md"))
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    return set(_CODE_ROW.findall(section))


def undocumentedTypes(types, directory=None):
    """@return: the sorted types of C{types} no page under docs/ documents."""
    return sorted(set(types) - documentedTypes(directory))
