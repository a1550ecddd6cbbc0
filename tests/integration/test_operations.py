"""AppRec tracking, overdue messages and audited replay, on a real RabbitMQ with the gateway as a
real process; operators' commands run as the CLI."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import Any

import pika

from gateway.messages.apprec import AppRecError, Status, build_apprec, parse_apprec
from tests.conftest import FIXTURES, GatewayProcess, Rabbit
from tests.factories import cli, cli_json

SENDER = 8100601  # MsgHead/Sender of the fixture's messages: receipts go to its queue (issue 13)
EVENT = FIXTURES / "events" / "01-sp1-bergen-brystkreft.json"
RECEIVERS = {8100101: "DIALOG_HELSEFAGLIG", 8100901: "DIALOG_HELSEFAGLIG"}


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def publish_apprec(rabbit: Rabbit, xml: bytes) -> None:
    """As a receiver does: to the queue of the party the receipt is addressed to (the message's sender)."""
    try:
        queue = f"{parse_apprec(xml).receiver_herid}_async"
    except Exception:  # an unreadable receipt still arrives where the receiver meant it to go
        queue = f"{SENDER}_async"
    rabbit.channel.queue_declare(queue, durable=True)
    rabbit.channel.basic_publish("", queue, xml, pika.BasicProperties(content_type="application/xml",
                                                                      delivery_mode=2))


def deliver_event(rabbit: Rabbit) -> dict[int, bytes]:
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    rabbit.publish_event(EVENT.read_bytes(), event["event_id"])
    return {herid: rabbit.take(f"{herid}_async", 1)[0].body for herid in RECEIVERS}


def test_apprecs_are_tracked_and_unknown_ones_parked(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    got = deliver_event(rabbit)
    publish_apprec(rabbit, build_apprec(got[8100101], Status.OK))
    publish_apprec(rabbit, build_apprec(got[8100901], Status.AVVIST,
                                        (AppRecError("E35", "Pasienten finnes ikke i mottakersystemet"),),
                                        version="1.0"))
    stranger = build_apprec(got[8100101], Status.OK).replace(parse_apprec(build_apprec(got[8100101], Status.OK))
                                                              .original_msg_id.encode(), b"no-such-message")
    publish_apprec(rabbit, stranger)
    publish_apprec(rabbit, b"<AppRec>not valid</AppRec>")
    parked = rabbit.take("gateway.parked", 2)
    assert sorted(d.headers["x-reason-code"] for d in parked) == ["APPREC_INVALID", "APPREC_UNKNOWN_ORIGINAL"]

    def statuses() -> dict[int, tuple[str, Any]] | None:
        rows = cli_json(gateway.env, "messages", "list")
        result = {r["to_herid"]: (r["status"], r["apprec_code"]) for r in rows}
        return result if result.get(8100901, ("",))[0] == "rejected" and result[8100101][0] == "acknowledged" else None

    result = wait_for(statuses)
    assert result == {8100101: ("acknowledged", "1"), 8100901: ("rejected", "2")}
    rejected = cli_json(gateway.env, "messages", "list", "--status", "rejected")
    assert rejected[0]["apprec_status"] == "Avvist", "the status in words; the code is apprec_code"
    assert rejected[0]["apprec_errors"] == [
        {"code": "E35", "text": "Pasienten finnes ikke i mottakersystemet", "detail": None,
         "system": "2.16.578.1.12.4.1.1.8221"}]
    shown = cli(gateway.env, "messages", "show", rejected[0]["msg_id"], "--no-xml").stdout
    assert "rejected" in shown and "E35" in shown and "fastlege" in shown


def test_messages_without_receipt_become_overdue_once(rabbit: Rabbit, gateway_env: dict[str, str],
                                                      tmp_path: Path, spawn: Any) -> None:
    env = {**gateway_env, "GATEWAY_APPREC_DEADLINE_HOURS": str(1 / 3600), "GATEWAY_OVERDUE_CHECK_SECONDS": "0.3"}
    g = spawn(env, "g.log")
    g.start(rabbit)
    try:
        got = deliver_event(rabbit)
        publish_apprec(rabbit, build_apprec(got[8100101], Status.OK))
        overdue = wait_for(lambda: (rows := cli_json(env, "messages", "overdue")) and len(rows) == 1 and rows)
        assert {r["to_herid"] for r in overdue} == {8100901}
        time.sleep(1.0)  # several more checks run
    finally:
        assert g.stop() == 0
    log = g.log_text()
    assert log.count('"message.overdue"') == 1
    statuses = {r["to_herid"]: r["status"] for r in cli_json(env, "messages", "list")}
    assert statuses[8100101] == "acknowledged"


def test_replay_parked_event_after_the_registry_is_fixed(rabbit: Rabbit, gateway_env: dict[str, str],
                                                        tmp_path: Path, spawn: Any) -> None:
    register = json.loads((FIXTURES / "register.json").read_text(encoding="utf-8"))
    without = dict(register, parties=[p for p in register["parties"] if p["herid"] != 8100101])
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(without), encoding="utf-8")
    env = {**gateway_env, "GATEWAY_REGISTRY": str(broken), "GATEWAY_OPERATOR": "ops-kari"}
    g = spawn(env, "g.log")
    g.start(rabbit)
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    rabbit.publish_event(EVENT.read_bytes(), event["event_id"])
    assert rabbit.take("gateway.parked", 1)[0].headers["x-reason-code"] == "ROUTING_NO_KOMMUNE_CONTACT_POINT"
    assert g.stop() == 0

    dry = cli(env, "replay", "--status", "parked", "--reason", "tildelingskontoret registrert", "--dry-run")
    assert dry.returncode == 0 and "1 to replay (dry run" in dry.stdout
    assert [r for r in cli_json(env, "audit") if r["action"] != "settings"] == [], "a dry run changes nothing"
    refused = cli(env, "replay", "--status", "parked")
    assert refused.returncode != 0 and "--reason" in refused.stderr

    fixed = {**env, "GATEWAY_REGISTRY": str(FIXTURES / "register.json")}
    g2 = spawn(fixed, "g2.log")
    g2.start(rabbit)
    try:
        done = cli(fixed, "replay", "--status", "parked", "--reason", "tildelingskontoret registrert", "--yes")
        assert done.returncode == 0, done.stderr
        assert "replayed 1 of 1" in done.stdout
        for herid in RECEIVERS:
            assert len(rabbit.take(f"{herid}_async", 1)) == 1
        trail = cli_json(fixed, "audit")
        assert trail[0]["operator"] == f"{getpass.getuser()} (ops-kari)"
        assert trail[0]["reason"] == "tildelingskontoret registrert"
        assert trail[0]["action"] == "replay-event"

        # a sent message goes out again with the same MsgId …
        fastlege = next(r for r in cli_json(fixed, "messages", "list") if r["to_herid"] == 8100901)
        assert cli(fixed, "replay", fastlege["msg_id"], "--reason", "fastlege ba om ny kopi").returncode == 0
        again = rabbit.take("8100901_async", 1)[0]
        assert again.properties.message_id == fastlege["msg_id"]
        # … or, asked for, in a new conversation with a new MsgId
        new = cli(fixed, "replay", fastlege["msg_id"], "--new-conversation", "--reason", "ny samtale")
        assert new.returncode == 0, new.stderr
        fresh = rabbit.take("8100901_async", 1)[0]
        assert fresh.properties.message_id != fastlege["msg_id"]
        rows = {r["msg_id"]: r["status"] for r in cli_json(fixed, "messages", "list", "--receiver", "8100901")}
        assert rows == {fastlege["msg_id"]: "superseded", fresh.properties.message_id: "sent"}
        assert [a["action"] for a in cli_json(fixed, "audit")][:2] == ["replay-message-new-conversation",
                                                                       "replay-message"]
    finally:
        assert g2.stop() == 0
