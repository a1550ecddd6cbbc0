"""Routing rules as data (``routes/``): a default rule set and per-kommune overrides in YAML.

Rules are checked when loaded: an unknown key, service type, target or format is an error with
file and line, and the gateway refuses to start rather than route wrongly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gateway.adresseregister import SERVICE_TYPES
from gateway.formats import FORMATS

PERSON_TARGETS = {"fastlege", "sykehus"}
TARGETS = set(SERVICE_TYPES) | PERSON_TARGETS
NON_HEALTH = {"nav"}  # receivers that get a copy only with the patient's consent (share_with_nav)


class RuleError(ValueError):
    """A rule file is wrong; the message names the file and line."""


@dataclass(frozen=True)
class ReceiverRule:
    role: str
    find: tuple[str, ...]
    formats: tuple[str, ...]
    optional: bool = False


@dataclass(frozen=True)
class Rule:
    name: str
    samhandlingspunkt: frozenset[int]
    receivers: tuple[ReceiverRule, ...]
    source: str  # file:line, for explanations


@dataclass(frozen=True)
class RuleSet:
    default: tuple[Rule, ...]
    kommune: dict[str, tuple[Rule, ...]]

    def rules_for(self, kommunenummer: str) -> tuple[Rule, ...]:
        return self.kommune.get(kommunenummer, ()) + self.default


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's line, so errors can point at it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=True)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def _strings(value: Any, where: str, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: {what} must be a non-empty list of names")
    return tuple(value)


def _check_keys(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed - {"__line__"}
    if unknown:
        raise RuleError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")


def _receiver(raw: Any, path: Path) -> ReceiverRule:
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: a receiver must be a mapping")
    where = f"{path}:{raw['__line__']}"
    _check_keys(raw, {"role", "find", "formats", "optional"}, where)
    if not isinstance(raw.get("role"), str):
        raise RuleError(f"{where}: a receiver needs a role (a name for it)")
    find = _strings(raw.get("find"), where, "find")
    for target in find:
        if target not in TARGETS:
            raise RuleError(f"{where}: unknown receiver {target!r}; known: {', '.join(sorted(TARGETS))}")
    if len(find) > 1 and set(find) & PERSON_TARGETS:
        raise RuleError(f"{where}: fastlege and sykehus cannot be part of a fallback chain of services")
    formats = _strings(raw.get("formats"), where, "formats")
    for fmt in formats:
        if fmt not in FORMATS:
            raise RuleError(f"{where}: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if not isinstance(raw.get("optional", False), bool):
        raise RuleError(f"{where}: optional must be true or false")
    return ReceiverRule(raw["role"], find, formats, raw.get("optional", False))


def _rule(raw: Any, path: Path) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: a rule must be a mapping")
    where = f"{path}:{raw['__line__']}"
    _check_keys(raw, {"name", "when", "receivers"}, where)
    if not isinstance(raw.get("name"), str):
        raise RuleError(f"{where}: a rule needs a name")
    when = raw.get("when")
    if not isinstance(when, dict):
        raise RuleError(f"{where}: a rule needs 'when'")
    _check_keys(when, {"samhandlingspunkt"}, f"{path}:{when['__line__']}")
    points = when.get("samhandlingspunkt")
    if not isinstance(points, list) or not points or not all(p in (1, 2, 3, 4, 5) for p in points):
        raise RuleError(f"{path}:{when['__line__']}: samhandlingspunkt must be a list of numbers 1-5")
    receivers = raw.get("receivers")
    if not isinstance(receivers, list) or not receivers:
        raise RuleError(f"{where}: a rule needs receivers")
    return Rule(raw["name"], frozenset(points), tuple(_receiver(r, path) for r in receivers),
                f"{path.parent.name}/{path.name}:{raw['__line__']}")


def load_rule_file(path: Path) -> tuple[str | None, tuple[Rule, ...]]:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: expected a mapping with version and rules")
    _check_keys(raw, {"version", "kommune", "rules"}, f"{path}:{raw['__line__']}")
    if raw.get("version") != 1:
        raise RuleError(f"{path}:{raw['__line__']}: version must be 1")
    kommune = raw.get("kommune")
    if kommune is not None and not (isinstance(kommune, str) and len(kommune) == 4 and kommune.isdigit()):
        raise RuleError(f"{path}:{raw['__line__']}: kommune must be a four-digit string, e.g. \"5001\"")
    rules = raw.get("rules")
    if not isinstance(rules, list) or not rules:
        raise RuleError(f"{path}: no rules")
    return kommune, tuple(_rule(r, path) for r in rules)


def load_rules(folder: Path) -> RuleSet:
    """``default.yaml`` plus ``kommune/NNNN.yaml``; every file is checked before any is used."""
    default_path = folder / "default.yaml"
    if not default_path.exists():
        raise RuleError(f"{default_path} is missing: the gateway needs a default rule set")
    kommune_none, default = load_rule_file(default_path)
    if kommune_none is not None:
        raise RuleError(f"{default_path}: the default rule set names no kommune")
    overrides: dict[str, tuple[Rule, ...]] = {}
    for path in sorted((folder / "kommune").glob("*.yaml")):
        kommune, rules = load_rule_file(path)
        if kommune is None or path.stem != kommune:
            raise RuleError(f"{path}: the file must be named after its kommune ({kommune}.yaml)")
        overrides[kommune] = rules
    for sp in range(1, 6):
        if not any(sp in r.samhandlingspunkt for r in default):
            raise RuleError(f"{default_path}: no default rule for samhandlingspunkt {sp}")
    return RuleSet(default, overrides)


def routes_dir() -> Path:
    return Path(os.environ.get("GATEWAY_ROUTES") or Path(__file__).resolve().parent.parent / "routes")


@lru_cache(maxsize=4)
def _cached(folder: str) -> RuleSet:
    return load_rules(Path(folder))


def default_rules() -> RuleSet:
    return _cached(str(routes_dir()))
