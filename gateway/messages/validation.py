"""Validation of whole messages against the official XSDs (``schemas/``).

lxml (libxml2) is the gate on the hot path: ~0.1 ms a message. ``xmlschema`` is the second
opinion for conformance tests and for explaining a failure (25-60× slower, richer paths).
Failures carry the AppRec 8221 code they would earn at the receiver: T01 not well-formed (or
refused before reading, such as a DOCTYPE), T02 not valid against the schema, T10 a payload
format we have no schema for.

MsgHead's ``Document/RefDoc/Content`` is ``<any processContents="strict">``: MsgHead-v1_2.xsd
alone cannot validate a whole message. The ``schemas/bundles/`` wrappers import MsgHead plus
one standard's payload schemas; the payload's namespace picks the bundle.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.errors import GatewayError
from gateway.settings import PACKAGED_SCHEMAS

MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
BASE64_NS = "http://www.kith.no/xmlstds/base64container"
MAX_MESSAGE_BYTES = 20 * 1024 * 1024

# Format name → schema file (relative to the schema folder). Compiled once per process, on first use.
SCHEMAS: dict[str, str] = {
    "msghead-1.2": "msghead/MsgHead-v1_2.xsd",  # a MsgHead without an XML payload (attachments only)
    "dialogmelding-1.1": "bundles/bundle-msghead-dialogmelding-1.1.xsd",
    "plo-1.6": "bundles/bundle-msghead-plo-1.6.xsd",
    "apprec-1.0": "apprec/AppRec-v1-2004-11-21.xsd",
    "apprec-1.1": "apprec/AppRec-v1.1.xsd",
}
# Namespace of the payload under MsgHead/Document/RefDoc/Content → format name. A test checks that
# every namespace a bundle imports is here and points back at that bundle.
PAYLOAD_FORMATS: dict[str, str] = {
    "http://www.kith.no/xmlstds/dialog/2013-01-23": "dialogmelding-1.1",
    **{f"http://www.kith.no/xmlstds/po/{name}/2012-04-01": "plo-1.6" for name in (
        "HelseopplysningerVedSoknad", "HelseopplysningerTilLege", "Innleggelsesrapport",
        "MedisinskeOpplysninger", "OrienteringOmTjenestetilbud", "Pasientlogistikk", "TverrfagligEpikrise")},
}
# Root element namespace → format name, for messages that are not MsgHead.
ROOT_FORMATS: dict[str, str] = {
    "http://www.kith.no/xmlstds/apprec/2004-11-21": "apprec-1.0",
    "http://www.kith.no/xmlstds/apprec/2012-02-15": "apprec-1.1",
}
APPREC_SCHEMAS: dict[str, str] = {ns: SCHEMAS[name] for ns, name in ROOT_FORMATS.items()}

_XML_SPACE = re.compile(rb"[ \t\r\n]*")  # one character class, no nesting: linear


def doctype_in_prolog(xml: bytes) -> bool:
    r"""Whether a DOCTYPE comes right at the start (after a BOM, whitespace, the XML declaration, comments and
    processing instructions), seen before libxml2 reads any entity declaration. Other encodings (UTF-16) are
    caught after parsing.

    A hand-written scan, not a regular expression: this runs on bytes from anyone, and a backtracking pattern
    such as ``(?:\s+|<\?.*?\?>)*`` takes exponential time on a run of spaces (issue 12: 73 bytes stopped the
    gateway). Every step moves ``i`` forward and each ``find`` looks at a byte at most once, so the scan is
    linear in the length of the input."""
    i, n = (3 if xml.startswith(b"\xef\xbb\xbf") else 0), len(xml)
    while i < n:
        space = _XML_SPACE.match(xml, i)
        if space is not None and space.end() > i:
            i = space.end()
        elif xml.startswith(b"<?", i):
            end = xml.find(b"?>", i + 2)
            if end < 0:
                return False  # never closed: not well-formed, libxml2 refuses it
            i = end + 2
        elif xml.startswith(b"<!--", i):
            end = xml.find(b"-->", i + 4)
            if end < 0:
                return False
            i = end + 3
        else:
            return xml.startswith(b"<!DOCTYPE", i)
    return False


class MessageInvalid(GatewayError):
    """A message a receiver would reject; ``code`` is the AppRec 8221 error code it would earn."""

    def __init__(self, code: str, path: str, message: str, line: int | None = None) -> None:
        where = f"{path} (line {line})" if line else path
        super().__init__(f"{code} at {where}: {message}")
        self.code = code
        self.path = path
        self.message = message
        self.line = line


_DEFAULT_SCHEMAS = str(PACKAGED_SCHEMAS)  # a str, resolved once: the folder is a cache key on the hot path


def safe_parser() -> etree.XMLParser:
    """No DTD loading, no entity expansion, no network, no huge trees: the input may come from anyone."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_blank_text=False)


_parsers = threading.local()


def _parser() -> etree.XMLParser:
    """One safe parser per thread, reused: lxml parsers keep no document, but are not thread-safe."""
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = safe_parser()
    return parser


