"""Synthetic business documents for the stand-in's tests, demos and benchmarks.

Every identity here is invented: HER-ids are what the caller passes, the patient number is a *synthetic*
fødselsnummer (month + 80, the convention for synthetic test identities, so it can never be a real person's),
and the names say they are test data.
"""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from gateway.standin.documents import now_oslo


def synthetic_fnr(day: int = 1, month: int = 1, year: int = 1980, individual: int = 123) -> str:
    """A fødselsnummer-shaped number with valid check digits and month + 80 (synthetic, never real)."""
    digits = [int(c) for c in f"{day:02d}{month + 80:02d}{year % 100:02d}{individual:03d}"]
    k1 = 11 - sum(w * d for w, d in zip((3, 7, 6, 1, 8, 9, 4, 5, 2), digits, strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    if k1 == 10:
        return synthetic_fnr(day, month, year, individual + 1)
    digits.append(k1)
    k2 = 11 - sum(w * d for w, d in zip((5, 4, 3, 2, 7, 6, 5, 4, 3, 2), digits, strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    if k2 == 10:
        return synthetic_fnr(day, month, year, individual + 1)
    return "".join(map(str, digits)) + str(k2)


def dialogmelding(*, sender_her_ids: tuple[int, int], receiver_her_ids: tuple[int, int], msg_id: str | None = None,
                  text: str = "Syntetisk testmelding.") -> bytes:
    """A MsgHead 1.2 + Dialogmelding 1.1 (Helsefaglig dialog) valid against the official schemas."""
    msg_id = msg_id or str(uuid.uuid4())
    now = now_oslo()
    fnr = synthetic_fnr()

    def org(her_ids: tuple[int, int], role: str) -> str:
        return (f"<{role}><Organisation><OrganisationName>Syntetisk virksomhet {her_ids[0]}</OrganisationName>"
                f"<Ident><Id>{her_ids[0]}</Id><TypeId V=\"HER\" DN=\"HER-id\" S=\"2.16.578.1.12.4.1.1.9051\"/>"
                f"</Ident><Organisation><OrganisationName>Syntetisk enhet {her_ids[1]}</OrganisationName>"
                f"<Ident><Id>{her_ids[1]}</Id><TypeId V=\"HER\" DN=\"HER-id\" S=\"2.16.578.1.12.4.1.1.9051\"/>"
                f"</Ident></Organisation></Organisation></{role}>")

    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">
<MsgInfo>
<Type V="DIALOG_HELSEFAGLIG" DN="Helsefaglig dialog"/>
<MIGversion>v1.2 2006-05-24</MIGversion>
<GenDate>{now}</GenDate>
<MsgId>{escape(msg_id)}</MsgId>
<ProcessingStatus V="D" DN="Debugging"/>
{org(sender_her_ids, "Sender")}
{org(receiver_her_ids, "Receiver")}
<Patient><FamilyName>TESTPERSON</FamilyName><GivenName>SYNTETISK</GivenName>
<Ident><Id>{fnr}</Id><TypeId V="FNR" DN="Fødselsnummer" S="2.16.578.1.12.4.1.1.8116"/></Ident></Patient>
</MsgInfo>
<Document><RefDoc><IssueDate V="{now}"/><MsgType V="XML" DN="XML-instans"/><Content>
<Dialogmelding xmlns="http://www.kith.no/xmlstds/dialog/2013-01-23">
<Notat><TemaKodet V="6" DN="Henvendelse om pasient" S="2.16.578.1.12.4.1.1.7322"/>
<TekstNotatInnhold>{escape(text)}</TekstNotatInnhold></Notat>
</Dialogmelding>
</Content></RefDoc></Document>
</MsgHead>
"""
    return xml.encode("utf-8")
