"""The message formats the gateway emits, by the names the registry uses for them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway import dialogmelding, plo
from gateway.adresseregister import Address
from gateway.kartlegging import Kartlegging

Builder = Callable[[Kartlegging, Address, Address, str, str, datetime, str], bytes]


@dataclass(frozen=True)
class Format:
    name: str
    msg_type: str
    namespace: str
    build: Builder


FORMATS: dict[str, Format] = {
    "dialogmelding-1.1": Format("dialogmelding-1.1", dialogmelding.MSG_TYPE[0], dialogmelding.DIALOG_NS,
                                dialogmelding.build_dialogmelding),
    "plo-1.6": Format("plo-1.6", plo.MSG_TYPE[0], plo.P5_NS, plo.build_helseopplysninger),
}
