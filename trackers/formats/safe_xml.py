"""XML for annotation formats: parsed safely with expat, written indented.

Any DOCTYPE is refused outright: no DTD, no entity declarations, nothing fetched or
expanded (defusedxml's rules, without the dependency).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from trackers.formats.common import FormatError


@dataclass
class XmlNode:
    """One element of a parsed XML file, with the line it starts on."""

    tag: str
    attrib: dict[str, str]
    line: int
    children: list[XmlNode] = field(default_factory=list)
    text: str = ""

    def findall(self, tag: str) -> list[XmlNode]:
        return [c for c in self.children if c.tag == tag]

    def find(self, path: str) -> XmlNode | None:
        """The first element along ``a/b/c``, or None."""
        node: XmlNode | None = self
        for tag in path.split("/"):
            node = next((c for c in node.children if c.tag == tag), None) if node else None
        return node

    def findtext(self, path: str) -> str | None:
        node = self.find(path)
        return None if node is None else node.text.strip()


class _Refused(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def parse_xml(path: Path) -> XmlNode:
    """Parse an XML file into XmlNodes; a DOCTYPE, an entity or bad XML raise FormatError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except OSError as exc:
        raise FormatError(path, f"cannot be read ({exc.strerror})") from None

    parser = expat.ParserCreate()
    # Belt and braces: the DOCTYPE handler below already stops before any DTD is read.
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[XmlNode] = []
    roots: list[XmlNode] = []
    texts: list[list[str]] = []

    def refuse_doctype(*_args: object) -> None:
        raise _Refused("a DOCTYPE declaration is not accepted (no DTDs or entities)")

    def refuse_entity(*_args: object) -> None:
        raise _Refused("an ENTITY declaration is not accepted")

    def refuse_external(*_args: object) -> int:
        raise _Refused("an external entity is not accepted")

    def start(tag: str, attrib: dict[str, str]) -> None:
        node = XmlNode(tag, dict(attrib), parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
        texts.append([])

    def end(_tag: str) -> None:
        stack.pop().text = "".join(texts.pop())

    def characters(data: str) -> None:
        if texts:
            texts[-1].append(data)

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_external
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise FormatError(path, exc.what, parser.CurrentLineNumber) from None
    except LookupError as exc:  # an encoding="..." that Python does not know
        raise FormatError(path, f"unknown text encoding ({exc})", parser.CurrentLineNumber) from None
    except expat.ExpatError as exc:
        raise FormatError(path, f"not well-formed XML ({expat.ErrorString(exc.code)})", exc.lineno) from None
    if not roots:
        raise FormatError(path, "holds no XML element")
    return roots[0]


def xml_text(root: ET.Element) -> str:
    """An element tree as indented UTF-8 XML text with a declaration."""
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append a child element, optionally with text."""
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child
