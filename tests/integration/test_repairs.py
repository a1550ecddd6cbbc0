"""Issue 15: the operators' repairs, each as an operator types it, on a real RabbitMQ and PostgreSQL with the
gateway as a real process: a registry fix reaches the running gateway, a rejected message goes to the corrected
receiver by a re-route, routing parks retry themselves after an import, finding things, and retention."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.registry import load_register
from gateway.messages.apprec import AppRecError, Status, build_apprec
from gateway.store import open_store
from gateway.store.registry import write_gp_csv
from tests.conftest import FIXTURES, Rabbit, postgres_database
from tests.factories import cli, cli_json, mark_sent, melding, record_event, record_route
from tests.integration.test_operations import publish_apprec, wait_for

EVENT = FIXTURES / "events" / "01-sp1-bergen-brystkreft.json"  # Bergen SP1: 8100101 (kommune) + GP 8100901
FNR = "17856100030"  # the fixture's synthetic patient
REGISTER = json.loads((FIXTURES / "register.json").read_text(encoding="utf-8"))


def files(tmp_path: Path, *, without: int | None = None, gp_of_patient: int | None = None) -> tuple[Path, Path]:
    """The fixture registry as the two import files, optionally without one party or with the patient's GP moved."""
    parties = tmp_path / f"parties-{without}-{gp_of_patient}.json"
    parties.write_text(json.dumps(dict(REGISTER, parties=[p for p in REGISTER["parties"] if p["herid"] != without])),
                       encoding="utf-8")
    memory = load_register(FIXTURES / "register.json")
    rows = [a for v in memory.assignments.values() for a in v]
    if gp_of_patient is not None:
        rows = [a if a.fnr != FNR else type(a)(a.fnr, gp_of_patient, a.valid_from, a.valid_to, a.relation)
                for a in rows]
    gp = tmp_path / f"gp-{gp_of_patient}.csv"
    write_gp_csv(gp, rows)
    return parties, gp


@pytest.fixture
def store_env(gateway_env: dict[str, str]) -> Any:
    with postgres_database() as url:
        yield {**gateway_env, "GATEWAY_STORE_URL": url, "GATEWAY_REGISTRY": "store", "GATEWAY_OPERATOR": "ops-kari"}


def publish(rabbit: Rabbit) -> str:
    event_id: str = json.loads(EVENT.read_text(encoding="utf-8"))["event_id"]
    rabbit.publish_event(EVENT.read_bytes(), event_id)
    return event_id


def test_a_registry_import_reaches_the_running_gateway(rabbit: Rabbit, store_env: dict[str, str], tmp_path: Path,
                                                       spawn: Any) -> None:
    broken, gp = files(tmp_path, without=8100101)
    assert cli(store_env, "registry", "import", "--parties", str(broken), "--gp", str(gp)).returncode == 0
    g = spawn(store_env)
    g.start(rabbit)
    try:
        publish(rabbit)
        assert rabbit.take("gateway.parked", 1)[0].headers["x-reason-code"] == "ROUTING_NO_KOMMUNE_CONTACT_POINT"
        fixed, _ = files(tmp_path)
        done = cli(store_env, "registry", "import", "--parties", str(fixed), "--reason", "Etat for tjenestetildeling "
                   "registrert")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: "reload.switched" in g.log_text())
        assert "import 3" in g.log_text()  # the version it now routes with: the third import
        assert cli(store_env, "replay", "1", "--reason", "kommunen er registrert").returncode == 0
        assert len(rabbit.take("8100101_async", 1)) == 1 and len(rabbit.take("8100901_async", 1)) == 1
        assert cli_json(store_env, "events", "show", "1")["status"] == "sent"
        trail = cli_json(store_env, "audit")
        assert [(a["action"], a["outcome"]) for a in trail][:2] == [("replay-event", "done"),
                                                                   ("registry-import", "done")]
    finally:
        assert g.stop() == 0, g.log_text()


def test_broken_rules_are_refused_and_the_old_ones_kept(rabbit: Rabbit, gateway_env: dict[str, str],
                                                        tmp_path: Path, spawn: Any) -> None:
    routes = tmp_path / "routes"
    shutil.copytree(FIXTURES.parent / "routes", routes)
    env = {**gateway_env, "GATEWAY_ROUTES": str(routes)}
    g = spawn(env)
    g.start(rabbit)
    try:
        (routes / "default.yaml").write_text("rules: [this is not a rule", encoding="utf-8")
        wait_for(lambda: "reload.refused" in g.log_text())
        publish(rabbit)  # still routed with the old rules
        assert len(rabbit.take("8100101_async", 1)) == 1
    finally:
        assert g.stop() == 0, g.log_text()


