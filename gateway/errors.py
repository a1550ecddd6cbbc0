"""The gateway's exceptions (one base, ``GatewayError``) and its stable reason codes.

Operators read and filter on reason codes, and hospitals may build alerts on them, so a
code never changes meaning once released. The human text may improve; the code may not.
A reason never carries patient data: it goes into AMQP headers, the store and logs.
``docs/reason-codes.md`` lists every code; a test keeps it in step with ``Reason``.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NOT_JSON = "EVENT_NOT_JSON"
    SCHEMA = "EVENT_SCHEMA_VIOLATION"
    UNSUPPORTED_SCHEMA = "EVENT_UNSUPPORTED_SCHEMA"
    BAD_FNR = "EVENT_BAD_FODSELSNUMMER"
    H_NUMMER = "EVENT_H_NUMMER"
    SYNTHETIC_FNR = "EVENT_SYNTHETIC_FODSELSNUMMER"
    IMPLAUSIBLE_DATE = "EVENT_IMPLAUSIBLE_DATE"
    TOO_LARGE = "EVENT_TOO_LARGE"
    EVENT_ID_CONFLICT = "EVENT_ID_CONFLICT"
    WMFG10_MISSING = "EVENT_WMFG10_MISSING"
    UNKNOWN_SENDER = "ROUTING_UNKNOWN_SENDER"
    SENDER_NOT_SERVED = "EVENT_SENDER_NOT_SERVED"
    UNKNOWN_KOMMUNE = "ROUTING_UNKNOWN_KOMMUNE"
    NO_KOMMUNE_CONTACT_POINT = "ROUTING_NO_KOMMUNE_CONTACT_POINT"
    NO_FASTLEGE = "ROUTING_NO_FASTLEGE"
    NO_ACCEPTED_FORMAT = "ROUTING_NO_ACCEPTED_FORMAT"
    NO_HOSPITAL_CONTACT = "ROUTING_NO_HOSPITAL_CONTACT"
    NO_MATCHING_RULE = "ROUTING_NO_MATCHING_RULE"
    TEMPLATE_INCOMPLETE = "MESSAGE_TEMPLATE_INCOMPLETE"
    MESSAGE_INVALID = "MESSAGE_SCHEMA_INVALID"
    RETRIES_EXHAUSTED = "DELIVERY_RETRIES_EXHAUSTED"
    APPREC_INVALID = "APPREC_INVALID"
    APPREC_UNKNOWN_ORIGINAL = "APPREC_UNKNOWN_ORIGINAL"
    APPREC_WRONG_PARTY = "APPREC_WRONG_PARTY"
    INBOUND_UNREADABLE = "INBOUND_UNREADABLE"
    APPREC_TOO_LARGE = "APPREC_TOO_LARGE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    EDI2_REJECTED = "TRANSPORT_EDI2_REJECTED"
    EDI2_LOCKED = "TRANSPORT_EDI2_LOCKED"
    # set by the broker, not the gateway: read from x-death by delivery.bus.parked_reason
    BROKER_DELIVERY_LIMIT = "BROKER_DELIVERY_LIMIT"


class GatewayError(Exception):
    """Base of every exception the gateway raises on purpose; anything else is a bug."""


class ConfigurationError(GatewayError, ValueError):
    """A setting or a configuration file is wrong; the message names it and says what is expected."""


class StoreUnavailable(GatewayError):
    """The store cannot be read or written now; the work waits (unacked on the bus) and is retried."""


class StoreMissing(GatewayError):
    """A read-only command was pointed at a store that does not exist (a typo in GATEWAY_STORE_URL)."""


class PublishFailed(GatewayError):
    """The broker could not take a batch after bounded retries; nothing of it is acked."""


class Parked(GatewayError):
    """Raised by a step of the path when an event cannot go on; the consumer parks it."""

    def __init__(self, code: Reason, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
