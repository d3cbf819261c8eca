"""XML: DOCTYPE and ENTITY declarations are refused outright; nothing is expanded or fetched."""

from __future__ import annotations

import pytest

from trackers.formats import cvat, voc
from trackers.formats.common import FormatError
from trackers.formats.safe_xml import parse_xml

ATTACKS = {
    "internal entity": '<!DOCTYPE a [<!ENTITY x "boom">]><annotations>&x;</annotations>',
    "external entity": '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations>&x;</annotations>',
    "parameter entity": '<!DOCTYPE a [<!ENTITY % p SYSTEM "http://example.org/evil.dtd"> %p;]><annotations/>',
    "external DTD": '<!DOCTYPE annotations SYSTEM "http://example.org/evil.dtd"><annotations/>',
    "empty DOCTYPE": "<!DOCTYPE annotations><annotations/>",
}


@pytest.mark.parametrize("text", ATTACKS.values(), ids=list(ATTACKS))
def test_doctype_is_refused(text, tmp_path):
    path = tmp_path / "a.xml"
    path.write_text('<?xml version="1.0"?>\n' + text + "\n")
    with pytest.raises(FormatError, match="DOCTYPE declaration is not accepted") as info:
        parse_xml(path)
    assert info.value.line == 2
    with pytest.raises(FormatError):
        cvat.read(path)


def test_voc_frame_with_entity_is_refused(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "frame_000000.xml").write_text(
        '<!DOCTYPE annotation [<!ENTITY n "dog">]><annotation><object><name>&n;</name></object></annotation>'
    )
    with pytest.raises(FormatError, match="DOCTYPE"):
        voc.read(tmp_path)


def test_plain_xml_with_predefined_entities_is_fine(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text('<a x="1 &amp; 2"><b>&lt;c&gt;</b></a>')
    root = parse_xml(path)
    assert root.attrib == {"x": "1 & 2"} and root.findtext("b") == "<c>" and root.find("b").line == 1
