"""Business documents as the stand-in sees them: decoded, parsed safely, validated, addressed, answered.

The Meldingstjener reads the business document to find sender, receivers and MsgId (v2 takes them from the
document; README §1, §6), and a receiver validates it against the official schemas before it answers with an
AppRec. The stand-in does both, with the XSDs in the package resources (``schemas/``, the same copies the
gateway validates with), compiled by lxml. Any DOCTYPE is refused before parsing, and the parser never loads a
DTD, expands an entity or touches the network: the document comes from a client under test.

This module is deliberately independent of the gateway's own ``messages`` package: a stand-in that shared the
gateway's validator would agree with the gateway's bugs.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
APPREC11_NS = "http://www.kith.no/xmlstds/apprec/2012-02-15"
APPREC10_NS = "http://www.kith.no/xmlstds/apprec/2004-11-21"
BASE64_NS = "http://www.kith.no/xmlstds/base64container"
OID_8221 = "2.16.578.1.12.4.1.1.8221"
MAX_DOCUMENT_BYTES = 35 * 1024 * 1024
OSLO = ZoneInfo("Europe/Oslo")

SCHEMAS = {
    "msghead": "msghead/MsgHead-v1_2.xsd",
    "dialogmelding": "bundles/bundle-msghead-dialogmelding-1.1.xsd",
    "plo": "bundles/bundle-msghead-plo-1.6.xsd",
    "apprec-1.0": "apprec/AppRec-v1-2004-11-21.xsd",
    "apprec-1.1": "apprec/AppRec-v1.1.xsd",
}
PAYLOAD_SCHEMAS = {
    "http://www.kith.no/xmlstds/dialog/2013-01-23": "dialogmelding",
    **{f"http://www.kith.no/xmlstds/po/{name}/2012-04-01": "plo" for name in (
        "HelseopplysningerVedSoknad", "HelseopplysningerTilLege", "Innleggelsesrapport", "MedisinskeOpplysninger",
        "OrienteringOmTjenestetilbud", "Pasientlogistikk", "TverrfagligEpikrise")},
}
ERROR_TEXT = {"E10": "Ugyldig meldingsidentifikator", "E20": "Lege finnes ikke", "E21": "Mottaker finnes ikke",
              "E35": "Pasienten finnes ikke i mottakersystemet", "T01": "Ikke XML / ikke 'well formed' / uleselig",
              "T02": "XML validerer ikke", "T10": "Støtter ikke meldingsformatet", "X99": "Annen feil"}

_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_UTF8_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding=[\"'](?i:utf-8)[\"']")


class DocumentRefused(Exception):
    """The API refuses the POST (400): not base64, not XML, no addressing it can read."""

    def __init__(self, message: str, validation_errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.validation_errors = validation_errors or []


class DocumentInvalid(Exception):
    """Readable, but not valid against the official schemas: a receiver answers AppRec Avvist with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Addressing:
    """What the Meldingstjener reads from a business document."""

    msg_id: str
    msg_type: str
    gen_date: str
    sender_her_ids: tuple[int, ...]  # outermost first; the last is the most specific (the sending unit)
    receiver_her_ids: tuple[int, ...]
    is_app_rec: bool
    original_msg_id: str | None = None

    @property
    def sender_her_id(self) -> int:
        return self.sender_her_ids[-1]

    @property
    def receiver_her_id(self) -> int:
        return self.receiver_her_ids[-1]


def schema_folder() -> Path:
    """The schemas folder in the package resources (a real folder: lxml resolves relative imports there)."""
    return Path(str(files("gateway") / "resources" / "schemas"))


@lru_cache(maxsize=8)
def compiled(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_folder() / SCHEMAS[name])))


def decode(business_document: str, content_type: str, transfer_encoding: str) -> bytes:
    """Base64 to bytes, with the API's stated rules: XML, base64, within the size limit."""
    if content_type.split(";")[0].strip().lower() not in ("application/xml", "text/xml"):
        raise DocumentRefused(f"contentType must be application/xml, not {content_type!r}")
    if transfer_encoding.lower() != "base64":
        raise DocumentRefused(f"contentTransferEncoding must be base64, not {transfer_encoding!r}")
    try:
        raw = base64.b64decode(business_document, validate=True)
    except (binascii.Error, ValueError):
        raise DocumentRefused("businessDocument is not valid base64") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentRefused("the business document is larger than 35 MB")
    return raw


