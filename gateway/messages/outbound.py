"""An outbound message (melding) ready for the bus: the XML plus what the bus and the
store need to know about it, so neither has to parse the XML again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# Fixed namespace for MsgIds: uuid5(namespace, "event_id/receiver HER-id") gives a message
# that must be re-sent after a crash the same MsgId, so the receiver can discard the copy.
MSGID_NAMESPACE = uuid.UUID("6f1b9c52-3c8e-4b7e-9a55-4a1d2e0c7b10")


def msg_id_for(event_id: str, receiver_herid: int) -> str:
    return str(uuid.uuid5(MSGID_NAMESPACE, f"{event_id}/{receiver_herid}"))


@dataclass(frozen=True)
class Melding:
    msg_id: str
    event_id: str
    msg_type: str
    from_herid: int
    to_herid: int
    role: str
    why: str
    generated_at: str
    xml: bytes
    transport: str = "amqp"  # "amqp" or "edi2": which transport hands it to the receiver (from the registry)
