"""Sign-in for the web console: argon2 password hashes, lockout, a per-address rate limit and CSRF tokens.

Why these pieces: the console shows health data and can re-send it, so a guessed password must be slow to
find (argon2id, lockout after a few failures per user *and* per client address) and a page on another site
must not be able to make a signed-in operator's browser replay anything (a per-session CSRF token on every
form, besides the SameSite cookie). Answers never tell whether a user name exists.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import GatewayError
from gateway.store.users import User, UserStore

LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verified when the user name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class WeakPassword(GatewayError):
    """A password too short to be allowed."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters: re-hashed on the next sign-in."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


class RateLimiter:
    """At most ``max_failures`` failed sign-ins per key (the client address) within ``window`` seconds.
    In memory, per process: the per-user lockout in the store is what holds across replicas; this one
    stops one address trying many user names."""

    def __init__(self, max_failures: int, window: float = LOCKOUT.total_seconds(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.now = clock

    def _recent(self, key: str) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        cutoff = self.now() - self.window
        while found and found[0] < cutoff:
            found.popleft()
        return found

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key)) >= self.max_failures

    def failed(self, key: str) -> None:
        with self._lock:
            self._recent(key).append(self.now())

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the user, or why not (``bad``, ``locked``, ``limited``, ``disabled``).
    The page shows one text for all of the refusals but ``limited``/``locked``."""

    user: User | None
    refusal: str | None = None


def sign_in(users: UserStore, limiter: RateLimiter, username: str, password: str, client: str,
            max_failures: int, now: datetime | None = None) -> SignIn:
    now = now or datetime.now(UTC)
    name = username.strip().lower()
    if limiter.blocked(client):
        return SignIn(None, "limited")
    user = users.get(name) if name else None
    if user is None:
        verify_password(_DUMMY_HASH, password)
        limiter.failed(client)
        return SignIn(None, "bad")
    if user.locked_until and datetime.fromisoformat(user.locked_until) > now:
        limiter.failed(client)
        return SignIn(None, "locked")
    if not verify_password(user.password_hash, password):
        limiter.failed(client)
        locked = users.failed(user.username, max_failures, now + LOCKOUT)
        return SignIn(None, "locked" if locked else "bad")
    if not user.active:
        limiter.failed(client)
        return SignIn(None, "bad")
    limiter.succeeded(client)
    if needs_rehash(user.password_hash):
        users.set_password(user.username, _hasher.hash(password))
    users.signed_in(user.username)
    return SignIn(user)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: object, given: object) -> bool:
    """Constant-time comparison; a missing token on either side is a refusal."""
    if not isinstance(expected, str) or not isinstance(given, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def session_secret(path: Path) -> str:
    """The key that signs session cookies: read from ``path``, or made there (owner-only) on first start,
    so sessions survive a restart and replicas that share the file accept each other's cookies."""
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) < 32:
            raise GatewayError(f"the console's session secret in {path} is shorter than 32 characters; "
                               "delete the file to have a new one made")
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret
