"""The console's users, kept in the same database as the events they look at: one place to back up, and a
disabled user or a lockout holds for every console replica at once.

Only SQL lives here; the password hashing (argon2) and the sign-in rules are in ``gateway.console.auth``,
so this module never sees a password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.errors import GatewayError
from gateway.store.db import Database, Tx
from gateway.store.events import now_utc

ROLES = ("lesetilgang", "drift")  # read; read and act (replay, re-route, import)


class UserError(GatewayError):
    """A user command that cannot be done (unknown user, a name taken, an unknown role)."""


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    password_hash: str
    active: bool
    failed_sign_ins: int = 0
    locked_until: str | None = None
    last_sign_in_at: str | None = None
    created_at: str = ""

    @property
    def may_act(self) -> bool:
        """Replay, re-route and imports change what receivers get: only 'drift' may."""
        return self.role == "drift"


def _user(row: dict[str, Any]) -> User:
    return User(row["username"], row["display_name"], row["role"], row["password_hash"], bool(row["active"]),
                row["failed_sign_ins"], row["locked_until"], row["last_sign_in_at"], row["created_at"])


class UserStore:
    """Add, change and find console users."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, username: str) -> User | None:
        rows = self.db.query("SELECT * FROM users WHERE username = ?", (username.strip().lower(),))
        return _user(rows[0]) if rows else None

    def list(self) -> list[User]:
        return [_user(r) for r in self.db.query("SELECT * FROM users ORDER BY username")]

    def add(self, username: str, display_name: str, role: str, password_hash: str) -> User:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        name = username.strip().lower()
        if not name or not name.replace(".", "").replace("-", "").replace("_", "").isalnum():
            raise UserError("a user name is letters, digits, '.', '-' and '_'")

        def work(tx: Tx) -> None:
            if tx.one("SELECT id FROM users WHERE username = ?", (name,)):
                raise UserError(f"the user {name} exists already; change it with 'gateway users passwd'")
            now = now_utc()
            tx.execute("INSERT INTO users(username, display_name, role, password_hash, active, created_at, "
                       "password_changed_at) VALUES (?,?,?,?,1,?,?)",
                       (name, display_name or name, role, password_hash, now, now))

        self.db.transaction(work)
        found = self.get(name)
        assert found is not None
        return found

    def _update(self, username: str, assignments: str, args: tuple[object, ...]) -> None:
        def work(tx: Tx) -> None:
            done = tx.execute(f"UPDATE users SET {assignments} WHERE username = ?", (*args, username.strip().lower()))
            if done.rowcount == 0:
                raise UserError(f"no user {username}; list them with 'gateway users list'")

        self.db.transaction(work)

    def set_password(self, username: str, password_hash: str) -> None:
        """A new password also lifts a lockout: the administrator has just spoken to the user."""
        self._update(username, "password_hash = ?, password_changed_at = ?, failed_sign_ins = 0, locked_until = NULL",
                     (password_hash, now_utc()))

    def set_active(self, username: str, active: bool) -> None:
        self._update(username, "active = ?", (1 if active else 0,))

    def set_role(self, username: str, role: str) -> None:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        self._update(username, "role = ?", (role,))

    def signed_in(self, username: str) -> None:
        self._update(username, "last_sign_in_at = ?, failed_sign_ins = 0, locked_until = NULL", (now_utc(),))

    def failed(self, username: str, max_failures: int, lock_until: datetime) -> bool:
        """Counts a failed sign-in; returns True when this failure locked the user out."""

        def work(tx: Tx) -> bool:
            row = tx.one("SELECT failed_sign_ins FROM users WHERE username = ?", (username,))
            if row is None:
                return False
            count = row["failed_sign_ins"] + 1
            locked = count >= max_failures
            tx.execute("UPDATE users SET failed_sign_ins = ?, locked_until = ? WHERE username = ?",
                       (0 if locked else count, lock_until.isoformat(timespec="milliseconds") if locked else None,
                        username))
            return locked

        return self.db.transaction(work)
