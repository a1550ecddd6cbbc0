"""One failure policy for every consumer loop and periodic task of ``gateway run``.

Issue 12 found three ways out of the process that bypassed the event path's careful retry: an AppRec the
parser refused with an unexpected exception, a store outage while idle (the overdue check), and SQLite's write
lock during a GP-register import when a receipt arrived. Each killed ``gateway run``, and a poison message
killed it again after every restart. The rule, in one place so every loop follows it:

* **unreadable input** is parked (with a reason code, the body unchanged) and acked: it can never succeed, and
  holding it would block everything behind it;
* **transient trouble** (``StoreUnavailable``, ``PublishFailed``) waits with the same bounded, jittered
  backoff as the event path and tries again, for as long as it takes; the message stays unacked meanwhile,
  so nothing is lost if the process is stopped;
* **anything else** is a bug: it is logged (the exception's type and where it was raised, never its text,
  which may quote the input) and the input is parked with ``INTERNAL_ERROR``. Nothing escapes a loop.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway import metrics
from gateway.delivery.retry import CAP_S, backoff
from gateway.errors import PublishFailed, StoreUnavailable
from gateway.logs import log

T = TypeVar("T")
TRANSIENT: tuple[type[Exception], ...] = (StoreUnavailable, PublishFailed)


class Stopped(Exception):
    """Raised out of a retry when the process is asked to stop; the input stays unacked for the next start."""


def where(exc: BaseException) -> str:
    """``module.py:line`` of the innermost frame: enough to find a bug, without the exception's text (which
    may quote the input, and so a fødselsnummer or a name)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


def raw_body(message: Any) -> bytes:
    """The body exactly as it arrived. The consumers turn py-amqp's decoding off (``no_decoding``), so this is
    bytes; a str (a transport that decodes anyway) is encoded back without adding a BOM."""
    body = message.body
    if isinstance(body, str):
        encoding = (message.content_encoding or "utf-8").lower().replace("_", "-")
        encoding = {"utf-16": "utf-16-le", "utf-32": "utf-32-le"}.get(encoding, encoding)  # no BOM added
        try:
            body = body.encode(encoding, errors="surrogateescape")
        except LookupError:
            body = body.encode("utf-8", errors="surrogateescape")
    return bytes(body)


def no_decoding(channel: Any) -> None:
    """py-amqp decodes a body that names a content_encoding into a str; encoding it back is not the same
    bytes (UTF-16 gains a BOM), and a parked body must be byte for byte what arrived (issue 12, point 7)."""
    if hasattr(channel, "auto_decode"):
        channel.auto_decode = False


@dataclass
class FailurePolicy:
    """Backoff and waiting shared by the batcher, the receipt consumer and the periodic tasks.

    ``keepalive`` is called while waiting (the AMQP heartbeat, so the broker does not drop a connection whose
    consumer is waiting out a store outage); ``should_stop`` ends a wait early for a clean SIGTERM."""

    cap: float = CAP_S
    keepalive: Callable[[], None] | None = None
    should_stop: Callable[[], bool] = field(default=lambda: False)

    def pause(self, attempt: int) -> float:
        return backoff(attempt, cap=self.cap)

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.should_stop():
            if self.keepalive:
                try:
                    self.keepalive()
                except Exception as exc:  # a dead connection: kombu reconnects after we return
                    log.warning("broker.keepalive_failed", error_type=type(exc).__name__)
                    return
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    def retry(self, what: str, work: Callable[[], T], **fields: Any) -> T:
        """``work()`` until it succeeds; transient trouble waits (logged once per try). Raises ``Stopped`` when
        the process is asked to stop; any other exception goes to the caller."""
        attempt = 0
        while True:
            try:
                return work()
            except TRANSIENT as exc:
                pause = self.pause(attempt)
                metrics.RETRIES.labels(type(exc).__name__).inc()
                log.error(f"{what}.deferred", error_type=type(exc).__name__, attempt=attempt + 1,
                          retry_in_s=round(pause, 2), **fields)
                if self.should_stop():
                    raise Stopped from None
                self.wait(pause)
                if self.should_stop():
                    raise Stopped from None
                attempt += 1


class More(int):
    """What a periodic task returns (a count, as before) when it stopped at its batch limit with more waiting:
    it runs again after ``Periodic.behind`` instead of its interval, so a backlog drains in small passes
    between the consumer's batches instead of one long pass that holds every event up."""


@dataclass
class Periodic:
    """A task the consumer loop runs every ``interval`` seconds (the overdue check). A transient failure moves
    the next run to the backoff instead of the interval; any other failure is logged and the task runs again
    at its next interval. Neither blocks the loop or leaves it. A task that returns ``More`` runs again after
    ``behind`` seconds."""

    interval: float
    task: Callable[[], object]
    name: str = "periodic"
    next_at: float = 0.0
    failures: int = 0
    behind: float = 0.02

    def run_if_due(self, policy: FailurePolicy, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self.next_at:
            return
        try:
            result = self.task()
        except TRANSIENT as exc:
            pause = policy.pause(self.failures)
            self.failures += 1
            self.next_at = now + pause
            log.error(f"{self.name}.deferred", error_type=type(exc).__name__, attempt=self.failures,
                      retry_in_s=round(pause, 2))
            return
        except Exception as exc:
            log.error(f"{self.name}.internal_error", error_type=type(exc).__name__, where=where(exc))
            result = None
        self.failures = 0
        self.next_at = now + (min(self.behind, self.interval) if isinstance(result, More) else self.interval)


def guard_message(policy: FailurePolicy, what: str, handle: Callable[[], object],
                  park_internal: Callable[[str], None], ack: Callable[[], None]) -> None:
    """Handle one consumed message under the policy: ``handle`` parks what it cannot read itself; transient
    trouble is retried; a bug parks the message through ``park_internal(error_type)``. Acks only when the
    message is done; when stopped mid-retry it stays unacked and the broker delivers it again."""
    try:
        try:
            policy.retry(what, handle)
        except Stopped:
            raise
        except Exception as exc:
            error_type = type(exc).__name__
            log.error(f"{what}.internal_error", error_type=error_type, where=where(exc))
            policy.retry(what, lambda: park_internal(error_type))
    except Stopped:
        log.info(f"{what}.left_unacked", why="stopping")
        return
    ack()
