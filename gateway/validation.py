"""Validation of whole messages against the official XSDs (``schemas/``).

lxml (libxml2) is the gate on the hot path: ~30 µs a message. ``xmlschema`` is the second
opinion for conformance tests and for explaining a failure (60× slower, richer paths).
Failures carry the AppRec 8221 code they would earn at the receiver: T01 not well-formed,
T02 not valid against the schema.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_NOT_PAYLOAD = {MSGHEAD_NS, "http://www.kith.no/xmlstds/base64container"}
APPREC_SCHEMAS: dict[str, str] = {
    "http://www.kith.no/xmlstds/apprec/2004-11-21": "apprec/AppRec-v1-2004-11-21.xsd",
    "http://www.kith.no/xmlstds/apprec/2012-02-15": "apprec/AppRec-v1.1.xsd",
}
MAX_MESSAGE_BYTES = 20 * 1024 * 1024


class MessageInvalid(Exception):
    def __init__(self, code: str, path: str, message: str) -> None:
        super().__init__(f"{code} at {path}: {message}")
        self.code = code
        self.path = path
        self.message = message


def schema_dir() -> Path:
    return Path(os.environ.get("GATEWAY_SCHEMA_DIR") or Path(__file__).resolve().parent.parent / "schemas")


def safe_parser() -> etree.XMLParser:
    """No DTD loading, no entity expansion, no network: the input may come from anyone."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_blank_text=False)


def parse_untrusted(xml: bytes) -> etree._Element:
    if len(xml) > MAX_MESSAGE_BYTES:
        raise MessageInvalid("T01", "/", f"the message is larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        root = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise MessageInvalid("T01", f"line {exc.lineno}", str(exc.msg)) from None
    doc = root.getroottree().docinfo
    if doc.internalDTD is not None or doc.doctype:
        raise MessageInvalid("T01", "/", "a DOCTYPE is not allowed in a message")
    return root


@lru_cache(maxsize=1)
def bundles() -> dict[str, str]:
    """Payload namespace → the bundle in schemas/bundles/ that imports MsgHead plus that payload."""
    found: dict[str, str] = {}
    for bundle in sorted((schema_dir() / "bundles").glob("*.xsd")):
        for imported in etree.parse(str(bundle)).getroot().iter(f"{{{XSD_NS}}}import"):
            namespace = imported.get("namespace")
            if namespace and namespace not in _NOT_PAYLOAD:
                found[namespace] = f"bundles/{bundle.name}"
    return found


@lru_cache(maxsize=8)
def _schema(relative: str) -> etree.XMLSchema:
    path = schema_dir() / relative
    # The schemas are ours (copied from the official sources); their parser may read local imports.
    return etree.XMLSchema(etree.parse(str(path)))


def _schema_for(root: etree._Element) -> str:
    if root.tag in {f"{{{ns}}}AppRec" for ns in APPREC_SCHEMAS}:
        return APPREC_SCHEMAS[etree.QName(root).namespace]
    if root.tag != f"{{{MSGHEAD_NS}}}MsgHead":
        raise MessageInvalid("T02", "/", f"unknown root element {root.tag}")
    content = root.find(f"{{{MSGHEAD_NS}}}Document/{{{MSGHEAD_NS}}}RefDoc/{{{MSGHEAD_NS}}}Content")
    payload = next(iter(content), None) if content is not None else None
    namespace = etree.QName(payload).namespace if payload is not None else None
    known = bundles()
    if namespace not in known:
        raise MessageInvalid("T02", "/MsgHead/Document/RefDoc/Content", f"no schema for payload namespace {namespace}")
    return known[namespace]


def validate_message(xml: bytes) -> etree._Element:
    """Parse safely and validate; returns the root, raises MessageInvalid with the first error."""
    root = parse_untrusted(xml)
    schema = _schema(_schema_for(root))
    if not schema.validate(root):
        error = schema.error_log[0]
        raise MessageInvalid("T02", error.path or f"line {error.line}", error.message)
    return root


def explain_with_xmlschema(xml: bytes) -> list[str]:
    """Every error as ``xmlschema`` sees it (empty when valid): the second opinion."""
    try:
        root = parse_untrusted(xml)
        schema = _xmlschema(_schema_for(root))
    except MessageInvalid as exc:
        return [f"{exc.path}: {exc.message}"]
    return [f"{e.path}: {e.reason}" for e in schema.iter_errors(etree.tostring(root))]


@lru_cache(maxsize=8)
def _xmlschema(relative: str) -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(schema_dir() / relative))
