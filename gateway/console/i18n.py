"""The console's words in Bokmål (the default: the operators' own words) and English.

A plain table rather than gettext: a few hundred words, reviewed side by side, and a test checks that
both languages have every key."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("nb", "en")

WORDS: dict[str, dict[str, str]] = {
    "app_name": {"nb": "Pakkeforløp hjem – driftskonsoll", "en": "Pakkeforløp hjem – operations console"},
    "skip": {"nb": "Hopp til innholdet", "en": "Skip to content"},
    "nav_overview": {"nb": "Oversikt", "en": "Overview"},
    "nav_search": {"nb": "Søk", "en": "Search"},
    "nav_audit": {"nb": "Revisjon", "en": "Audit trail"},
    "nav_pathway": {"nb": "Forløp", "en": "Pathways"},
    "pathway_title": {"nb": "Forløp: hvem skal ha neste samhandlingspunkt", "en": "Pathways: who is due next"},
    "pathway_intro": {"nb": "Pasienter vises med de første tegnene av sin pseudonyme nøkkel, aldri med navn eller "
                               "fødselsnummer. Fristene er anbefalinger, ikke forløpstider.",
                      "en": "Patients are shown by the start of their pseudonymous key, never by name or number. "
                            "The windows are recommendations, not deadlines."},
    "due_soon": {"nb": "Snart aktuell", "en": "Due soon"},
    "due_overdue": {"nb": "Forfalt", "en": "Overdue"},
    "ask_again": {"nb": "Spør igjen", "en": "Ask again"},
    "coverage_title": {"nb": "Kontaktpunkter som mangler eller ikke svarer", "en": "Contact points missing or silent"},
    "patient": {"nb": "Pasient", "en": "Patient"},
    "window": {"nb": "Vindu", "en": "Window"},
    "days_left": {"nb": "Dager igjen", "en": "Days left"},
    "role": {"nb": "Rolle", "en": "Role"},
    "problems": {"nb": "Problem", "en": "Problems"},
    "none_found": {"nb": "Ingen.", "en": "None."},
    "signed_in_as": {"nb": "Innlogget som", "en": "Signed in as"},
    "sign_in": {"nb": "Logg inn", "en": "Sign in"},
    "sign_out": {"nb": "Logg ut", "en": "Sign out"},
    "username": {"nb": "Brukernavn", "en": "User name"},
    "password": {"nb": "Passord", "en": "Password"},
    "signin_bad": {"nb": "Feil brukernavn eller passord.", "en": "Wrong user name or password."},
    "signin_locked": {"nb": "For mange mislykkede forsøk. Prøv igjen om 15 minutter, eller be en administrator "
                               "om nytt passord.",
                      "en": "Too many failed attempts. Try again in 15 minutes, or ask an administrator for a new "
                            "password."},
    "signed_out_idle": {"nb": "Du ble logget ut etter en periode uten aktivitet.",
                        "en": "You were signed out after a period of inactivity."},
    "csrf_refused": {"nb": "Skjemaet kunne ikke kontrolleres (utløpt eller forfalsket). Last siden på nytt og prøv "
                              "igjen.",
                     "en": "The form could not be verified (expired or forged). Reload the page and try again."},
    "forbidden": {"nb": "Du har ikke tilgang til dette. Handlinger krever rollen drift.",
                  "en": "You may not do this. Actions need the role drift."},
    "not_found": {"nb": "Fant ikke det du lette etter.", "en": "Not found."},
    "language": {"nb": "Språk", "en": "Language"},
    # Oversikt
    "last_hour": {"nb": "Siste time", "en": "Last hour"},
    "last_day": {"nb": "Siste døgn", "en": "Last day"},
    "last_week": {"nb": "Siste uke", "en": "Last week"},
    "events": {"nb": "Hendelser", "en": "Events"},
    "messages": {"nb": "Meldinger", "en": "Messages"},
    "events_by_state": {"nb": "Hendelser etter tilstand", "en": "Events by state"},
    "messages_by_state": {"nb": "Meldinger etter tilstand", "en": "Messages by state"},
    "parked_by_reason": {"nb": "Parkerte hendelser etter årsakskode", "en": "Parked events by reason code"},
    "none_parked": {"nb": "Ingen parkerte hendelser.", "en": "No parked events."},
    "apprec_problems": {"nb": "Applikasjonskvitteringer som mangler eller er avvist",
                        "en": "AppRecs overdue or rejected"},
    "none_apprec_problems": {"nb": "Ingen forsinkede eller avviste kvitteringer.",
                             "en": "No overdue or rejected receipts."},
    "queues": {"nb": "Køer", "en": "Queues"},
    "queue": {"nb": "Kø", "en": "Queue"},
    "waiting": {"nb": "Ventende", "en": "Waiting"},
    "broker_down": {"nb": "Meldingsbrokeren (RabbitMQ) svarer ikke – kødybder er ukjent.",
                    "en": "The broker (RabbitMQ) does not answer – queue depths are unknown."},
    "last_event": {"nb": "Siste hendelse mottatt", "en": "Last event received"},
    "last_sent": {"nb": "Siste melding sendt", "en": "Last message sent"},
    "registry_age": {"nb": "Adresseregisteret oppdatert", "en": "Registry updated"},
    "never": {"nb": "aldri", "en": "never"},
    "ago": {"nb": "siden", "en": "ago"},
    "state": {"nb": "Tilstand", "en": "State"},
    "count": {"nb": "Antall", "en": "Count"},
    "newest": {"nb": "Nyeste", "en": "Newest"},
    "status_line": {"nb": "Driftsstatus", "en": "Status"},
    # states
    "st_received": {"nb": "mottatt", "en": "received"},
    "st_routed": {"nb": "rutet", "en": "routed"},
    "st_sent": {"nb": "sendt", "en": "sent"},
    "st_not_shared": {"nb": "ikke delt", "en": "not shared"},
    "st_declined": {"nb": "reservert", "en": "declined"},
    "st_parked": {"nb": "parkert", "en": "parked"},
    "st_built": {"nb": "bygget", "en": "built"},
    "st_acknowledged": {"nb": "kvittert OK", "en": "acknowledged"},
    "st_rejected": {"nb": "avvist", "en": "rejected"},
    "st_overdue": {"nb": "kvittering mangler", "en": "overdue"},
    "st_superseded": {"nb": "erstattet", "en": "superseded"},
    # Søk
    "search_title": {"nb": "Søk i hendelser og meldinger", "en": "Search events and messages"},
    "what": {"nb": "Søk i", "en": "Search in"},
    "any": {"nb": "(alle)", "en": "(any)"},
    "kommune": {"nb": "Kommunenummer", "en": "Kommune number"},
    "sp": {"nb": "Samhandlingspunkt", "en": "Samhandlingspunkt"},
    "receiver": {"nb": "Mottakers HER-id", "en": "Receiver HER-id"},
    "from_date": {"nb": "Fra dato", "en": "From date"},
    "to_date": {"nb": "Til og med dato", "en": "To date (inclusive)"},
    "key": {"nb": "Hendelses-id, løpenummer eller MsgId", "en": "Event id, number or MsgId"},
    "reason_code": {"nb": "Årsakskode", "en": "Reason code"},
    "search": {"nb": "Søk", "en": "Search"},
    "patient_search": {"nb": "Søk på pasient", "en": "Search by patient"},
    "fnr": {"nb": "Fødselsnummer (11 siffer)", "en": "Fødselsnummer (11 digits)"},
    "fnr_short": {"nb": "Fødselsnummer", "en": "Fødselsnummer"},
    "fnr_help": {"nb": "Sendes skjult (POST), havner aldri i adresselinjen, nettleserhistorikken eller loggen.",
                 "en": "Sent hidden (POST); never in the address bar, browser history or log."},
    "fnr_invalid": {"nb": "Fødselsnummeret må være 11 siffer.", "en": "The fødselsnummer must be 11 digits."},
    "showing": {"nb": "Viser {first}–{last} av {total}", "en": "Showing {first}–{last} of {total}"},
    "no_hits": {"nb": "Ingen treff.", "en": "No matches."},
    "previous": {"nb": "Forrige side", "en": "Previous page"},
    "next": {"nb": "Neste side", "en": "Next page"},
    "received_at": {"nb": "Mottatt", "en": "Received"},
    "created_at": {"nb": "Laget", "en": "Built"},
    "sent_at": {"nb": "Sendt", "en": "Sent"},
    "event": {"nb": "Hendelse", "en": "Event"},
    "message": {"nb": "Melding", "en": "Message"},
    "msg_type": {"nb": "Meldingstype", "en": "Message type"},
    "select": {"nb": "Velg", "en": "Select"},
    "select_row": {"nb": "Velg hendelse {ref}", "en": "Select event {ref}"},
    "select_msg": {"nb": "Velg melding {ref}", "en": "Select message {ref}"},
    "replay_selected": {"nb": "Spill av valgte på nytt …", "en": "Replay selected …"},
    # Detalj
    "event_detail": {"nb": "Hendelse {ref}", "en": "Event {ref}"},
    "message_detail": {"nb": "Melding {ref}", "en": "Message {ref}"},
    "history": {"nb": "Tilstandshistorikk", "en": "State history"},
    "at": {"nb": "Tidspunkt", "en": "Time"},
    "reason": {"nb": "Begrunnelse", "en": "Reason"},
    "routing": {"nb": "Ruting – hvem fikk meldingen og hvorfor", "en": "Routing – who received it and why"},
    "role_col": {"nb": "Mottakerrolle", "en": "Receiver role"},
    "why": {"nb": "Hvorfor", "en": "Why"},
    "no_messages": {"nb": "Ingen meldinger ble laget.", "en": "No messages were built."},
    "parked_reason": {"nb": "Hvorfor hendelsen er parkert", "en": "Why the event is parked"},
    "raw_body": {"nb": "Hendelsen slik den kom inn", "en": "The event as it arrived"},
    "apprec": {"nb": "Applikasjonskvittering (AppRec)", "en": "Application receipt (AppRec)"},
    "no_apprec": {"nb": "Ingen kvittering mottatt ennå.", "en": "No receipt yet."},
    "apprec_code": {"nb": "Kode", "en": "Code"},
    "apprec_text": {"nb": "Tekst", "en": "Text"},
    "apprec_detail": {"nb": "Detalj", "en": "Detail"},
    "xml": {"nb": "Meldingen (XML)", "en": "The message (XML)"},
    "attempts": {"nb": "Forsøk", "en": "Attempts"},
    "flags": {"nb": "Merknader", "en": "Flags"},
    "sender": {"nb": "Avsender (HER-id)", "en": "Sender (HER-id)"},
    "name": {"nb": "Navn", "en": "Name"},
    "event_id": {"nb": "Hendelses-id", "en": "Event id"},
    "unreadable": {"nb": "(kunne ikke leses)", "en": "(unreadable)"},
    # Handlinger
    "actions": {"nb": "Handlinger", "en": "Actions"},
    "replay": {"nb": "Spill av på nytt …", "en": "Replay …"},
    "replay_title": {"nb": "Spill av på nytt – prøvekjøring", "en": "Replay – dry run"},
    "replay_intro": {"nb": "Ingenting er endret ennå. Dette vil skje:", "en": "Nothing has changed yet. This will "
                                                                             "happen:"},
    "cannot_replay": {"nb": "Kan ikke spilles av", "en": "Cannot be replayed"},
    "new_conversation": {"nb": "Ny samtale (ny MsgId) i stedet for samme melding på nytt",
                         "en": "New conversation (new MsgId) instead of re-sending the same message"},
    "replay_reason": {"nb": "Begrunnelse (lagres i revisjonsloggen)", "en": "Reason (kept in the audit trail)"},
    "confirm": {"nb": "Jeg har kontrollert listen og vil spille av disse på nytt",
                "en": "I have checked the list and want to replay these"},
    "do_replay": {"nb": "Spill av på nytt", "en": "Replay"},
    "cancel": {"nb": "Avbryt", "en": "Cancel"},
    "reason_required": {"nb": "Skriv en begrunnelse og bekreft.", "en": "Give a reason and confirm."},
    "replay_done": {"nb": "Spilt av på nytt", "en": "Replayed"},
    "replay_failed": {"nb": "Feilet", "en": "Failed"},
    "nothing_selected": {"nb": "Ingenting valgt.", "en": "Nothing selected."},
    "reroute": {"nb": "Rut på nytt", "en": "Re-route"},
    "reroute_intro": {"nb": "Hendelsen rutes med dagens register og regler. + ny samtale (ny MsgId), − erstattes, "
                            "= uendret (røres ikke).",
                      "en": "The event is routed with today's registry and rules. + new conversation (new MsgId), "
                            "− superseded, = unchanged (left alone)."},
    "reroute_done": {"nb": "Rutet på nytt", "en": "Re-routed"},
    "reroute_none": {"nb": "Ingen forskjell: ingenting å gjøre.", "en": "No difference: nothing to do."},
    "do_reroute": {"nb": "Rut på nytt", "en": "Re-route"},
    "back_to_overview": {"nb": "Til oversikten", "en": "To the overview"},
    # Revisjon
    "audit_title": {"nb": "Revisjonslogg", "en": "Audit trail"},
    "operator": {"nb": "Bruker", "en": "Operator"},
    "action": {"nb": "Handling", "en": "Action"},
    "target": {"nb": "Gjelder", "en": "Target"},
    "detail": {"nb": "Detaljer", "en": "Detail"},
    "filter": {"nb": "Filtrer", "en": "Filter"},
}


def translator(lang: str) -> Callable[..., str]:
    """``t("key")`` or ``t("key", n=3)`` in ``lang``; an unknown key shows itself, so a gap is visible."""
    use = lang if lang in LANGUAGES else LANGUAGES[0]

    def t(key: str, **values: object) -> str:
        text = WORDS.get(key, {}).get(use, key)
        return text.format(**values) if values else text

    return t
