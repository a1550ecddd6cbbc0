"""The message formats the gateway emits, by the names the registry uses for them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.domain.kartlegging import Kartlegging
from gateway.domain.registry import Address
from gateway.messages import dialogmelding, plo

TreeBuilder = Callable[[Kartlegging, Address, Address, str, str, datetime, str], etree._Element]


@dataclass(frozen=True)
class Format:
    name: str
    msg_type: str
    namespace: str
    tree: TreeBuilder  # the message as a tree: the gateway validates it, then serializes it


FORMATS: dict[str, Format] = {
    "dialogmelding-1.1": Format("dialogmelding-1.1", dialogmelding.MSG_TYPE[0], dialogmelding.DIALOG_NS,
                                dialogmelding.dialogmelding_tree),
    "plo-1.6": Format("plo-1.6", plo.MSG_TYPE[0], plo.P5_NS, plo.helseopplysninger_tree),
}
