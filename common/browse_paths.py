"""Browse paths in the register (pure): ``/Objects/{urn:plant:line1}Line1/Press/Temperature``.

A browse path names a node by the browse names on the way to it from the Root folder,
following hierarchical references forward (``/`` of OPC UA's relative path text, Part 4
A.2). A browse name is a namespace plus a name; the namespace is given by its URI, never by
its index, because a restarted server may renumber its namespaces:

- ``{<namespace uri>}Name`` names an element in that namespace;
- ``Name`` is in the namespace of the element before it (OPC UA's own,
  ``http://opcfoundation.org/UA/``, for the first), so a path inside one vendor namespace
  names it once.
- ``&`` escapes ``/``, ``{``, ``}`` and ``&`` inside a name (``Temp&/Pressure``).

Parsing happens when the register is loaded; the namespace indexes are looked up at every
connect (``edge.sources.opcua.nodes``).
"""

from __future__ import annotations

from dataclasses import dataclass

OPC_UA_NAMESPACE = "http://opcfoundation.org/UA/"
_ESCAPED = "/{}&"


class BrowsePathError(ValueError):
    pass


@dataclass(frozen=True)
class BrowseName:
    uri: str
    name: str


def parse_browse_path(text: str) -> tuple[BrowseName, ...]:
    """The elements of ``text`` from the Root folder; BrowsePathError says what is wrong."""
    if not text.startswith("/"):
        raise BrowsePathError(
            f"browse path {text!r} must start with '/' (from the Root folder, "
            "e.g. /Objects/{urn:plant:line1}Line1/Press/Temperature)"
        )
    elements: list[BrowseName] = []
    uri = OPC_UA_NAMESPACE
    position = 0
    while position < len(text):
        if text[position] != "/":  # only reached after a complete element
            raise BrowsePathError(f"browse path {text!r}: expected '/' at character {position}")
        position += 1
        if text.startswith("{", position):
            end = text.find("}", position)
            if end < 0:
                raise BrowsePathError(f"browse path {text!r}: '{{' without its closing '}}'")
            uri = text[position + 1 : end]
            if not uri.strip():
                raise BrowsePathError(f"browse path {text!r}: empty namespace URI '{{}}'")
            position = end + 1
        name, position = _read_name(text, position)
        if not name:
            raise BrowsePathError(
                f"browse path {text!r}: empty browse name at character {position} "
                "(a '//' or a trailing '/')"
            )
        elements.append(BrowseName(uri, name))
    if not elements:
        raise BrowsePathError(f"browse path {text!r} names no node")
    return tuple(elements)


def _read_name(text: str, position: int) -> tuple[str, int]:
    name: list[str] = []
    while position < len(text) and text[position] != "/":
        char = text[position]
        if char == "&":
            if position + 1 >= len(text) or text[position + 1] not in _ESCAPED:
                raise BrowsePathError(
                    f"browse path {text!r}: '&' at character {position} must escape "
                    "one of / { } &"
                )
            name.append(text[position + 1])
            position += 2
            continue
        if char in "{}":
            raise BrowsePathError(
                f"browse path {text!r}: {char!r} at character {position} inside a name "
                f"(a namespace goes first, '/{{uri}}Name'; escape a literal one as '&{char}')"
            )
        name.append(char)
        position += 1
    return "".join(name), position


def format_browse_path(elements: tuple[BrowseName, ...] | list[BrowseName]) -> str:
    """The text ``parse_browse_path`` reads back: a namespace is written where it changes."""
    parts: list[str] = []
    uri = OPC_UA_NAMESPACE
    for element in elements:
        name = "".join("&" + c if c in _ESCAPED else c for c in element.name)
        if element.uri != uri:
            uri = element.uri
            name = "{" + uri + "}" + name
        parts.append("/" + name)
    return "".join(parts)