def test_a_rejected_message_goes_to_the_corrected_gp_by_a_reroute(rabbit: Rabbit, store_env: dict[str, str],
                                                                  tmp_path: Path, spawn: Any) -> None:
    parties, gp = files(tmp_path)
    assert cli(store_env, "registry", "import", "--parties", str(parties), "--gp", str(gp)).returncode == 0
    g = spawn(store_env)
    g.start(rabbit)
    try:
        publish(rabbit)
        old_gp = rabbit.take("8100901_async", 1)[0]
        kommune = rabbit.take("8100101_async", 1)[0]
        publish_apprec(rabbit, build_apprec(old_gp.body, Status.AVVIST,
                                            (AppRecError("E35", "Pasienten finnes ikke i mottakersystemet"),)))
        rejected = wait_for(lambda: cli_json(store_env, "messages", "list", "--status", "rejected"))[0]
        assert rejected["apprec_status"] == "Avvist" and rejected["apprec_errors"][0]["code"] == "E35"

        # re-sending to the receiver who rejected it is refused unless meant
        refused = cli(store_env, "replay", rejected["msg_id"].upper(), "--reason", "prøver igjen")
        assert refused.returncode == 1 and "gateway reroute" in refused.stderr

        _, moved = files(tmp_path, gp_of_patient=8100902)
        assert cli(store_env, "registry", "import", "--gp", str(moved)).returncode == 0
        dry = cli(store_env, "reroute", "1", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "+ fastlege" in dry.stdout and "8100902" in dry.stdout and "- fastlege" in dry.stdout
        assert "= " in dry.stdout and "8100101" in dry.stdout
        assert cli_json(store_env, "audit") == [a for a in cli_json(store_env, "audit") if a["action"] != "reroute"]

        done = cli(store_env, "reroute", "1", "--reason", "fastlegebytte registrert")
        assert done.returncode == 0, done.stderr
        fresh = rabbit.take("8100902_async", 1)[0]
        assert fresh.properties.message_id not in (old_gp.properties.message_id, kommune.properties.message_id)
        statuses = {r["msg_id"]: r["status"] for r in cli_json(store_env, "messages", "list")}
        assert statuses == {old_gp.properties.message_id: "superseded", kommune.properties.message_id: "sent",
                            fresh.properties.message_id: "sent"}
        extra = []
        with contextlib.suppress(AssertionError):
            extra = rabbit.take("8100101_async", 1, timeout=1.0)
        assert extra == [], [(d.properties.message_id, d.body[:300]) for d in extra]
        entry = cli_json(store_env, "audit", "--action", "reroute")[0]
        assert entry["outcome"] == "done" and entry["reason"] == "fastlegebytte registrert"
        assert entry["operator"].endswith("(ops-kari)") and FNR not in json.dumps(entry)
        # a second re-route has nothing to do
        again = cli(store_env, "reroute", "1", "--reason", "sjekker igjen")
        assert again.returncode == 0 and "no difference" in again.stdout
    finally:
        assert g.stop() == 0, g.log_text()
    assert FNR not in g.log_text()


def test_routing_parks_retry_after_an_import_when_turned_on(rabbit: Rabbit, store_env: dict[str, str],
                                                            tmp_path: Path, spawn: Any) -> None:
    env = {**store_env, "GATEWAY_RETRY_PARKED_AFTER_IMPORT": "true"}
    broken, gp = files(tmp_path, without=8100101)
    assert cli(env, "registry", "import", "--parties", str(broken), "--gp", str(gp)).returncode == 0
    g = spawn(env)
    g.start(rabbit)
    try:
        publish(rabbit)
        rabbit.take("gateway.parked", 1)
        fixed, _ = files(tmp_path)
        assert cli(env, "registry", "import", "--parties", str(fixed)).returncode == 0
        assert len(rabbit.take("8100101_async", 1)) == 1
        system = [a for a in cli_json(env, "audit") if a["operator"] == "system"]
        assert system[0]["action"] == "replay-event" and "after registry import" in system[0]["reason"]
    finally:
        assert g.stop() == 0, g.log_text()


def test_finding_things(rabbit: Rabbit, store_env: dict[str, str], tmp_path: Path, spawn: Any) -> None:
    broken, gp = files(tmp_path, without=8100101)
    assert cli(store_env, "registry", "import", "--parties", str(broken), "--gp", str(gp)).returncode == 0
    g = spawn(store_env)
    g.start(rabbit)
    try:
        event_id = publish(rabbit)
        rabbit.take("gateway.parked", 1)
        wait_for(lambda: cli_json(store_env, "events", "list", "--status", "parked"))
    finally:
        assert g.stop() == 0, g.log_text()
    parked = cli_json(store_env, "events", "list", "--kommune", "4601")
    assert [(e["status"], e["kommunenummer"], e["samhandlingspunkt"]) for e in parked] == [("parked", "4601", 1)]
    assert cli_json(store_env, "events", "list", "--fnr", FNR)[0]["event_id"] == event_id
    assert cli_json(store_env, "events", "list", "--fnr", "02914800113") == []
    assert cli_json(store_env, "events", "show", event_id.upper())["id"] == 1
    listed = cli(store_env, "events", "list", "--since", "today")
    assert "showing 1–1 of 1 (newest first)" in listed.stderr and FNR not in listed.stdout + listed.stderr
    assert cli_json(store_env, "events", "list", "--until", "30.11.2000") == []
    bad = cli(store_env, "events", "list", "--since", "30.13.2026")
    assert bad.returncode == 2 and "not a time" in bad.stderr
    then = cli(store_env, "route", "explain", "--event", "1")
    assert then.returncode == 0, then.stderr
    assert "then: parked ROUTING_NO_KOMMUNE_CONTACT_POINT" in then.stdout and "today: still PARKED" in then.stdout
    assert FNR not in json.dumps(cli_json(store_env, "audit"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_retention_purges_finished_old_events(backend: str, gateway_env: dict[str, str], tmp_path: Path) -> None:
    def run(url: str) -> None:
        env = {**gateway_env, "GATEWAY_STORE_URL": url}
        store = open_store(url)
        for n, herid in enumerate((8100101, 8100901, 8100201)):
            stored = record_event(store, b'{"old": %d}' % n, f"e{n}", None)
            record_route(store, stored.ref, 1, "4601", [melding(f"e{n}", herid)])
            if n < 2:
                mark_sent(store, stored.ref, [melding(f"e{n}", herid).msg_id])
        store.db.transaction(lambda tx: tx.execute("UPDATE messages SET status='acknowledged' WHERE to_herid=?",
                                                   (8100101,)))
        store.db.transaction(lambda tx: tx.execute("UPDATE events SET received_at='2020-01-01T00:00:00.000+00:00'"))
        store.close()
        assert "keep everything" in cli(env, "retention", "--dry-run").stdout
        env["GATEWAY_RETENTION_DAYS"] = "365"
        dry = cli(env, "retention", "--dry-run")
        assert dry.returncode == 0 and "1 event(s) and 1 message(s)" in dry.stdout
        assert cli(env, "retention").returncode == 2  # no terminal: a script must say --yes
        archive = tmp_path / "archive.jsonl"
        done = cli(env, "retention", "--yes", "--archive", str(archive))
        assert done.returncode == 0 and "purged 1 event(s) and 1 message(s)" in done.stdout
        assert json.loads(archive.read_text(encoding="utf-8"))["messages"][0]["to_herid"] == 8100101
        assert sorted(e["event_id"] for e in cli_json(env, "events", "list")) == ["e1", "e2"]
        assert cli_json(env, "audit", "--action", "retention")[0]["outcome"] == "done"

    if backend == "sqlite":
        run(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    else:
        with postgres_database() as url:
            run(url)


def test_xml_only_writes_the_exact_bytes(rabbit: Rabbit, gateway_env: dict[str, str], spawn: Any) -> None:
    g = spawn(gateway_env)
    g.start(rabbit)
    try:
        publish(rabbit)
        sent = rabbit.take("8100901_async", 1)[0]
    finally:
        assert g.stop() == 0, g.log_text()
    shown = cli(gateway_env, "messages", "show", sent.properties.message_id.upper(), "--xml-only")
    assert shown.stdout.encode("utf-8") == sent.body
    time.sleep(0)
