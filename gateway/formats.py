"""The message formats the gateway emits, by the names the registry uses for them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway import dialogmelding, plo
from gateway.adresseregister import Address
from gateway.kartlegging import Kartlegging

Builder = Callable[[Kartlegging, Address, Address, str, str, datetime, str], bytes]
TreeBuilder = Callable[[Kartlegging, Address, Address, str, str, datetime, str], etree._Element]


@dataclass(frozen=True)
class Format:
    name: str
    msg_type: str
    namespace: str
    build: Builder
    tree: TreeBuilder  # the same message before serialization: what the gateway validates


FORMATS: dict[str, Format] = {
    "dialogmelding-1.1": Format("dialogmelding-1.1", dialogmelding.MSG_TYPE[0], dialogmelding.DIALOG_NS,
                                dialogmelding.build_dialogmelding, dialogmelding.dialogmelding_tree),
    "plo-1.6": Format("plo-1.6", plo.MSG_TYPE[0], plo.P5_NS, plo.build_helseopplysninger,
                      plo.helseopplysninger_tree),
}
