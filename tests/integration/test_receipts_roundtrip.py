"""Issue 13, point 1: the receipt round trip as a real receiver plays it, on a real RabbitMQ with the
gateway as a real process. The receiver reads the delivered message from its own queue, builds the
AppRec addressed to the message's MsgHead/Sender (messages.apprec's builder), and publishes it where that
party's queue is; nothing in the test knows where the gateway listens. The tracker must record it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pika
import pytest
from lxml import etree

from gateway.delivery.bus import receiver_queue_name
from gateway.messages.apprec import AppRecError, Status, build_apprec
from tests.conftest import FIXTURES, ROOT, GatewayProcess, Rabbit

NS = {"mh": "http://www.kith.no/xmlstds/msghead/2006-05-24"}
RECEIVER = 8100101  # Bergen's forvaltningsenhet: reads Dialogmelding and PLO


def event(fmt: str, status: Status) -> dict[str, Any]:
    e = json.loads((FIXTURES / "events" / "01-sp1-bergen-brystkreft.json").read_text(encoding="utf-8"))
    e["event_id"] = f"5b0a0d7e-0000-4000-8000-0000000013{'d' if fmt == 'dialog' else 'f'}{status.value}"
    if fmt == "plo":  # PLO only while the patient is admitted
        e["inpatient_stay"] = {"admitted_on": "2026-01-20"}
    return e


def sender_queue(message: bytes) -> str:
    """Where a receiver sends its receipt: the queue of the most specific HER-id in MsgHead/Sender."""
    sender = etree.fromstring(message).find("mh:MsgInfo/mh:Sender/mh:Organisation", NS)
    unit = sender.find("mh:Organisation", NS)
    return receiver_queue_name((unit if unit is not None else sender).findtext("mh:Ident/mh:Id", namespaces=NS))


def status_of(env: dict[str, str], msg_id: str) -> dict[str, Any] | None:
    done = subprocess.run([sys.executable, "-m", "gateway", "messages", "list", "--json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return next((r for r in json.loads(done.stdout) if r["msg_id"] == msg_id), None)


@pytest.mark.parametrize("status", [Status.OK, Status.AVVIST], ids=["OK", "Avvist"])
@pytest.mark.parametrize(("fmt", "msg_type"), [("dialog", "DIALOG_HELSEFAGLIG"), ("plo", "HELSEOPPL_SOKNAD")])
def test_receiver_answers_the_sender_and_the_tracker_records_it(rabbit: Rabbit, gateway: GatewayProcess, fmt: str,
                                                                msg_type: str, status: Status) -> None:
    e = event(fmt, status)
    rabbit.publish_event(json.dumps(e).encode(), e["event_id"])
    [delivered] = rabbit.take(receiver_queue_name(RECEIVER), 1)
    assert delivered.properties.type == msg_type
    errors = () if status is Status.OK else (AppRecError("E35", "Pasienten finnes ikke i mottakersystemet"),)
    receipt = build_apprec(delivered.body, status, errors)
    queue = sender_queue(delivered.body)
    assert queue == "8100601_async"  # the hospital department that sent it, not a gateway-only HER-id
    rabbit.channel.basic_publish("", queue, receipt, pika.BasicProperties(content_type="application/xml",
                                                                          delivery_mode=2))
    expected = "acknowledged" if status is Status.OK else "rejected"
    deadline = time.monotonic() + 20
    row = None
    while time.monotonic() < deadline:
        row = status_of(gateway.env, delivered.properties.message_id)
        if row and row["status"] == expected:
            break
        time.sleep(0.3)
    assert row is not None and row["status"] == expected and row["apprec_code"] == status.value
    if errors:
        assert row["apprec_errors"][0]["code"] == "E35"  # nested JSON, not a JSON string
    assert rabbit.take("gateway.parked", 1, timeout=0.3) == []
    assert rabbit.take("gateway.inbound", 1, timeout=0.3) == []  # a receipt is the tracker's, not handed on
    assert gateway.stop() == 0
    assert ('"apprec.rejected"' in gateway.log_text()) == (status is Status.AVVIST)