def parse_untrusted(xml: bytes) -> etree._Element:
    """Parse a message from outside; T01 for anything that is not plain, well-formed XML."""
    if len(xml) > MAX_MESSAGE_BYTES:
        raise MessageInvalid("T01", "/", f"the message is larger than {MAX_MESSAGE_BYTES} bytes")
    if doctype_in_prolog(xml):
        raise MessageInvalid("T01", "/", "a DOCTYPE is not allowed in a message")
    try:
        root = etree.fromstring(xml, _parser())
    except etree.XMLSyntaxError as exc:
        raise MessageInvalid("T01", "/", str(exc.msg), exc.lineno) from None
    doc = root.getroottree().docinfo
    if doc.internalDTD is not None or doc.doctype:
        raise MessageInvalid("T01", "/", "a DOCTYPE is not allowed in a message")
    return root


@lru_cache(maxsize=16)
def _compiled(folder: str, name: str) -> etree.XMLSchema:
    # The schemas are ours (copied from the official sources): their parser may read local imports.
    return etree.XMLSchema(etree.parse(str(Path(folder) / SCHEMAS[name])))


def schema(name: str, folder: str = _DEFAULT_SCHEMAS) -> etree.XMLSchema:
    """The compiled schema of a format (see ``SCHEMAS``), compiled once per process and folder."""
    return _compiled(folder, name)


def format_of(root: etree._Element) -> str:
    """The format name whose schema validates this message: by root, then by payload namespace."""
    namespace = etree.QName(root).namespace
    if root.tag != f"{{{MSGHEAD_NS}}}MsgHead":
        if namespace in ROOT_FORMATS and etree.QName(root).localname == "AppRec":
            return ROOT_FORMATS[namespace]
        raise MessageInvalid("T10", "/" + etree.QName(root).localname,
                             f"unsupported root element {etree.QName(root).localname} in {namespace}")
    payloads = root.iterfind(f"{{{MSGHEAD_NS}}}Document/{{{MSGHEAD_NS}}}RefDoc/{{{MSGHEAD_NS}}}Content/*")
    for payload in payloads:
        if not isinstance(payload.tag, str):
            continue  # comments and processing instructions
        namespace = etree.QName(payload).namespace
        if namespace == BASE64_NS:
            continue  # an attachment; MsgHead imports its schema itself
        if namespace not in PAYLOAD_FORMATS:
            raise MessageInvalid("T10", "/MsgHead/Document/RefDoc/Content",
                                 f"no schema for the payload namespace {namespace}")
        return PAYLOAD_FORMATS[namespace]
    return "msghead-1.2"


def readable_path(root: etree._Element, libxml2_path: str | None) -> str:
    """``/*/*[1]/*[7]/*/*[2]`` (libxml2) → ``/MsgHead/MsgInfo/Receiver/Organisation/Organisation``.

    Local names, with a position only where siblings share the name; never text, so no patient data."""
    if not libxml2_path:
        return "/"
    try:
        found = root.getroottree().xpath(libxml2_path)
    except etree.XPathError:
        return libxml2_path
    if not found or not isinstance(found[0], etree._Element):
        return libxml2_path
    steps: list[str] = []
    el: etree._Element | None = found[0]
    while el is not None:
        step = etree.QName(el).localname
        parent = el.getparent()
        if parent is not None:
            same = [s for s in parent if s.tag == el.tag]
            if len(same) > 1:
                step += f"[{same.index(el) + 1}]"
        steps.append(step)
        el = parent
    return "/" + "/".join(reversed(steps))


def validate_message(xml: bytes, schema_dir: str | Path = _DEFAULT_SCHEMAS) -> etree._Element:
    """Parse safely and validate; returns the root, raises MessageInvalid with the first error."""
    return validate_tree(parse_untrusted(xml), schema_dir)


def validate_tree(root: etree._Element, schema_dir: str | Path = _DEFAULT_SCHEMAS) -> etree._Element:
    """Validate a tree the gateway built itself (no parse: lxml serializes a tree faithfully).
    ``schema_dir`` is the packaged XSDs unless the operator set GATEWAY_SCHEMA_DIR."""
    compiled = schema(format_of(root), str(schema_dir))
    if not compiled.validate(root):
        error = compiled.error_log[0]
        raise MessageInvalid("T02", readable_path(root, error.path), error.message, error.line)
    return root


@lru_cache(maxsize=16)
def _xmlschema(folder: str, name: str) -> Any:
    import xmlschema  # slow to import and to build: only when a second opinion is asked for

    return xmlschema.XMLSchema(str(Path(folder) / SCHEMAS[name]))


def explain_with_xmlschema(xml: bytes, schema_dir: str | Path = _DEFAULT_SCHEMAS) -> list[str]:
    """Every error as ``xmlschema`` sees it (empty when valid): the second opinion, not for the hot path."""
    try:
        root = parse_untrusted(xml)
        validator = _xmlschema(str(schema_dir), format_of(root))
    except MessageInvalid as exc:
        return [f"{exc.code} {exc.path}: {exc.message}"]
    return [f"{e.path}: {e.reason}" for e in validator.iter_errors(root.getroottree())]