def parse(raw: bytes) -> etree._Element:
    """Safe parse; the description requires UTF-8 declared on the first line."""
    if _DOCTYPE.search(raw[:4096]) or b"<!ENTITY" in raw:
        raise DocumentRefused("a DOCTYPE or entity declaration is not allowed in a business document")
    if not _UTF8_DECLARATION.match(raw):
        raise DocumentRefused("the business document must declare encoding UTF-8 on its first line")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise DocumentRefused(f"the business document is not well-formed XML: {exc.msg}") from None
    if root.getroottree().docinfo.doctype:
        raise DocumentRefused("a DOCTYPE is not allowed in a business document")
    return root


def _her_ids(party: etree._Element | None) -> tuple[int, ...]:
    """HER-ids in a MsgHead Sender/Receiver, outermost first (Organisation ▸ Organisation ▸ HCP)."""
    if party is None:
        return ()
    found: list[int] = []
    for ident in party.iter(f"{{{MSGHEAD_NS}}}Ident"):
        type_id = ident.find(f"{{{MSGHEAD_NS}}}TypeId")
        value = ident.findtext(f"{{{MSGHEAD_NS}}}Id")
        if type_id is not None and type_id.get("V") == "HER" and value and value.strip().isdigit():
            found.append(int(value.strip()))
    return tuple(found)


def _apprec_her_ids(party: etree._Element | None, ns: str) -> tuple[int, ...]:
    if party is None:
        return ()
    found: list[int] = []
    for element in party.iter():
        if not isinstance(element.tag, str):
            continue
        type_id = element.find(f"{{{ns}}}TypeId")
        value = element.findtext(f"{{{ns}}}Id")
        if type_id is not None and type_id.get("V") == "HER" and value and value.strip().isdigit():
            found.append(int(value.strip()))
    return tuple(found)


def addressing(root: etree._Element) -> Addressing:
    """Sender, receivers and MsgId as the Meldingstjener reads them; ``DocumentRefused`` if it cannot."""
    qname = etree.QName(root)
    if qname.namespace == MSGHEAD_NS and qname.localname == "MsgHead":
        info = root.find(f"{{{MSGHEAD_NS}}}MsgInfo")
        if info is None:
            raise DocumentRefused("MsgHead without MsgInfo")
        msg_id = (info.findtext(f"{{{MSGHEAD_NS}}}MsgId") or "").strip()
        type_el = info.find(f"{{{MSGHEAD_NS}}}Type")
        senders = _her_ids(info.find(f"{{{MSGHEAD_NS}}}Sender"))
        receivers = _her_ids(info.find(f"{{{MSGHEAD_NS}}}Receiver"))
        if not msg_id or not senders or not receivers:
            raise DocumentRefused("addressees could not be deduced: MsgId and sender/receiver HER-ids are required")
        return Addressing(msg_id=msg_id, msg_type=type_el.get("V", "") if type_el is not None else "",
                          gen_date=(info.findtext(f"{{{MSGHEAD_NS}}}GenDate") or "").strip(),
                          sender_her_ids=senders, receiver_her_ids=receivers, is_app_rec=False)
    if qname.localname == "AppRec" and qname.namespace in (APPREC10_NS, APPREC11_NS):
        ns = qname.namespace
        senders = _apprec_her_ids(root.find(f"{{{ns}}}Sender"), ns)
        receivers = _apprec_her_ids(root.find(f"{{{ns}}}Receiver"), ns)
        msg_id = (root.findtext(f"{{{ns}}}Id") or "").strip()
        if not msg_id or not senders or not receivers:
            raise DocumentRefused("addressees could not be deduced from the AppRec")
        return Addressing(msg_id=msg_id, msg_type="APPREC", gen_date=(root.findtext(f"{{{ns}}}GenDate") or ""),
                          sender_her_ids=senders, receiver_her_ids=receivers, is_app_rec=True,
                          original_msg_id=root.findtext(f"{{{ns}}}OriginalMsgId/{{{ns}}}Id"))
    raise DocumentRefused(f"unsupported business document root {etree.QName(root).text}")


