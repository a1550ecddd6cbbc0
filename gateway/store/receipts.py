"""The store's side of AppRec tracking: a receipt recorded once and matched to the message it answers, and
messages without a receipt by the deadline marked overdue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.store.db import Database, Tx
from gateway.store.events import now_utc, transition


class ReceiptStore:
    db: Database

    def record_apprec(self, apprec_id: str, original_msg_id: str, status: str, errors: list[dict[str, Any]],
                      sender_herids: Sequence[str] = (), receiver_herids: Sequence[str] = ()) -> str | None:
        """Correlate a receipt with the message it answers and record it, once. Returns what happened:

        - ``acknowledged`` / ``rejected``: the message was ``sent`` or ``overdue`` and takes the final status;
        - ``late``: the message already has a final status (acknowledged, rejected, superseded): the receipt
          goes into its history but does not flip it (rejected → acknowledged would wipe the errors);
        - ``duplicate``: a receipt with this AppRec Id was recorded before; nothing changes;
        - ``wrong_party``: the receipt's Sender is not the receiver the message went to, or its Receiver not
          the message's sender (one receiver must not mark another's message); the caller parks it;
        - None: no message of ours has that MsgId; the caller parks it.

        ``OriginalMsgId`` matches case-insensitively: our MsgIds are lower-case UUIDs, and receivers echo
        them as they like (the helsenorge sample uses upper case). ``sender_herids`` / ``receiver_herids``
        are every HER-id in the receipt's Sender / Receiver (institution, department, person)."""
        msg_id = original_msg_id.strip().lower()
        errors_json = json.dumps(errors, ensure_ascii=False)

        def work(tx: Tx) -> str | None:
            def record(outcome: str | None, matched: bool) -> None:
                tx.execute("INSERT INTO apprecs(apprec_id, original_msg_id, status, errors, received_at, matched, "
                           "outcome, sender_herids, receiver_herids) VALUES (?,?,?,?,?,?,?,?,?)",
                           (apprec_id, original_msg_id, status, errors_json, now_utc(), 1 if matched else 0,
                            outcome or "unknown_original", ",".join(sender_herids), ",".join(receiver_herids)))

            if apprec_id and tx.one("SELECT 1 AS x FROM apprecs WHERE apprec_id = ? AND outcome IS NOT NULL",
                                    (apprec_id,)):
                transition(tx, "message", msg_id, "duplicate", f"apprec {status}", f"AppRec {apprec_id} again")
                return "duplicate"
            row = tx.one("SELECT status, from_herid, to_herid FROM messages WHERE msg_id = ?", (msg_id,))
            if row is None:
                record(None, False)
                return None
            if str(row["to_herid"]) not in sender_herids or str(row["from_herid"]) not in receiver_herids:
                record("wrong_party", False)
                return "wrong_party"
            if row["status"] not in ("sent", "overdue"):
                record("late", True)
                codes = ", ".join(f"{e['code']} {e['text']}" for e in errors)
                transition(tx, "message", msg_id, row["status"], f"apprec {status}",
                           f"late receipt {apprec_id} not applied: already {row['status']}"
                           + (f" ({codes})" if codes else ""))
                return "late"
            new_status = "rejected" if status == "2" else "acknowledged"
            record(new_status, True)
            tx.execute("UPDATE messages SET status=?, apprec_status=?, apprec_errors=?, answered_at=? "
                       "WHERE msg_id=?", (new_status, status, errors_json, now_utc(), msg_id))
            transition(tx, "message", msg_id, new_status, f"apprec {status}",
                       ", ".join(f"{e['code']} {e['text']}" for e in errors) or None)
            return new_status

        return self.db.transaction(work)

    def mark_overdue(self, sent_before: datetime) -> list[dict[str, Any]]:
        """Sent messages without a receipt since before the deadline become overdue, once each."""
        cutoff = sent_before.astimezone(UTC).isoformat(timespec="milliseconds")

        def work(tx: Tx) -> list[dict[str, Any]]:
            rows = tx.all("SELECT msg_id, event_ref, to_herid, sent_at FROM messages "
                          "WHERE status='sent' AND sent_at < ?", (cutoff,))
            now = now_utc()
            for r in rows:
                tx.execute("UPDATE messages SET status='overdue', overdue_at=? WHERE msg_id=?",
                              (now, r["msg_id"]))
                transition(tx, "message", r["msg_id"], "overdue", None, f"no AppRec since {r['sent_at']}")
            return rows

        return self.db.transaction(work)
