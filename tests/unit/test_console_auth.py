"""Sign-in for the web console: argon2 hashing, the lockout per user and the limit per address, CSRF tokens,
the session secret, and the same rules as the app enforces them (forged tokens, the read-only role, idle
sessions). SQLite and an in-memory publisher only: no server needed."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.console import auth
from gateway.console.app import create_app
from gateway.console.i18n import LANGUAGES, WORDS
from gateway.delivery.bus import MemoryPublisher
from gateway.settings import Settings
from gateway.store import SqlStore, open_store
from gateway.store.users import UserStore
from tests.factories import park_event, record_event

PASSWORD = "riktig hest batteri stift"


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return open_store(f"sqlite:///{tmp_path / 'console.sqlite3'}")


@pytest.fixture
def users(store: SqlStore) -> UserStore:
    found = UserStore(store.db)
    found.add("kari", "Kari Drift", "drift", auth.hash_password(PASSWORD))
    found.add("lars", "Lars Les", "lesetilgang", auth.hash_password(PASSWORD))
    return found


def test_passwords_are_argon2_hashed_and_verified() -> None:
    hashed = auth.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert auth.verify_password(hashed, PASSWORD)
    assert not auth.verify_password(hashed, PASSWORD + "x")
    assert not auth.verify_password("not a hash", PASSWORD)
    assert auth.hash_password(PASSWORD) != hashed  # salted
    assert not auth.needs_rehash(hashed)
    with pytest.raises(auth.WeakPassword):
        auth.hash_password("kort")


def test_a_user_is_locked_out_after_too_many_failures_and_a_new_password_lifts_it(users: UserStore) -> None:
    limiter = auth.RateLimiter(100)
    now = datetime.now(UTC)
    for _ in range(2):
        assert auth.sign_in(users, limiter, "kari", "feil", "10.0.0.1", 3, now).refusal == "bad"
    assert auth.sign_in(users, limiter, "kari", "feil", "10.0.0.2", 3, now).refusal == "locked"
    # the right password does not help while locked, from any address
    assert auth.sign_in(users, limiter, "kari", PASSWORD, "10.0.0.3", 3, now).refusal == "locked"
    later = now + auth.LOCKOUT + timedelta(seconds=1)
    assert auth.sign_in(users, limiter, "kari", PASSWORD, "10.0.0.3", 3, later).user is not None
    for _ in range(3):
        auth.sign_in(users, limiter, "lars", "feil", "10.0.0.4", 3, now)
    users.set_password("lars", auth.hash_password(PASSWORD + "2"))
    assert auth.sign_in(users, limiter, "lars", PASSWORD + "2", "10.0.0.4", 3, now).user is not None


def test_one_address_trying_many_names_is_limited() -> None:
    clock = [0.0]
    limiter = auth.RateLimiter(3, window=60, clock=lambda: clock[0])
    for _ in range(3):
        limiter.failed("10.0.0.9")
    assert limiter.blocked("10.0.0.9") and not limiter.blocked("10.0.0.8")
    clock[0] = 61.0
    assert not limiter.blocked("10.0.0.9")


def test_unknown_and_disabled_users_get_the_same_answer_as_a_wrong_password(users: UserStore) -> None:
    limiter = auth.RateLimiter(100)
    assert auth.sign_in(users, limiter, "ingen", PASSWORD, "10.0.0.1", 5).refusal == "bad"
    users.set_active("lars", False)
    assert auth.sign_in(users, limiter, "lars", PASSWORD, "10.0.0.1", 5).refusal == "bad"
    assert auth.sign_in(users, limiter, " KARI ", PASSWORD, "10.0.0.1", 5).user is not None


def test_csrf_tokens_compare_in_constant_time_and_refuse_anything_missing() -> None:
    token = auth.new_csrf_token()
    assert len(token) >= 40 and auth.csrf_ok(token, token)
    assert not auth.csrf_ok(token, token[:-1] + ("a" if token[-1] != "a" else "b"))
    assert not auth.csrf_ok(None, token) and not auth.csrf_ok(token, None) and not auth.csrf_ok("", "")


def test_the_session_secret_is_made_once_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret"
    first = auth.session_secret(path)
    assert auth.session_secret(path) == first and len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_both_languages_have_every_word() -> None:
    assert all(set(texts) == set(LANGUAGES) for texts in WORDS.values())


# --- the same rules through the app ---------------------------------------------------------------------------------

def _client(store: SqlStore, tmp_path: Path, **changes: object) -> TestClient:
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'console.sqlite3'}", broker_url="memory://",
                        console_secret_file=tmp_path / "secret", **changes)  # type: ignore[arg-type]
    return TestClient(create_app(settings, store=store, publisher_factory=MemoryPublisher))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _sign_in(client: TestClient, name: str) -> str:
    token = _csrf(client.get("/logg-inn").text)
    done = client.post("/logg-inn", data={"csrf": token, "username": name, "password": PASSWORD},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return _csrf(client.get("/").text)


def _parked(store: SqlStore) -> int:
    ref = record_event(store, b'{"event_id": "e1", "patient": {"kommunenummer": "4601"}}', "e1", None).ref
    park_event(store, ref, "INTERNAL_ERROR", "test")
    return ref


def test_pages_need_a_sign_in_and_a_form_without_a_valid_token_is_refused(store: SqlStore, users: UserStore,
                                                                           tmp_path: Path) -> None:
    client = _client(store, tmp_path)
    assert client.get("/", follow_redirects=False).headers["location"] == "/logg-inn"
    refused = client.post("/logg-inn", data={"csrf": "forged", "username": "kari", "password": PASSWORD})
    assert refused.status_code == 403
    token = _sign_in(client, "kari")
    ref = _parked(store)
    for forged in ("forged", ""):
        answer = client.post("/handlinger/spill-av/utfor",
                             data={"csrf": forged, "key": str(ref), "reason": "x", "confirm": "ja"})
        assert answer.status_code == 403
    assert not [r for r in store.audit_log() if r["action"] == "replay-event"]
    assert client.post("/handlinger/spill-av", data={"csrf": token, "key": str(ref)}).status_code == 200


def test_a_read_only_user_sees_no_replay_button_and_is_refused_the_post(store: SqlStore, users: UserStore,
                                                                        tmp_path: Path) -> None:
    client = _client(store, tmp_path)
    token = _sign_in(client, "lars")
    ref = _parked(store)
    page = client.get(f"/hendelser/{ref}").text
    assert "/handlinger/spill-av" not in page
    for path in ("/handlinger/spill-av", "/handlinger/spill-av/utfor"):
        answer = client.post(path, data={"csrf": token, "key": str(ref), "reason": "x", "confirm": "ja"})
        assert answer.status_code == 403
    assert store.event(str(ref))["status"] == "parked"  # type: ignore[index]


def test_a_replay_needs_a_reason_and_a_confirmation_and_is_audited_with_the_user(store: SqlStore, users: UserStore,
                                                                                 tmp_path: Path) -> None:
    client = _client(store, tmp_path)
    token = _sign_in(client, "kari")
    ref = _parked(store)
    missing = client.post("/handlinger/spill-av/utfor", data={"csrf": token, "key": str(ref), "reason": " "})
    assert missing.status_code == 400
    done = client.post("/handlinger/spill-av/utfor",
                       data={"csrf": token, "key": str(ref), "reason": "registeret er rettet", "confirm": "ja"})
    assert done.status_code == 200
    [entry] = [r for r in store.audit_log() if r["action"] == "replay-event"]
    assert entry["operator"] == "kari (konsoll)" and entry["reason"] == "registeret er rettet"


def test_an_idle_session_is_signed_out(store: SqlStore, users: UserStore, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(store, tmp_path, console_session_minutes=1.0)
    _sign_in(client, "kari")
    assert client.get("/", follow_redirects=False).status_code == 200
    real = datetime.now(UTC)

    class Later(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return real + timedelta(minutes=2)

    monkeypatch.setattr("gateway.console.web.datetime", Later)
    assert client.get("/", follow_redirects=False).headers["location"] == "/logg-inn"


def test_a_patient_search_is_a_post_and_the_number_stays_out_of_urls_and_the_audit(store: SqlStore, users: UserStore,
                                                                                     tmp_path: Path) -> None:
    client = _client(store, tmp_path)
    token = _sign_in(client, "kari")
    answer = client.post("/sok", data={"csrf": token, "fnr": "17856100030", "hva": "hendelser"})
    assert answer.status_code == 200 and "17856100030" not in str(answer.url)
    assert "Viser" in answer.text or "Ingen treff" in answer.text
    assert all("17856100030" not in str(v) for r in store.audit_log() for v in r.values())
    assert client.post("/sok", data={"csrf": token, "fnr": "123"}).status_code == 400
