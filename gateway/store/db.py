"""The database under the store: SQLite or PostgreSQL behind one small interface.

SQL is written once, with ``?`` placeholders; ``Database`` translates it for psycopg with a tokenizer
that skips quoted literals and comments (a ``%`` or ``?`` inside a string literal stays literal),
cached per statement. Migrations are numbered files in ``migrations/`` applied in order and recorded
in ``schema_version``; replicas starting together take turns (SQLite's write lock, PostgreSQL's
advisory lock).

Why not SQLAlchemy Core: the store's SQL is a few dozen fixed statements, the two dialects differ in
three words, and the hot path executes about four statements per batch; a plain DB-API connection
with a cached placeholder translation costs nothing per statement and adds no dependency (see
docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from gateway.errors import StoreMissing, StoreUnavailable

T = TypeVar("T")
Row = dict[str, Any]


@lru_cache(maxsize=512)
def to_pyformat(query: str) -> str:
    """``?`` → ``%s`` and ``%`` → ``%%`` outside quoted literals and comments, for psycopg."""
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in "'\"":
            j = i + 1
            while j < n:
                if query[j] == c:
                    if j + 1 < n and query[j + 1] == c:  # a doubled quote inside the literal
                        j += 2
                        continue
                    break
                j += 1
            out.append(query[i:j + 1].replace("%", "%%"))
            i = j + 1
        elif query.startswith("--", i):
            j = query.find("\n", i)
            j = n if j < 0 else j
            out.append(query[i:j].replace("%", "%%"))
            i = j
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration file, in order."""
    folder = resources.files("gateway.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text(encoding="utf-8")))
    found.sort()
    if [v for v, _, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("store migrations must be numbered 0001, 0002, … without gaps")
    return found


def sqlite_statements(script: str) -> Iterator[str]:
    """Whole statements of a script, as SQLite's own parser sees them (strings and comments respected)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip() and not all(ln.strip().startswith("--") or not ln.strip()
                                          for ln in buffer.splitlines()):
                yield buffer.strip()
            buffer = ""
    if buffer.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()):
        raise ValueError("a migration ends in the middle of a statement")


class Backend(Protocol):
    """The few things SQLite and PostgreSQL do differently."""

    @property
    def name(self) -> str: ...

    @property
    def words(self) -> dict[str, str]: ...

    @property
    def errors(self) -> tuple[type[Exception], ...]: ...

    def connect(self) -> Any: ...

    def begin(self, db: Any, durable: bool = True) -> None: ...

    def after(self, db: Any, durable: bool = True) -> None: ...

    def write_nothing(self, db: Any) -> None: ...

    def lock_migrations(self, db: Any) -> None: ...

    def run_script(self, db: Any, script: str) -> None: ...


class Sqlite:
    name = "sqlite"
    words: ClassVar[dict[str, str]] = {"{ID}": "INTEGER PRIMARY KEY", "{BLOB}": "BLOB"}
    errors: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.create = create

    def connect(self) -> Any:
        if not self.create and not self.path.exists():
            raise StoreMissing(f"the store {self.path} does not exist; check GATEWAY_STORE_URL (a read-only "
                               "command never creates one)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Health data: the file and its WAL/SHM companions are readable by the gateway's user only.
        old_umask = os.umask(0o077)
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        finally:
            os.umask(old_umask)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=5000")
        # Switching a new file to WAL needs it to itself and does not wait for the busy timeout:
        # replicas starting together on a new file take turns here.
        for attempt in range(100):
            try:
                old_umask = os.umask(0o077)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                finally:
                    os.umask(old_umask)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        self._owner_only()
        db.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _owner_only(self) -> None:
        """A store file made before this rule (or copied in with a wide umask) is narrowed to 0600 too."""
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{self.path}{suffix}")
            with contextlib.suppress(OSError):  # absent, or not ours to change: SQLite still works
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)

    def begin(self, db: Any, durable: bool = True) -> None:
        if not durable:  # the safety level cannot change inside a transaction: set it for this one, then back
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")

    def after(self, db: Any, durable: bool = True) -> None:
        if not durable:
            db.execute("PRAGMA synchronous=FULL")

    def write_nothing(self, db: Any) -> None:
        """A write the commit must fsync: the header's user_version (unused by the gateway) counts up."""
        n = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version={(int(n) + 1) % 2**31}")

    def lock_migrations(self, db: Any) -> None:
        """BEGIN IMMEDIATE already holds the file's write lock."""

    def run_script(self, db: Any, script: str) -> None:
        for statement in sqlite_statements(script):
            db.execute(statement)


class Postgres:
    name = "postgresql"
    words: ClassVar[dict[str, str]] = {"{ID}": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "{BLOB}": "BYTEA"}

    def __init__(self, url: str) -> None:
        import psycopg

        self.psycopg = psycopg
        self.url = url
        self.errors: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)

    def connect(self) -> Any:
        from psycopg.rows import dict_row

        return self.psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)

    def begin(self, db: Any, durable: bool = True) -> None:
        db.execute("BEGIN")
        if not durable:
            db.execute("SET LOCAL synchronous_commit TO OFF")

    def after(self, db: Any, durable: bool = True) -> None:
        """``SET LOCAL`` ended with the transaction."""

    def write_nothing(self, db: Any) -> None:
        """A transaction id of its own: its commit record is written and flushed (synchronous_commit on)."""
        db.execute("SELECT txid_current()")

    def lock_migrations(self, db: Any) -> None:
        """Gateways starting together on a new database take turns: the first migrates, the rest see it done."""
        db.execute("SELECT pg_advisory_xact_lock(7243010)")

    def run_script(self, db: Any, script: str) -> None:
        db.execute(script)  # psycopg sends a parameterless script as one simple query; the server splits it


