"""Live reload (issue 15): the running gateway switches to a new registry import and to changed routing
rules without a restart.

Why here and like this: the consumer routes a batch with ``handler.register`` and ``handler.rules``; the
reload runs as a periodic task of the same consumer loop, between batches, and replaces both references
together. So an event is routed with one consistent registry and rule set, never half of each, and no lock
is needed on the hot path. A new set that does not load (broken YAML, an empty registry) is refused: the
old one stays in use and the refusal is logged at error, once per broken version. Every switch logs the
versions now in use, so "which registry routed this?" has an answer in the log."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.domain.registry import Register, RegisterError, load_register
from gateway.logs import log
from gateway.routing.rules import RuleError, RuleSet, load_rules
from gateway.store.db import Database
from gateway.store.registry import StoreRegister


def rules_version(folder: Path) -> str:
    """A short hash over every rule file's path and bytes: an edit, a new kommune file or a removal changes it
    (mtime alone misses a copy that keeps the time, and changes on a touch that changes nothing)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*.yaml") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def file_version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@dataclass
class Versions:
    registry: str
    rules: str


class Reloader:
    """Checks the registry's and the rules' versions and, when one changed, loads and swaps both.

    ``targets``: objects with ``register`` (and ``rules``) attributes to update together: the event handler and
    the status publisher. ``on_import``: called after a new registry version is in use (the automatic retry of
    routing parks, when it is turned on)."""

    def __init__(self, targets: list[Any], *, registry: Path | str, db: Database | None, routes_dir: Path,
                 template_dir: Path, on_import: Callable[[str], object] | None = None) -> None:
        self.targets = targets
        self.registry = registry
        self.db = db
        self.routes_dir = routes_dir
        self.template_dir = template_dir
        self.on_import = on_import
        self.current = self.versions()
        self.refused: Versions | None = None

    def versions(self) -> Versions:
        if self.registry == "store":
            assert self.db is not None
            rows = self.db.query("SELECT max(id) AS n FROM registry_imports")
            registry = f"import {rows[0]['n']}" if rows and rows[0]["n"] is not None else "none"
        else:
            registry = f"file {file_version(Path(self.registry))}"
        return Versions(registry, f"rules {rules_version(self.routes_dir)}")

    def load_register(self) -> Register:
        if self.registry == "store":
            assert self.db is not None
            found = StoreRegister(self.db)
            if not found.parties:
                raise RegisterError("the store holds no parties")
            return found
        return load_register(Path(self.registry))

    def check(self) -> bool:
        """One look; True when it switched. Store errors (transient) propagate to the periodic task's backoff."""
        try:
            seen = self.versions()
        except OSError as exc:
            log.error("reload.unreadable", error_type=type(exc).__name__, registry=str(self.registry),
                      routes=str(self.routes_dir))
            return False
        if seen == self.current or seen == self.refused:
            return False
        try:
            register = self.load_register() if seen.registry != self.current.registry else None
            rules = load_rules(self.routes_dir, self.template_dir) if seen.rules != self.current.rules else None
        except (RuleError, RegisterError, OSError, ValueError) as exc:
            self.refused = seen
            log.error("reload.refused", registry_version=seen.registry, rules_version=seen.rules,
                      error=str(exc)[:300], kept_registry=self.current.registry, kept_rules=self.current.rules,
                      what_to_do="fix the rules or the registry; the gateway keeps routing with the old ones")
            return False
        self._swap(register, rules)
        new_registry = seen.registry != self.current.registry
        self.current, self.refused = seen, None
        log.info("reload.switched", registry_version=seen.registry, rules_version=seen.rules,
                 changed="+".join(n for n, c in (("registry", register is not None), ("rules", rules is not None))
                                  if c))
        if new_registry and self.on_import is not None:
            self.on_import(seen.registry)
        return True

    def _swap(self, register: Register | None, rules: RuleSet | None) -> None:
        """Between batches (the consumer's own thread): both references of each target change before the next
        batch is routed."""
        for target in self.targets:
            if register is not None:
                target.register = register
            if rules is not None and hasattr(target, "rules"):
                target.rules = rules
