"""Meldingstjener client against the stand-in (in process): sending, following up, receiving, errors, faults."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from lxml import etree

from gateway.delivery.edi2.helseid import HelseIdClient
from gateway.delivery.edi2.msh import DocumentMismatch, Locked, MshClient, Rejected, Transient, msg_id_of
from gateway.standin import FailRule, Standin, StandinConfig
from gateway.standin.samples import dialogmelding
from gateway.standin.state import ClientRegistration
from tests.unit.edi2_world import (
    BASE,
    CLIENT_ID,
    OTHER_API_USER,
    RECEIVER_AVVIST,
    RECEIVER_OK,
    RECEIVER_SILENT,
    US,
    World,
    make_world,
)

APPREC_NS = "http://www.kith.no/xmlstds/apprec/2012-02-15"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def send(world: World, receiver: tuple[int, int]) -> tuple[str, str]:
    document = dialogmelding(sender_her_ids=US, receiver_her_ids=receiver)
    msg_id = msg_id_of(document)
    return world.msh.send(document, msg_id).api_id, msg_id


def test_round_trip_ok_apprec(world: World) -> None:
    api_id, msg_id = send(world, RECEIVER_OK)
    [status] = world.msh.get_status(api_id)
    assert (status.receiver_her_id, status.transport_delivery_state, status.app_rec_status) == (
        RECEIVER_OK[1], "Acknowledged", "Ok")
    [listed] = world.msh.get_messages([US[1]])
    assert listed.is_app_rec and listed.sender_her_id == RECEIVER_OK[1]
    apprec = etree.fromstring(world.msh.get_business_document(listed.id).content)
    assert apprec.findtext(f"{{{APPREC_NS}}}OriginalMsgId/{{{APPREC_NS}}}Id") == msg_id
    assert apprec.find(f"{{{APPREC_NS}}}Status").get("V") == "1"
    world.msh.mark_read(listed.id, US[1])
    assert world.msh.get_messages([US[1]]) == []
    # The stand-in's answers carry an undocumented field, as NHN's do; the client ignores it.
    assert "standinUndocumentedField" in world.http.get(f"/Messages/{listed.id}", headers=_headers(world, "GET",
                                                        f"/Messages/{listed.id}")).json()


def _headers(world: World, method: str, path: str) -> dict[str, str]:
    token = world.helseid.token()
    return {"api-version": "2", "nhn-source-system": "test", "Authorization": f"DPoP {token.value}",
            "DPoP": world.helseid.proof(method, BASE + path, token)}


def test_rejected_apprec_carries_codes(world: World) -> None:
    api_id, _ = send(world, RECEIVER_AVVIST)
    [info] = world.msh.get_apprec_info(api_id)
    assert info.app_rec_status == "Rejected"
    assert [(e.error_code, e.details) for e in info.errors] == [("E35", "Pasienten finnes ikke i mottakersystemet")]


def test_silent_receiver_leaves_apprec_open(world: World) -> None:
    api_id, _ = send(world, RECEIVER_SILENT)
    [status] = world.msh.get_status(api_id)
    assert status.app_rec_status is None
    assert world.msh.get_messages([US[1]]) == []


def test_bearer_refused_and_dpop_without_ath_refused(world: World) -> None:
    token = world.helseid.token()
    base = {"api-version": "2", "nhn-source-system": "test"}
    bearer = world.http.get("/Messages", params={"ReceiverHerIds": US[1]},
                            headers={**base, "Authorization": f"Bearer {token.value}",
                                     "DPoP": world.helseid.proof("GET", f"{BASE}/Messages", token)})
    assert bearer.status_code == 401
    assert "DPoP" in bearer.headers["WWW-Authenticate"]
    no_ath = world.helseid.dpop.proof("GET", f"{BASE}/Messages")
    answer = world.http.get("/Messages", params={"ReceiverHerIds": US[1]},
                            headers={**base, "Authorization": f"DPoP {token.value}", "DPoP": no_ath})
    assert answer.status_code == 401
    assert "ath" in answer.json()["error"]


def test_replayed_api_proof_refused(world: World) -> None:
    headers = _headers(world, "GET", "/Messages")
    assert world.http.get("/Messages", params={"ReceiverHerIds": US[1]}, headers=headers).status_code == 200
    again = world.http.get("/Messages", params={"ReceiverHerIds": US[1]}, headers=headers)
    assert again.status_code == 401
    assert "used before" in again.json()["error"]


def test_openapi_catches_malformed_requests(world: World) -> None:
    headers = _headers(world, "GET", "/Messages")
    del headers["nhn-source-system"]
    answer = world.http.get("/Messages", params={"ReceiverHerIds": US[1]}, headers=headers)
    assert answer.status_code == 400
    assert any("nhn-source-system" in e for e in answer.json()["validationErrors"])
    body = {"businessDocument": "PD94bWw+", "contentType": "application/xml"}  # contentTransferEncoding missing
    answer = world.http.post("/Messages", json=body, headers=_headers(world, "POST", "/Messages"))
    assert answer.status_code == 400
    assert any("contentTransferEncoding" in e for e in answer.json()["validationErrors"])
    assert world.standin.state.counters["openapi_request_errors"] == 2
    fetch = world.http.get("/Messages", params={"ReceiverHerIds": US[1], "MessagesToFetch": 500},
                           headers=_headers(world, "GET", "/Messages"))
    assert fetch.status_code == 400


def test_schema_invalid_and_doctype_documents_refused(world: World) -> None:
    document = dialogmelding(sender_her_ids=US, receiver_her_ids=RECEIVER_OK)
    broken = document.replace(b"<MIGversion>v1.2 2006-05-24</MIGversion>", b"")
    with pytest.raises(Rejected) as caught:
        world.msh.post_message(broken)
    assert caught.value.status == 400 and any("T02" in e for e in caught.value.validation_errors)
    hostile = document.replace(b"<MsgHead", b'<!DOCTYPE x [<!ENTITY e "boom">]>\n<MsgHead', 1)
    with pytest.raises(Rejected) as caught:
        world.msh.post_message(hostile)
    assert any("DOCTYPE" in e for e in caught.value.validation_errors)


def test_other_her_ids_forbidden(world: World) -> None:
    with pytest.raises(Rejected) as caught:
        world.msh.get_messages([RECEIVER_OK[1]])
    assert caught.value.status == 403 and str(RECEIVER_OK[1]) in caught.value.error
    not_ours = dialogmelding(sender_her_ids=RECEIVER_OK, receiver_her_ids=RECEIVER_AVVIST)
    with pytest.raises(Rejected) as caught:
        world.msh.post_message(not_ours)
    assert caught.value.status == 403


def test_locked_her_id_is_its_own_error(world: World) -> None:
    world.standin.set_faults({"locked": {str(US[1]): "some-other-client"}})
    with pytest.raises(Locked) as caught:
        send(world, RECEIVER_OK)
    assert caught.value.status == 423 and caught.value.error_code == 1210
    assert "another HelseID client" in str(caught.value)
    assert isinstance(caught.value, Rejected)


def test_server_errors_and_network_failures_are_transient(world: World) -> None:
    world.standin.set_faults({"rules": [{"status": 503, "method": "GET", "path": "/Messages", "times": 1},
                                        {"status": 500, "method": "GET", "path": "/Messages", "times": 1}]})
    for expected in (503, 500):
        with pytest.raises(Transient) as caught:
            world.msh.get_messages([US[1]])
        assert caught.value.status == expected
    assert world.msh.get_messages([US[1]]) == []

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for failure in (timeout, refused):
        world.msh._http = httpx.Client(transport=httpx.MockTransport(failure))
        with pytest.raises(Transient):
            world.msh.get_messages([US[1]])


def test_crash_between_post_and_bookkeeping_never_gives_two_contents(world: World) -> None:
    """The POST lands but its answer is lost; the retry sends the stored bytes again."""
    document = dialogmelding(sender_her_ids=US, receiver_her_ids=RECEIVER_OK)
    msg_id = msg_id_of(document)
    world.standin.config.faults.rules = [FailRule(status=504, method="POST", path="/Messages",
                                                  after_processing=True)]
    with pytest.raises(Transient):
        world.msh.send(document, msg_id)
    posted = world.msh.send(document, msg_id)
    assert posted.posted
    summary = world.standin.summary()
    assert summary["duplicates"] == {f"{RECEIVER_OK[1]}/{msg_id}": 2}  # the API has no idempotency key
    assert summary["conflicts"] == []
    # With the API id recorded, a restart asks for the status instead of posting a third time.
    again = world.msh.send(document, msg_id, known_api_id=posted.api_id, expected_sha256=posted.sha256)
    assert not again.posted and again.api_id == posted.api_id
    assert world.standin.state.counters["posts"] == 2
    # A rebuilt document under the same MsgId is refused before it leaves.
    rebuilt = dialogmelding(sender_her_ids=US, receiver_her_ids=RECEIVER_OK, msg_id=msg_id, text="Annen tekst.")
    with pytest.raises(DocumentMismatch):
        world.msh.send(rebuilt, msg_id, expected_sha256=posted.sha256)
    with pytest.raises(DocumentMismatch):
        world.msh.send(document, "not-the-msgid")


def test_expired_token_refetched_once(world: World) -> None:
    world.msh.get_messages([US[1]])
    world.standin.tokens.clear()  # the stand-in restarted or the token was revoked
    assert world.msh.get_messages([US[1]]) == []
    assert world.standin.state.counters["tokens_issued"] == 2


def test_api_nonce_retry(tmp_path: Path) -> None:
    world = make_world(tmp_path, require_api_nonce=True)
    assert world.msh.get_messages([US[1]]) == []
    assert world.msh._nonce is not None


def test_listing_faults_duplicates_and_gaps(world: World) -> None:
    send(world, RECEIVER_OK)
    send(world, RECEIVER_AVVIST)
    world.standin.set_faults({"duplicate_listings": 1, "listing_gaps": 1})
    listed = world.msh.get_messages([US[1]])
    assert len(listed) == 2 and listed[0].id == listed[1].id  # one left out (gap), the other listed twice
    assert len({m.id for m in world.msh.get_messages([US[1]])}) == 2


def test_receive_from_another_api_user_and_answer_with_apprec(world: World) -> None:
    other_key = Path(world.key_path)  # same key file, different client id and HER-ids
    world.standin.config.clients["other"] = ClientRegistration(
        "other", world.standin.config.clients[CLIENT_ID].jwks, frozenset(OTHER_API_USER))
    other = MshClient(base_url=BASE, source_system="other, 1", http=world.http, helseid=HelseIdClient(
        token_url=f"{BASE}/connect/token", client_id="other", key_path=other_key, http=world.http))
    document = dialogmelding(sender_her_ids=OTHER_API_USER, receiver_her_ids=US)
    api_id = other.post_message(document)
    [incoming] = world.msh.get_messages([US[1]])
    assert incoming.id == api_id and not incoming.is_app_rec
    assert world.msh.get_business_document(api_id).content == document
    world.msh.mark_read(api_id, US[1])
    apprec_id = world.msh.post_apprec(api_id, US[1], "Ok")
    assert other.get_status(api_id)[0].app_rec_status == "Ok"
    with pytest.raises(Rejected) as caught:  # an AppRec on an AppRec
        other.post_apprec(apprec_id, OTHER_API_USER[1], "Ok")
    assert (caught.value.status, caught.value.error_code) == (400, 1100)
    with pytest.raises(Rejected) as caught:  # an AppRec by someone who is not the receiver
        other.post_apprec(api_id, OTHER_API_USER[1], "Ok")
    assert (caught.value.status, caught.value.error_code) == (400, 1102)
    with pytest.raises(ValueError):
        world.msh.post_apprec(api_id, US[1], "Rejected")


def test_state_file_survives_restart(tmp_path: Path) -> None:
    world = make_world(tmp_path, state_file=tmp_path / "standin-state.json")
    api_id, msg_id = send(world, RECEIVER_OK)
    restarted = Standin(StandinConfig(state_file=tmp_path / "standin-state.json"))
    assert restarted.state.messages[api_id].msg_id == msg_id
    assert base64.b64decode(restarted.state.messages[api_id].document_b64).startswith(b"<?xml")
