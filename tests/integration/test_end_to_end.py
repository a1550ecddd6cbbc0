"""The whole path on a real RabbitMQ: events published with pika, `gateway run` as a real
process, the receivers' queues read with pika."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.messages.outbound import msg_id_for
from gateway.messages.validation import explain_with_xmlschema, validate_message
from tests.conftest import EDI, FIXTURES, SERVED, Delivery, GatewayProcess, Rabbit
from tests.factories import cli

NS = {"mh": "http://www.kith.no/xmlstds/msghead/2006-05-24", "dia": "http://www.kith.no/xmlstds/dialog/2013-01-23",
      "epj2": "http://www.kith.no/xmlstds/epj/epj2/2008-02-20"}
TYPES = {"dialogmelding-1.1": "DIALOG_HELSEFAGLIG", "plo-1.6": "HELSEOPPL_SOKNAD"}
REGISTER = json.loads((FIXTURES / "register.json").read_text(encoding="utf-8"))
PARTIES = {p["herid"]: p for p in REGISTER["parties"]}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "events" / name).read_text(encoding="utf-8"))


def good_events() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((FIXTURES / "events").glob("*.json")):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if path.name[:2].isdigit() and int(path.name[:2]) < 80:
            out.append((path.name, event))
    return out


D, P = "dialogmelding-1.1", "plo-1.6"
# Who each fixture event must reach (fixtures/README.md): written out by hand, independent of the code.
# Issue 13: one kommune contact point per rule (no PLO copy to saksbehandling; PLO only for an inpatient
# stay, which no fixture event has), NAV never. Messages to a hospital the gateway serves (GATEWAY_SERVED_HERIDS:
# 8100601, 8100701, 8100801) land on that party's queue, which the gateway reads: they are handed on to the
# hospital system on gateway.inbound (SERVED below).
EXPECTED: dict[str, dict[int, str]] = {
    "01-sp1-bergen-brystkreft.json": {8100101: D, 8100901: D},
    "02-sp2-trondheim-lungekreft.json": {8100203: D, 8101001: D},  # Trondheim: kreftkoordinator first
    "03-sp2-bodo-prostata-vikar.json": {8100301: D, 8101101: D},
    "04-sp3-bergen-kommune.json": {8100902: D, 8100601: D},
    "05-sp4-trondheim-kommune-vikar.json": {8101002: D, 8100701: D},
    "06-sp5-bodo-kommune.json": {8101101: D, 8100801: D},
    "07-sp1-hamar-skipper-nedlagt-enhet.json": {8100405: D, 8101201: D},
    "08-sp1-bergen-reservasjon.json": {},
    "09-sp2-bergen-ukjente-felt.json": {8100101: D, 8100902: D},
    # the field's cases
    "10-sp1-bodo-onsker-kreftkoordinator.json": {8100301: D, 8101101: D,
                                                 8100302: D},  # Bodø has no kreftkoordinator: koordinerende enhet
    "11-sp2-bergen-individuell-plan.json": {8100101: D, 8100901: D, 8100102: D},
    "12-sp1-bergen-barn.json": {8100101: D, 8100902: D, 8100105: D},
    "13-sp1-trondheim-takket-nei-med-samtykke.json": {8100201: D, 8100203: D},
    "14-sp2-trondheim-takket-nei-uten-samtykke.json": {},
    "15-sp1-bergen-to-sykehus.json": {8100101: D, 8100901: D},
}
BY_EVENT_ID = {json.loads((FIXTURES / "events" / name).read_text(encoding="utf-8"))["event_id"]: receivers
               for name, receivers in EXPECTED.items()}


def expected_receivers(event: dict[str, Any]) -> dict[int, str]:
    return BY_EVENT_ID[event["event_id"]]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_route_explain_names_the_expected_receivers(name: str, gateway_env: dict[str, str]) -> None:
    done = cli(gateway_env, "route", "explain", str(FIXTURES / "events" / name), "--json")
    assert done.returncode == 0, done.stderr
    explained = json.loads(done.stdout)
    assert {r["herid"]: r["format"] for r in explained["receivers"]} == EXPECTED[name]
    assert all(r["why"].startswith("rule ") for r in explained["receivers"])


def text_of(delivery: Delivery) -> str:
    root = etree.fromstring(delivery.body)
    found = root.find(".//dia:Notat/dia:TekstNotatInnhold", NS)
    if found is None:
        found = root.find(".//epj2:Journaltekst/epj2:Notat", NS)
    return "".join(found.itertext())


def check_message(delivery: Delivery, event: dict[str, Any], to_herid: int, fmt: str) -> None:
    validate_message(delivery.body)  # lxml, the official XSDs
    assert explain_with_xmlschema(delivery.body) == []  # and a second, independent validator
    p = delivery.properties
    root = etree.fromstring(delivery.body)
    assert root.find("mh:MsgInfo/mh:ConversationRef", NS) is None  # every fixture message starts a conversation
    assert p.message_id == root.findtext("mh:MsgInfo/mh:MsgId", namespaces=NS)
    assert root.find("mh:MsgInfo/mh:Type", NS).get("V") == TYPES[fmt]
    if not delivery.edi:  # an AMQP delivery also carries our properties; EDI 2.0 hands over the document only
        assert p.content_type == "application/xml"
        assert p.delivery_mode == 2
        assert p.correlation_id == event["event_id"]
        assert p.type == TYPES[fmt]
        assert delivery.headers["toHerId"] == str(to_herid)
        assert delivery.headers["fromHerId"] == str(event["sender"]["herid"])
        assert datetime.fromisoformat(delivery.headers["applicationTimeStamp"]).tzinfo is not None
    receiver_ids = {int(i) for i in root.xpath("mh:MsgInfo/mh:Receiver//mh:Ident/mh:Id/text()", namespaces=NS)}
    assert to_herid in receiver_ids
    assert root.findtext("mh:MsgInfo/mh:Patient/mh:Ident/mh:Id", namespaces=NS) == event["patient"]["fnr"]
    text = text_of(delivery)
    for needle in (event["sender"]["contact"]["name"], event["sender"]["contact"]["phone"],
                   event["diagnosis"]["icd10"], event["diagnosis"]["text"]):
        assert needle in text
    if event["assessment"].get("procedure_code"):
        assert "WMFG10" in text
    for topic in event["assessment"]["topics"]:
        if topic["need"] and topic.get("note"):
            assert topic["note"] in text


def test_every_fixture_event_reaches_exactly_its_receivers(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    events = good_events()
    assert len(events) >= 5
    assert {e["samhandlingspunkt"] for _, e in events} == {1, 2, 3, 4, 5}
    expected: dict[int, list[tuple[dict[str, Any], str]]] = {}
    for _, event in events:
        for herid, fmt in expected_receivers(event).items():
            expected.setdefault(herid, []).append((event, fmt))
        rabbit.publish_event(json.dumps(event).encode(), event["event_id"])
    for herid, wanted in expected.items():
        got = rabbit.take_for(herid, len(wanted))  # a served party's copy is handed on on gateway.inbound
        assert len(got) == len(wanted), f"{herid}_async got {len(got)} of {len(wanted)}"
        by_msg_id = {d.properties.message_id: d for d in got}  # the MsgId is derived from (event, receiver)
        for event, fmt in wanted:
            check_message(by_msg_id[msg_id_for(event["event_id"], herid)], event, herid, fmt)
    # nothing else arrived anywhere: every queue of the registry is now empty
    for herid in PARTIES:
        assert rabbit.take_for(herid, 1, timeout=0.2) == [], f"unexpected message for {herid}"
    assert rabbit.take("gateway.parked", 1, timeout=0.2) == []


def _mutations(good: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    def variant(change: Any) -> bytes:
        e = json.loads(json.dumps(good))
        e["event_id"] = f"00000000-0000-4000-8000-{len(seen):012d}"
        change(e)
        seen.append(e)
        return json.dumps(e).encode()

    seen: list[dict[str, Any]] = []
    fnr = good["patient"]["fnr"]
    bad_fnr = fnr[:10] + str((int(fnr[10]) + 1) % 10)
    return [
        ("not json", b"{this is not json", "EVENT_NOT_JSON"),
        ("missing diagnosis", variant(lambda e: e.pop("diagnosis")), "EVENT_SCHEMA_VIOLATION"),
        ("bad checksum", variant(lambda e: e["patient"].__setitem__("fnr", bad_fnr)), "EVENT_BAD_FODSELSNUMMER"),
        ("no WMFG10 at SP1", variant(lambda e: e["assessment"].__setitem__("procedure_code", None)),
         "EVENT_WMFG10_MISSING"),
        ("unknown kommune", variant(lambda e: e["patient"].__setitem__("kommunenummer", "9999")),
         "ROUTING_UNKNOWN_KOMMUNE"),
        # issue 13: a publisher cannot send as a HER-id the gateway does not serve
        ("unknown sender", variant(lambda e: e["sender"].__setitem__("herid", 1)), "EVENT_SENDER_NOT_SERVED"),
        ("a registered but not served sender", variant(lambda e: e["sender"].__setitem__("herid", 8100101)),
         "EVENT_SENDER_NOT_SERVED"),
    ]


def test_bad_events_are_parked_and_the_consumer_goes_on(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    name, good = next((n, e) for n, e in good_events() if e["samhandlingspunkt"] == 1
                      and not e["consent"]["objects_to_sharing"])
    bad = _mutations(good)
    for _, body, _ in bad:
        rabbit.publish_event(body)
    rabbit.publish_event(json.dumps(good).encode(), good["event_id"])
    parked = rabbit.take("gateway.parked", len(bad))
    assert [(d.body, d.headers["x-reason-code"]) for d in parked] == [(body, code) for _, body, code in bad]
    for d in parked:
        assert d.headers["x-reason"]
        # gateway.parked is a notification stream (the store is the truth): each copy expires, by default after
        # a week (GATEWAY_PARKED_TTL_HOURS, docs/decisions.md), so the queue cannot grow without end
        assert d.properties.expiration == str(168 * 3600 * 1000)
        assert good["patient"]["fnr"] not in d.headers["x-reason"]
        assert good["patient"]["family_name"] not in d.headers["x-reason"]
    for herid in expected_receivers(good):
        assert len(rabbit.take_for(herid, 1)) == 1, f"{name} did not reach {herid} after the bad events"
    assert gateway.proc is not None and gateway.proc.poll() is None


def test_redelivered_event_sends_no_second_message(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    _, good = next((n, e) for n, e in good_events() if e["samhandlingspunkt"] == 2
                   and not e["consent"]["objects_to_sharing"])
    rabbit.publish_event(json.dumps(good).encode(), good["event_id"])
    herid = sorted(h for h in expected_receivers(good) if h not in SERVED)[0]
    first = rabbit.take_for(herid, 1)  # by AMQP, or through the Meldingstjener for an EDI receiver
    rabbit.publish_event(json.dumps(good).encode(), good["event_id"])
    assert rabbit.take_for(herid, 1, timeout=2) == []
    assert len(first) == 1


def test_no_patient_data_in_any_log_line(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    events = good_events()
    for _, event in events:
        rabbit.publish_event(json.dumps(event).encode(), event["event_id"])
    for body in (m[1] for m in _mutations(events[0][1])):
        rabbit.publish_event(body)
    total = sum(len(expected_receivers(e)) for _, e in events)
    received = 0
    for herid in PARTIES:
        received += len(rabbit.take(f"{herid}_async", 50, timeout=0.5))
    received += len(rabbit.take("gateway.inbound", 50, timeout=0.5))  # to served parties: handed on
    for herid in EDI:  # to EDI receivers: through the Meldingstjener (the outbox needs a moment)
        received += len(rabbit.take_for(herid, 50, timeout=3))
    rabbit.take("gateway.parked", 7)
    assert gateway.stop() == 0
    log = gateway.log_text()
    decided = log.count('"event.sent"') + log.count('"event.routed"')  # routed: waiting for the EDI 2.0 outbox
    assert received >= total and decided >= len([e for _, e in events if expected_receivers(e)])
    secrets = set()
    for _, event in events:
        secrets |= {event["patient"]["fnr"], event["patient"]["given_name"], event["patient"]["family_name"]}
        if event["patient"].get("guardian"):
            secrets.add(event["patient"]["guardian"]["name"])
    leaked = sorted(s for s in secrets if s in log)
    assert leaked == [], f"patient data in the log: {len(leaked)} value(s)"
    assert not re.search(r"(?<!\d)\d{11}(?!\d)", log.replace("***********", ""))


def test_clean_shutdown_on_sigterm(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    assert gateway.stop() == 0
    assert '"gateway.stopped"' in gateway.log_text()


def test_gateway_refuses_to_start_on_a_missing_registry(gateway_env: dict[str, str], tmp_path: Path, spawn: Any,
                                                        rabbit: Rabbit) -> None:
    g = spawn({**gateway_env, "GATEWAY_REGISTRY": str(tmp_path / "nope.json")}, "g.log")
    with pytest.raises(AssertionError, match="exited with 1"):
        g.start(rabbit, timeout=20)
    assert "GATEWAY_REGISTRY" in g.log_text()


def test_event_with_a_content_encoding_is_delivered(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    """py-amqp hands such bodies over as text; the gateway must still see the bytes."""
    import pika

    _, good = good_events()[0]
    rabbit.channel.basic_publish("kartlegging", "kartlegging.completed", json.dumps(good).encode(),
                                 pika.BasicProperties(content_type="application/json", content_encoding="utf-8",
                                                      delivery_mode=2, message_id=good["event_id"]))
    for herid in expected_receivers(good):
        assert len(rabbit.take(f"{herid}_async", 1)) == 1
    assert gateway.proc is not None and gateway.proc.poll() is None


def test_gateway_refuses_to_start_on_a_broken_rule_set(gateway_env: dict[str, str], tmp_path: Path, spawn: Any,
                                                       rabbit: Rabbit) -> None:
    routes = tmp_path / "routes"
    (routes / "kommune").mkdir(parents=True)
    default = (FIXTURES.parent / "routes" / "default.yaml").read_text(encoding="utf-8")
    (routes / "default.yaml").write_text(default.replace("find: [forvaltningsenhet]", "find: [tildeling]"),
                                         encoding="utf-8")
    g = spawn({**gateway_env, "GATEWAY_ROUTES": str(routes)}, "broken-rules.log")
    with pytest.raises(AssertionError, match="exited with 1"):
        g.start(rabbit, timeout=20)
    # the error names the line of the receiver ("- role: …", the line above its find)
    line = default.splitlines().index("        find: [forvaltningsenhet]")
    assert f"default.yaml:{line}: unknown receiver 'tildeling'" in g.log_text()


def test_gateway_routes_from_the_registry_in_the_store(gateway_env: dict[str, str], tmp_path: Path, spawn: Any,
                                                       rabbit: Rabbit) -> None:
    from gateway.domain.registry import load_register
    from gateway.store.registry import write_gp_csv

    memory = load_register(FIXTURES / "register.json")
    gp = tmp_path / "gp.csv"
    write_gp_csv(gp, [a for rows in memory.assignments.values() for a in rows])
    env = {**gateway_env, "GATEWAY_REGISTRY": "store"}
    done = cli(env, "registry", "import", "--parties", str(FIXTURES / "register.json"), "--gp", str(gp))
    assert done.returncode == 0, done.stderr
    g = spawn(env, "store-registry.log")
    g.start(rabbit)
    name = "01-sp1-bergen-brystkreft.json"
    event = json.loads((FIXTURES / "events" / name).read_text(encoding="utf-8"))
    rabbit.publish_event(json.dumps(event).encode(), event["event_id"])
    for herid in EXPECTED[name]:
        assert len(rabbit.take(f"{herid}_async", 1)) == 1
    assert g.stop() == 0