def schema_name(root: etree._Element) -> str:
    qname = etree.QName(root)
    if qname.localname == "AppRec":
        return "apprec-1.1" if qname.namespace == APPREC11_NS else "apprec-1.0"
    for payload in root.iterfind(f"{{{MSGHEAD_NS}}}Document/{{{MSGHEAD_NS}}}RefDoc/{{{MSGHEAD_NS}}}Content/*"):
        if not isinstance(payload.tag, str):
            continue
        namespace = etree.QName(payload).namespace
        if namespace == BASE64_NS:
            continue
        if namespace not in PAYLOAD_SCHEMAS:
            raise DocumentInvalid("T10", f"no schema for the payload namespace {namespace}")
        return PAYLOAD_SCHEMAS[namespace]
    return "msghead"


def validate(root: etree._Element) -> None:
    """MsgHead + payload (or AppRec) against the official XSDs; ``DocumentInvalid('T02', …)`` on the first error.

    The error text names an element path and the schema's complaint, never element content."""
    schema = compiled(schema_name(root))
    if not schema.validate(root):
        error = schema.error_log[0]
        raise DocumentInvalid("T02", f"line {error.line}: {error.message}"[:300])


def now_oslo() -> str:
    """GenDate as Norwegian systems write it: local time without an offset (see the KS fixtures)."""
    return datetime.now(OSLO).replace(tzinfo=None).isoformat(timespec="seconds")


def build_apprec(original: Addressing, status: str, errors: list[tuple[str, str]] | None = None) -> bytes:
    """An AppRec 1.1 from the original's receiver to its sender, as a receiving EPJ would send it.

    ``status`` is "1" (OK), "2" (Avvist) or "3" (OK, feil i delmelding); ``errors`` are 8221 codes with
    texts. The result is validated against AppRec-v1.1.xsd before it is returned: the stand-in must never
    produce a receipt a real receiver could not have sent."""
    ns = APPREC11_NS
    root = etree.Element(f"{{{ns}}}AppRec", nsmap={None: ns})

    def sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{ns}}}{name}", attrs)
        if text is not None:
            element.text = text
        return element

    def party(name: str, role: str, role_dn: str, her_ids: tuple[int, ...]) -> None:
        element = sub(root, name)
        sub(element, "Role", V=role, DN=role_dn)
        inst = sub(sub(element, "HCP"), "Inst")
        sub(inst, "Name", f"Stand-in HER {her_ids[0]}")
        sub(inst, "Id", str(her_ids[0]))
        sub(inst, "TypeId", V="HER", DN="HER-id")
        if len(her_ids) > 1:
            dept = sub(inst, "Dept")
            sub(dept, "Name", f"Stand-in HER {her_ids[-1]}")
            sub(dept, "Id", str(her_ids[-1]))
            sub(dept, "TypeId", V="HER", DN="HER-id")

    sub(root, "MsgType", V="APPREC", DN="Applikasjonskvittering")
    sub(root, "MIGversion", "v1.1 2012-02-15")
    sub(root, "GenDate", now_oslo())
    sub(root, "Id", str(uuid.uuid4()))
    party("Sender", "PRIM", "Primærmottaker", original.receiver_her_ids)
    party("Receiver", "AVS", "Avsender", original.sender_her_ids)
    sub(root, "Status", V=status, DN={"1": "OK", "2": "Avvist", "3": "OK, feil i delmelding"}[status])
    for code, text in errors or []:
        sub(root, "Error", V=code, DN=text or ERROR_TEXT.get(code, "Annen feil"), S=OID_8221)
    original_el = sub(root, "OriginalMsgId")
    sub(original_el, "MsgType", V=original.msg_type or "DIALOG_HELSEFAGLIG", DN=original.msg_type or "Dialog")
    sub(original_el, "IssueDate", original.gen_date or now_oslo())
    sub(original_el, "Id", original.msg_id)
    compiled("apprec-1.1").assertValid(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
