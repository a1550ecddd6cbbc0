"""The field's cases end to end on a real RabbitMQ: the fixture events published with pika, `gateway
run` as a real process, the receivers' queues read with pika; then `gateway route explain`, `gateway
messages list --flag` and `gateway events list` against the store the gateway wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, GatewayProcess, Rabbit
from tests.factories import cli as run_cli
from tests.integration.test_end_to_end import EXPECTED, check_message, load, text_of

FIRST = "01-sp1-bergen-brystkreft.json"  # the first hospital, for the two-hospitals case
WISH = "Pasienten ønsker kontakt med kreftkoordinator."
# (fixture, receiver HER-id or None for all of the event's receivers) → text every such message holds
TEXTS: dict[str, list[tuple[int | None, str]]] = {
    "10-sp1-bodo-onsker-kreftkoordinator.json": [
        (None, WISH),
        (None, "Pasienten behandles også ved Kreftklinikken, St. Olavs hospital HF (HER-id 8100701)."),
        (8100302, "Til kreftkoordinator: pasienten ønsker kontakt"),
        (8100302, "Kommunen har ingen aktiv kreftkoordinator i adresseregisteret; derfor går meldingen til "
                  "Koordinerende enhet, Bodø kommune"),
    ],
    "11-sp2-bergen-individuell-plan.json": [
        (None, "Pasienten har behov for individuell plan og koordinator, og har samtykket til at kommunens "
               "koordinerende enhet varsles."),
        (8100102, "Til koordinerende enhet: behov for individuell plan og koordinator"),
    ],
    "12-sp1-bergen-barn.json": [
        (None, "Pasienten er et barn: 16 år på kartleggingsdatoen. Foresatt: Ola Prøvebarn (far), "
               "telefon +47 900 00 000."),
        (8100105, "Til barnekoordinator: barn med kreft"),
    ],
    "13-sp1-trondheim-takket-nei-med-samtykke.json": [
        (None, "Melding om at pasienten takket nei til behovskartlegging"),
        (None, "Pasienten kan spørres igjen senere, tidligst 01.12.2026."),
        (8100203, WISH),
    ],
    "15-sp1-bergen-to-sykehus.json": [
        (None, "Merk: pasienten fikk også behovskartlegging ved samhandlingspunkt 1 fra Kreftavdelingen, "
               "Haukeland universitetssjukehus (HER-id 8100601) 03.02.2026, kontaktperson Kari Nordmann, "
               "telefon +47 55 97 00 00."),
    ],
}
RULES = {  # what `gateway route explain` must name
    "10-sp1-bodo-onsker-kreftkoordinator.json": ("sp1-sp2-fra-sykehuset", ["onsker-kreftkoordinator"]),
    "11-sp2-bergen-individuell-plan.json": ("sp1-sp2-fra-sykehuset", ["individuell-plan"]),
    "12-sp1-bergen-barn.json": ("sp1-sp2-fra-sykehuset", ["barn-under-18"]),
    "13-sp1-trondheim-takket-nei-med-samtykke.json": ("avslag-med-samtykke", ["onsker-kreftkoordinator"]),
    "14-sp2-trondheim-takket-nei-uten-samtykke.json": ("built in: declined without consent to inform the kommune",
                                                       []),
    "15-sp1-bergen-to-sykehus.json": ("sp1-sp2-fra-sykehuset", []),
}


def gateway_fixture(name: str) -> Path:
    return FIXTURES / "events" / name


def cli(env: dict[str, str], *args: str) -> Any:
    """The command's JSON output (every call here passes --json itself)."""
    done = run_cli(env, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_field_case_reaches_its_receivers_with_its_text(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    names = [FIRST, *RULES]
    for name in names:
        event = load(name)
        rabbit.publish_event(json.dumps(event).encode(), event["event_id"])
    wanted: dict[int, list[str]] = {}
    for name in names:
        for herid in EXPECTED[name]:
            wanted.setdefault(herid, []).append(name)
    got: dict[tuple[str, int], str] = {}
    for herid, events in wanted.items():
        deliveries = rabbit.take_for(herid, len(events))
        assert len(deliveries) == len(events), f"{herid}_async got {len(deliveries)} of {len(events)}"
        by_event = {d.properties.correlation_id: d for d in deliveries}
        for name in events:
            event = load(name)
            delivery = by_event[event["event_id"]]
            check_message(delivery, event, herid, EXPECTED[name][herid])  # official XSDs, headers, mandatory text
            got[(name, herid)] = text_of(delivery)
    for name, needles in TEXTS.items():
        for herid, needle in needles:
            for receiver in [herid] if herid else list(EXPECTED[name]):
                assert needle in got[(name, receiver)], f"{name} → {receiver}: missing {needle!r}"
    # texts that must not appear where the case does not apply
    assert not any("takket nei" in t for (n, _), t in got.items() if not n.startswith("13-"))
    assert not any("Merk: pasienten fikk også" in t for (n, _), t in got.items() if not n.startswith("15-"))
    assert rabbit.take("gateway.parked", 1, timeout=0.5) == []

    env = gateway.env
    for name, (rule, additions) in RULES.items():
        explained = cli(env, "route", "explain", str(gateway_fixture(name)), "--json")
        assert explained["rule"].startswith(rule), name
        assert [a.split(" ")[0] for a in explained["additions"]] == additions, name
        assert {r["herid"] for r in explained["receivers"]} == set(EXPECTED[name]), name
    # explained now, the first hospital's event would be flagged too: the window looks both ways
    assert cli(env, "route", "explain", str(gateway_fixture(FIRST)), "--json")["two_hospitals"]["herid"] == 8100701
    two = cli(env, "route", "explain", str(gateway_fixture("15-sp1-bergen-to-sykehus.json")), "--json")
    assert two["flags"] == ["two-hospitals"]
    assert two["two_hospitals"]["herid"] == 8100601
    assert two["two_hospitals"]["event_id"] == load(FIRST)["event_id"]

    flagged = cli(env, "messages", "list", "--flag", "two-hospitals", "--json")
    assert {m["event_id"] for m in flagged} == {load("15-sp1-bergen-to-sykehus.json")["event_id"]}
    assert {m["to_herid"] for m in flagged} == set(EXPECTED["15-sp1-bergen-to-sykehus.json"])
    assert [e["event_id"] for e in cli(env, "events", "list", "--flag", "two-hospitals", "--json")] == [
        load("15-sp1-bergen-to-sykehus.json")["event_id"]]
    declined = cli(env, "events", "list", "--status", "declined", "--json")
    assert [e["event_id"] for e in declined] == [load("14-sp2-trondheim-takket-nei-uten-samtykke.json")["event_id"]]
    assert gateway.stop() == 0
    assert '"event.flagged"' in gateway.log_text() and '"event.declined"' in gateway.log_text()


def test_child_in_a_kommune_without_barnekoordinator(rabbit: Rabbit, gateway: GatewayProcess) -> None:
    """Bodø has no barnekoordinator in the registry: its koordinerende enhet gets the message."""
    event = load("12-sp1-bergen-barn.json")
    event["event_id"] = "3f0c6a52-7b1e-4d2a-9c4e-000000001012"
    event["patient"]["kommunenummer"] = "1804"
    event["patient"]["fastlege_herid"] = 8101101
    rabbit.publish_event(json.dumps(event).encode(), event["event_id"])
    expected = {8100301: "dialogmelding-1.1", 8101101: "dialogmelding-1.1", 8100302: "dialogmelding-1.1"}
    for herid, fmt in expected.items():
        [delivery] = rabbit.take_for(herid, 1)
        check_message(delivery, event, herid, fmt)
        assert "Pasienten er et barn: 16 år" in text_of(delivery)
        if herid == 8100302:
            assert text_of(delivery).startswith("Til koordinerende enhet (kommunen har ingen barnekoordinator")