class Tx:
    """One open transaction: what a unit of store work sees."""

    def __init__(self, database: Database, connection: Any) -> None:
        self._database = database
        self.connection = connection

    def execute(self, query: str, args: Sequence[object] = ()) -> Any:
        return self.connection.execute(self._database.sql(query), tuple(args))

    def one(self, query: str, args: Sequence[object] = ()) -> Row | None:
        row = self.execute(query, args).fetchone()
        return None if row is None else _plain(row)

    def all(self, query: str, args: Sequence[object] = ()) -> list[Row]:
        return [_plain(r) for r in self.execute(query, args).fetchall()]

    def many(self, query: str, rows: Sequence[Sequence[object]]) -> None:
        """One statement for many rows: a batch's bookkeeping in a few round trips, not one per row."""
        if rows:
            self.connection.cursor().executemany(self._database.sql(query), [tuple(r) for r in rows])


def _plain(row: Any) -> Row:
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in dict(row).items()}


class Database:
    """A connection (opened again after a failure) and transactions on it, one at a time."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._db: Any = None
        try:
            self._db = backend.connect()
        except backend.errors as exc:
            raise StoreUnavailable(f"cannot open the {backend.name} store: {exc}") from exc
        self._migrate()

    @property
    def dialect(self) -> str:
        return self.backend.name

    def sql(self, query: str) -> str:
        return query if self.backend.name == "sqlite" else to_pyformat(query)

    def _migrate(self) -> None:
        def work(tx: Tx) -> None:
            self.backend.lock_migrations(tx.connection)
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = tx.one("SELECT max(version) AS v FROM schema_version")
            current = (row["v"] if row else None) or 0
            for version, _name, script in migrations()[current:]:
                for word, replacement in self.backend.words.items():
                    script = script.replace(word, replacement)
                self.backend.run_script(tx.connection, script)
                tx.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))

        self.transaction(work)

    def _connection(self) -> Any:
        if self._db is None:
            self._db = self.backend.connect()
        return self._db

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()
        self._db = None

    def transaction(self, work: Callable[[Tx], T], *, durable: bool = True) -> T:
        """Runs ``work`` in one transaction; a lost connection or a locked file is StoreUnavailable.

        ``durable=False``: the commit survives the gateway's own crash but not a power cut until the next
        durable commit (SQLite WAL with synchronous=NORMAL: no fsync; PostgreSQL: synchronous_commit off).
        Only for work nothing is acked or published on the strength of (docs/guarantees.md, "fsyncs")."""
        with self._lock:
            try:
                connection = self._connection()
                try:
                    self.backend.begin(connection, durable)
                    try:
                        result = work(Tx(self, connection))
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    connection.execute("COMMIT")
                finally:
                    if not durable:
                        self.backend.after(connection, durable)
                return result
            except self.backend.errors as exc:
                if self.backend.name != "sqlite":  # a locked SQLite file is no broken connection
                    self._drop()
                raise StoreUnavailable(str(exc)) from exc

    def barrier(self) -> None:
        """Makes every commit made before it durable, this process's and any other's on the same store: one
        durable commit that really writes (SQLite skips a row rewritten with its own value). SQLite's WAL and
        PostgreSQL's WAL are each one sequential log, so flushing it to this commit flushes all earlier ones."""
        self.transaction(lambda tx: self.backend.write_nothing(tx.connection))

    def query(self, query: str, args: Sequence[object] = ()) -> list[Row]:
        """A read outside a transaction."""
        with self._lock:
            try:
                rows = self._connection().execute(self.sql(query), tuple(args)).fetchall()
            except self.backend.errors as exc:
                if self.backend.name != "sqlite":
                    self._drop()
                raise StoreUnavailable(str(exc)) from exc
        return [_plain(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._drop()


def open_database(url: str, *, create: bool = True) -> Database:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` or ``postgresql://user@host/db``.
    ``create=False`` (read-only commands) refuses a SQLite file that does not exist yet."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        return Database(Sqlite(Path(url[len(prefix):]), create=create))
    if url.startswith(("postgresql://", "postgres://")):
        return Database(Postgres(url))
    raise ValueError(
        f"unsupported GATEWAY_STORE_URL {url.split(':', 1)[0]}://…; use sqlite:///path/to/file.sqlite3 "
        "or postgresql://user@host/database"
    )
