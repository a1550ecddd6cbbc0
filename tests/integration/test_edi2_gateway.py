"""``gateway run`` with both transports: RabbitMQ for the AMQP receivers and the Meldingstjener stand-in (its own
process, over HTTP, every request checked against the API description) for the EDI 2.0 ones. A mixed batch;
kill -9 of the gateway while a POST is in flight; the stand-in down for minutes; a rejected AppRec through the
API. Nothing lost, and no receiver ever sees one MsgId with two contents."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import httpx

from tests.conftest import EDI, FIXTURES, SERVED, Meldingstjener, Rabbit
from tests.integration.test_faults import sqlite_rows

REJECTING = 8101002  # told to answer Avvist E35 through the API in the tests that need it


def reject_at(m: Meldingstjener, herid: int) -> None:
    httpx.post(f"{m.base}/_standin/receivers", json={str(herid): "avvist:E35"}, timeout=5).raise_for_status()


def faults(m: Meldingstjener, **config: Any) -> None:
    httpx.post(f"{m.base}/_standin/faults", json=config, timeout=5).raise_for_status()


def state_now(m: Meldingstjener) -> dict[str, Any]:
    return dict(httpx.get(f"{m.base}/_standin/state", timeout=5).json())


def good_events() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted((FIXTURES / "events").glob("0*.json")) + sorted((FIXTURES / "events").glob("1*.json")):
        event = json.loads(path.read_bytes())
        out.append((event["event_id"], path.read_bytes()))
    return out


def messages(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    rows = sqlite_rows(env, "SELECT msg_id, to_herid, transport, status, xml, apprec_errors FROM messages")
    return {r["msg_id"]: dict(r) for r in rows}


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def edi_done(env: dict[str, str]) -> bool:
    rows = messages(env).values()
    edi = [r for r in rows if r["transport"] == "edi2"]
    return bool(edi) and all(r["status"] in ("acknowledged", "rejected") for r in edi)


def check_standin(standin: Meldingstjener, env: dict[str, str]) -> None:
    """Every EDI 2.0 message reached the stand-in, byte for byte as stored, and no MsgId with two contents."""
    state = state_now(standin)
    stored = {k: v for k, v in messages(env).items() if v["transport"] == "edi2"}
    posted = [m for m in state["messages"] if not m["is_app_rec"]]
    for msg_id, row in stored.items():
        copies = [m for m in posted if m["msg_id"] == msg_id]
        assert copies, f"{msg_id} never reached the Meldingstjener"
        assert {m["sha256"] for m in copies} == {hashlib.sha256(bytes(row["xml"])).hexdigest()}
    assert state["conflicts"] == [] or state["conflicts"] == {}, "one MsgId with two contents"


def test_mixed_batch_reaches_both_transports_and_receipts_come_back(
        rabbit: Rabbit, gateway_env: dict[str, str], meldingstjener: Meldingstjener, spawn: Any) -> None:
    reject_at(meldingstjener, REJECTING)
    g = spawn(gateway_env, "g.log")
    g.start(rabbit)
    for event_id, body in good_events():
        rabbit.publish_event(body, event_id)
    wait_for(lambda: edi_done(gateway_env), 90, "EDI 2.0 receipts")
    stored = messages(gateway_env)
    edi = {m["to_herid"] for m in stored.values() if m["transport"] == "edi2"}
    assert edi and edi <= EDI
    amqp = [m for m in stored.values() if m["transport"] == "amqp"]
    assert amqp, "the AMQP receivers are in the same batch"
    for m in amqp:
        assert m["to_herid"] not in EDI
        assert rabbit.take_for(m["to_herid"], 1), f"AMQP receiver {m['to_herid']} got nothing"
    rejected = [m for m in stored.values() if m["to_herid"] == REJECTING]
    assert rejected and all(m["status"] == "rejected" and "E35" in (m["apprec_errors"] or "") for m in rejected)
    assert all(m["status"] == "acknowledged" for m in stored.values()
               if m["transport"] == "edi2" and m["to_herid"] != REJECTING)
    check_standin(meldingstjener, gateway_env)
    assert g.stop() == 0
    assert "eyJ" not in g.log_text(), "no token, assertion or DPoP proof (a JWT) in the log"


def test_kill_9_while_a_post_is_in_flight_sends_the_same_bytes_again(
        rabbit: Rabbit, gateway_env: dict[str, str], meldingstjener: Meldingstjener, spawn: Any) -> None:
    # The POST lands, then the answer takes 3 s: the gateway is killed before it can record the API id.
    faults(meldingstjener, rules=[{"status": 503, "method": "POST", "path": "/Messages", "times": 1,
                           "after_processing": True, "delay": 3.0}])
    g = spawn(gateway_env, "g.log")
    g.start(rabbit)
    trondheim = (FIXTURES / "events" / "02-sp2-trondheim-lungekreft.json").read_bytes()  # its fastlege reads EDI
    rabbit.publish_event(trondheim, json.loads(trondheim)["event_id"])
    wait_for(lambda: state_now(meldingstjener)["counters"].get("posts", 0) >= 1, 30, "the first POST")
    assert g.proc is not None
    g.proc.kill()
    g.proc.wait()
    g.start(rabbit)
    wait_for(lambda: edi_done(gateway_env), 60, "the message to be sent again and acknowledged")
    state = state_now(meldingstjener)
    posted = [m for m in state["messages"] if not m["is_app_rec"]]
    assert len(posted) >= 2, "the crash made the gateway post again"
    check_standin(meldingstjener, gateway_env)
    assert g.stop() == 0


def test_the_meldingstjener_down_for_minutes(rabbit: Rabbit, gateway_env: dict[str, str],
                                              meldingstjener: Meldingstjener, spawn: Any) -> None:
    g = spawn(gateway_env, "g.log")
    g.start(rabbit)
    meldingstjener.stop()
    for event_id, body in good_events():
        rabbit.publish_event(body, event_id)
    wait_for(lambda: any(m["transport"] == "edi2" for m in messages(gateway_env).values()), 30, "EDI 2.0 messages")
    time.sleep(120)  # two minutes without the Meldingstjener: the outbox waits with its bounded backoff
    assert g.proc is not None and g.proc.poll() is None, "the gateway waits, it does not exit"
    waiting = [m for m in messages(gateway_env).values() if m["transport"] == "edi2"]
    assert waiting and all(m["status"] == "built" for m in waiting)
    assert all(m["status"] == "sent" for m in messages(gateway_env).values() if m["transport"] == "amqp"
               and m["to_herid"] not in SERVED), "AMQP receivers are not held up by the EDI 2.0 outage"
    meldingstjener.start()
    wait_for(lambda: edi_done(gateway_env), 90, "the backlog after the outage")
    check_standin(meldingstjener, gateway_env)
    assert g.stop() == 0
    assert '"edi2.deferred"' in g.log_text()
