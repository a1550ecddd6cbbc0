"""The web console in a real browser: Debian's Chromium (/usr/bin/chromium) driven by Playwright, never a
downloaded browser. ``gateway run`` and ``gateway console`` run as real processes on the real RabbitMQ and one
SQLite store.

What an operator does: sign in, find a parked event by its kommune, open it, replay it with a reason, see it
sent and in the audit trail. What must not happen: a lesetilgang user replaying (no button, and the POST is
refused), a forged CSRF token being accepted, a fødselsnummer from a patient search turning up in a URL, the
browser's history or a log line. The screenshots in docs/console/ are taken here."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.store import open_store
from tests.conftest import FIXTURES, ROOT, Rabbit
from tests.factories import park_event, record_event
from tests.integration.test_health_metrics import free_port, get

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The screenshots in docs/console/ are refreshed with GATEWAY_TEST_SCREENSHOTS=1; otherwise they go to the test's
# own folder, so an ordinary test run leaves the checkout as it was.
DOC_SHOTS = ROOT / "docs" / "console"
PASSWORD = "riktig hest batteri stift"
PATIENT_FNR = "17856100030"  # synthetic: fixture 01's patient
SEEDED_FNR = "01815500454"  # synthetic: fixture 04's patient


@dataclass
class World:
    base: str
    env: dict[str, str]
    parked_ref: int
    console_log: Path
    gateway_log: Path


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    done = subprocess.run([sys.executable, "-m", "gateway", *args], env=env, cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def world(gateway_env: dict[str, str], rabbit: Rabbit, spawn: Any, tmp_path: Path) -> Iterator[World]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test.sh does)")
    env = {**gateway_env, "GATEWAY_HEALTH_PORT": "0", "GATEWAY_CONSOLE_SECRET_FILE": str(tmp_path / "secret")}
    gateway = spawn(env)
    gateway.start(rabbit)
    # traffic through the real gateway: two sent, one parked for a kommune the registry does not know
    for name in ("01-sp1-bergen-brystkreft.json", "02-sp2-trondheim-lungekreft.json", "81-bad-ukjent-kommune.json"):
        body = (FIXTURES / "events" / name).read_bytes()
        rabbit.publish_event(body, json.loads(body)["event_id"])
    assert rabbit.take("gateway.parked", 1)
    # the event to replay: parked by a failure that has since gone away (a bug fixed, a registry corrected)
    event = json.loads((FIXTURES / "events" / "04-sp3-bergen-kommune.json").read_text(encoding="utf-8"))
    event["event_id"] = str(uuid.uuid4())
    store = open_store(env["GATEWAY_STORE_URL"])
    ref = record_event(store, json.dumps(event, ensure_ascii=False).encode(), event["event_id"], None).ref
    park_event(store, ref, "INTERNAL_ERROR", "unexpected KeyError while processing; see the log")
    store.close()
    _cli(env, "users", "add", "kari", "--role", "drift", "--name", "Kari Drift", "--password-stdin",
         stdin=PASSWORD + "\n")
    _cli(env, "users", "add", "lars", "--role", "lesetilgang", "--name", "Lars Lese", "--password-stdin",
         stdin=PASSWORD + "\n")
    port = free_port()
    console_log = tmp_path / "console.log"
    with console_log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "console", "--port", str(port)], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, console_log.read_text()
            try:
                if get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield World(base, env, ref, console_log, gateway.log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    SHOT_DIR[0] = tmp_path / "screenshots"
    profile = tmp_path / "chromium-profile"
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1366, "height": 768}, locale="nb-NO")
        context.profile_dir = profile
        yield context
        context.close()


def sign_in(page: Any, base: str, user: str) -> None:
    page.goto(base + "/")
    assert page.url.endswith("/logg-inn")
    page.get_by_label("Brukernavn").fill(user)
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_url(base + "/")


def shot(page: Any, name: str) -> None:
    folder = DOC_SHOTS if os.environ.get("GATEWAY_TEST_SCREENSHOTS") == "1" else SHOT_DIR[0]
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    assert (folder / f"{name}.png").stat().st_size > 10_000


SHOT_DIR: list[Path] = [Path("screenshots")]


def test_find_a_parked_event_by_kommune_replay_it_and_see_it_sent_and_audited(world: World, browser: Any) -> None:
    page = browser.new_page()
    sign_in(page, world.base, "kari")
    assert page.get_by_role("heading", name="Oversikt").is_visible()
    assert page.get_by_text("ROUTING_UNKNOWN_KOMMUNE").is_visible()
    shot(page, "oversikt")

    page.get_by_role("link", name="Søk").click()
    page.get_by_label("Kommunenummer").fill("4601")
    page.get_by_label("Tilstand").select_option("parked")
    page.get_by_role("button", name="Søk", exact=True).click()
    assert page.get_by_text("Viser 1–1 av 1").is_visible()
    shot(page, "sok")

    page.get_by_role("link", name=str(world.parked_ref), exact=True).click()
    assert page.get_by_text("INTERNAL_ERROR").first.is_visible()
    assert page.get_by_role("heading", name="Hendelsen slik den kom inn").is_visible()
    shot(page, "detalj-parkert")

    page.get_by_role("button", name="Spill av på nytt …").click()
    assert page.get_by_role("heading", name="Spill av på nytt – prøvekjøring").is_visible()
    assert page.get_by_text("publish event").is_visible()  # the dry run, before anything happens
    page.get_by_label("Begrunnelse").fill("Feilen er rettet i versjon 0.1.1")
    page.get_by_label("Jeg har kontrollert listen").check()
    shot(page, "handling")
    page.get_by_role("button", name="Spill av på nytt", exact=True).click()
    assert page.get_by_role("heading", name="Spilt av på nytt").is_visible()

    detail = f"{world.base}/hendelser/{world.parked_ref}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page.goto(detail)
        if page.locator("h1 .state").inner_text() == "sendt":
            break
        time.sleep(0.5)
    assert page.locator("h1 .state").inner_text() == "sendt", world.gateway_log.read_text()
    assert page.get_by_role("heading", name="Ruting – hvem fikk meldingen og hvorfor").is_visible()
    shot(page, "detalj-sendt")

    page.locator("a[href^='/meldinger/']").first.click()
    assert page.get_by_role("heading", name="Meldingen (XML)").is_visible()
    shot(page, "melding")

    page.goto(world.base + "/revisjon")
    page.get_by_label("Handling").select_option("replay-event")
    page.get_by_role("button", name="Filtrer").click()
    row = page.locator("tbody tr").first
    assert "kari (konsoll)" in row.inner_text() and "Feilen er rettet i versjon 0.1.1" in row.inner_text()
    shot(page, "revisjon")

    page.get_by_role("link", name="Forløp").click()  # the pathway page: due lists and missing contact points
    assert page.get_by_role("heading", name="Kontaktpunkter som mangler eller ikke svarer").is_visible()
    assert "1867" in page.locator("main").inner_text(), "Bø's missing contact points are listed"
    assert PATIENT_FNR not in page.content() and SEEDED_FNR not in page.content()
    shot(page, "forlop")

    page.goto(world.base + "/sprak/en?neste=/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    shot(page, "overview-en")
    page.goto(world.base + "/sprak/nb?neste=/")

    status, metrics_text = get(world.base + "/metrics")
    assert status == 200 and 'gateway_console_signins_total{result="ok"}' in metrics_text
    assert 'gateway_console_actions_total{action="replay"} 1.0' in metrics_text


def test_read_only_users_forged_tokens_and_patient_searches(world: World, browser: Any) -> None:
    seen_urls: list[str] = []
    page = browser.new_page()
    page.on("request", lambda request: seen_urls.append(request.url))

    # a forged CSRF token is refused, even from a signed-in drift user's browser
    sign_in(page, world.base, "kari")
    forged = browser.request.post(world.base + "/handlinger/spill-av/utfor", form={
        "csrf": "forged", "key": str(world.parked_ref), "reason": "angrep", "confirm": "ja"})
    assert forged.status == 403

    # a patient search: POST, the number never in a URL
    page.goto(world.base + "/sok")
    page.get_by_label("Fødselsnummer").fill(PATIENT_FNR)
    page.get_by_role("button", name="Søk på pasient").click()
    assert page.get_by_text("Viser 1–1 av 1").is_visible()
    assert PATIENT_FNR not in page.url
    page.get_by_role("link", name="Søk").click()
    page.go_back()  # the history entry is the form page, not a URL with the number
    page.get_by_role("button", name="Logg ut").click()

    # a lesetilgang user: no replay button, and the POST refused with a valid token
    sign_in(page, world.base, "lars")
    page.goto(f"{world.base}/hendelser/{world.parked_ref}")
    assert page.get_by_role("button", name="Spill av på nytt …").count() == 0
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    for path in ("/handlinger/spill-av", "/handlinger/spill-av/utfor"):
        refused = browser.request.post(world.base + path, form={
            "csrf": token, "key": str(world.parked_ref), "reason": "prøver", "confirm": "ja"})
        assert refused.status == 403
    page.goto(world.base + "/revisjon")
    assert "replay-event" not in page.content()
    shot(page, "lesetilgang-detalj")
    page.close()
    browser.close()

    # no trace of the number: the URLs the browser asked for, its history file, and both processes' logs
    assert seen_urls and not [u for u in seen_urls if PATIENT_FNR in u]
    history = browser.profile_dir / "Default" / "History"
    if history.exists():
        copy = history.with_name("History.copy")
        shutil.copy(history, copy)
        with sqlite3.connect(copy) as db:
            urls = [r[0] for r in db.execute("SELECT url FROM urls")]
        assert urls and not [u for u in urls if PATIENT_FNR in u]
    for log in (world.console_log, world.gateway_log):
        text = log.read_text(encoding="utf-8", errors="replace")
        assert PATIENT_FNR not in text and SEEDED_FNR not in text, log
