"""Routing rules as data (``routes/``): a default rule set and per-kommune overrides in YAML.

``rules`` choose the route: the first that matches wins. ``additions`` add receivers for the field's
special cases (a wish for a kreftkoordinator, an individual plan, a child): every addition that
matches adds its receivers. Rules are checked when loaded: an unknown key, service type, target,
format or template is an error with file and line, and the gateway refuses to start rather than
route wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gateway.domain.registry import FORMAT_NAMES, SERVICE_TYPES
from gateway.errors import ConfigurationError
from gateway.routing.windows import DueWindowError, DueWindowSettings, parse_due_window_settings
from gateway.settings import PACKAGED_ROUTES, PACKAGED_TEMPLATES

PERSON_TARGETS = {"fastlege", "sykehus"}
TARGETS = set(SERVICE_TYPES) | PERSON_TARGETS
NON_HEALTH = {"nav"}  # receivers that get a copy only with the patient's consent (share_with_nav)
# The names a receiver's role may have: every target, and "kommune" (whichever kommune service the fallback
# chain finds). A role is also known when the templates folder has texts of its own for it
# (``{family}_{role}.txt.j2``). Anything else is a typo (``fastleeg``) that would silently pick the generic
# text and the wrong receiver name in the message, so it is refused with file:line.
ROLES = TARGETS | {"kommune"}


class RuleError(ConfigurationError):
    """A rule file is wrong; the message names the file and line."""


@dataclass(frozen=True)
class ReceiverRule:
    role: str
    find: tuple[str, ...]
    formats: tuple[str, ...]
    optional: bool = False


@dataclass(frozen=True)
class Fakta:
    """What a rule can ask about an event: plain values, worked out once per event."""

    samhandlingspunkt: int
    declined: bool = False
    kreftkoordinator_wanted: bool = False
    individuell_plan: bool = False  # needed, and the patient consents to notifying the koordinerende enhet
    age: int | None = None  # on the day of the kartlegging


@dataclass(frozen=True)
class When:
    """A rule's conditions. ``declined`` is False unless the rule says otherwise (``true`` or ``any``), so a
    rule for a kartlegging that was done never catches one the patient declined."""

    samhandlingspunkt: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    declined: bool | None = False  # None: either
    kreftkoordinator_wanted: bool | None = None
    individuell_plan: bool | None = None
    age_under: int | None = None

    def matches(self, f: Fakta) -> bool:
        return (f.samhandlingspunkt in self.samhandlingspunkt
                and (self.declined is None or self.declined == f.declined)
                and (self.kreftkoordinator_wanted is None or self.kreftkoordinator_wanted == f.kreftkoordinator_wanted)
                and (self.individuell_plan is None or self.individuell_plan == f.individuell_plan)
                and (self.age_under is None or (f.age is not None and f.age < self.age_under)))


@dataclass(frozen=True)
class Rule:
    name: str
    when: When
    receivers: tuple[ReceiverRule, ...]
    source: str  # file:line, for explanations
    template: str = "notat"  # the family of templates the text comes from (templates/{template}*.txt.j2)


@dataclass(frozen=True)
class RuleSet:
    default: tuple[Rule, ...]
    kommune: dict[str, tuple[Rule, ...]]
    default_additions: tuple[Rule, ...] = ()
    kommune_additions: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    # when the next samhandlingspunkt is due (recommendations, for the pathway overview), per kommune
    due_windows: DueWindowSettings = field(default_factory=DueWindowSettings)

    def rules_for(self, kommunenummer: str) -> tuple[Rule, ...]:
        return self.kommune.get(kommunenummer, ()) + self.default

    def additions_for(self, kommunenummer: str) -> tuple[Rule, ...]:
        return self.kommune_additions.get(kommunenummer, ()) + self.default_additions


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"the key {key!r} appears twice")
        self.key = key
        self.line = line


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's line, so errors can point at it, and refuses a key given twice in one mapping: YAML
    loaders keep the last silently, so a second ``find:`` rerouted messages without a word (issue 12)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
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


def known_roles(templates: Path) -> set[str]:
    """ROLES plus every role the templates folder has texts of its own for."""
    own = {p.name.removesuffix(".txt.j2").split("_", 1)[1] for p in templates.glob("*_*.txt.j2")}
    for n in range(1, 6):
        own = {r.removeprefix(f"sp{n}_") for r in own} - {f"sp{n}"}
    return ROLES | own


def _receiver(raw: Any, path: Path, roles: set[str]) -> ReceiverRule:
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: a receiver must be a mapping")
    where = f"{path}:{raw['__line__']}"
    _check_keys(raw, {"role", "find", "formats", "optional"}, where)
    if not isinstance(raw.get("role"), str):
        raise RuleError(f"{where}: a receiver needs a role (a name for it)")
    if raw["role"] not in roles:
        raise RuleError(f"{where}: unknown role {raw['role']!r}; known: {', '.join(sorted(ROLES))} (or a role "
                        "with its own template)")
    find = _strings(raw.get("find"), where, "find")
    for target in find:
        if target not in TARGETS:
            raise RuleError(f"{where}: unknown receiver {target!r}; known: {', '.join(sorted(TARGETS))}")
    if len(find) > 1 and set(find) & PERSON_TARGETS:
        raise RuleError(f"{where}: fastlege and sykehus cannot be part of a fallback chain of services")
    formats = _strings(raw.get("formats"), where, "formats")
    for fmt in formats:
        if fmt not in FORMAT_NAMES:
            raise RuleError(f"{where}: unknown format {fmt!r}; known: {', '.join(FORMAT_NAMES)}")
    if not isinstance(raw.get("optional", False), bool):
        raise RuleError(f"{where}: optional must be true or false")
    return ReceiverRule(raw["role"], find, formats, raw.get("optional", False))


def _flag(when: dict[str, Any], key: str, where: str, allow_any: bool = False) -> bool | None:
    value = when.get(key)
    if value is None or (allow_any and value == "any"):
        return None
    if not isinstance(value, bool):
        raise RuleError(f"{where}: {key} must be true or false" + (" or any" if allow_any else ""))
    return value


def _when(raw: Any, where: str, path: Path) -> When:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a rule needs 'when'")
    where = f"{path}:{raw['__line__']}"
    _check_keys(raw, {"samhandlingspunkt", "declined", "kreftkoordinator_wanted", "individuell_plan", "age_under"},
                where)
    points = raw.get("samhandlingspunkt", [1, 2, 3, 4, 5])
    if not isinstance(points, list) or not points or not all(p in (1, 2, 3, 4, 5) for p in points):
        raise RuleError(f"{where}: samhandlingspunkt must be a list of numbers 1-5")
    age_under = raw.get("age_under")
    if age_under is not None and (not isinstance(age_under, int) or isinstance(age_under, bool)
                                  or not 1 <= age_under <= 150):
        raise RuleError(f"{where}: age_under must be a whole number of years, e.g. 18")
    declined = _flag(raw, "declined", where, allow_any=True) if "declined" in raw else False
    return When(frozenset(points), declined, _flag(raw, "kreftkoordinator_wanted", where),
                _flag(raw, "individuell_plan", where), age_under)


def _rule(raw: Any, path: Path, templates: Path) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: a rule must be a mapping")
    where = f"{path}:{raw['__line__']}"
    _check_keys(raw, {"name", "when", "receivers", "template"}, where)
    if not isinstance(raw.get("name"), str):
        raise RuleError(f"{where}: a rule needs a name")
    when = _when(raw.get("when"), where, path)
    template = raw.get("template", "notat")
    if not isinstance(template, str) or not template.replace("_", "").isalnum():
        raise RuleError(f"{where}: template must be a name like notat or avslag")
    if not (templates / f"{template}.txt.j2").exists():
        raise RuleError(f"{where}: template {template}.txt.j2 is not in {templates}")
    receivers = raw.get("receivers")
    if not isinstance(receivers, list) or not receivers:
        raise RuleError(f"{where}: a rule needs receivers")
    roles = known_roles(templates)
    return Rule(raw["name"], when, tuple(_receiver(r, path, roles) for r in receivers),
                f"{path.parent.name}/{path.name}:{raw['__line__']}", template)


def _rules(raw: Any, path: Path, key: str, templates: Path) -> tuple[Rule, ...]:
    if not isinstance(raw, list) or not raw:
        raise RuleError(f"{path}: {key} must be a non-empty list")
    for r in raw:
        if key == "additions" and isinstance(r, dict) and "template" in r:
            raise RuleError(f"{path}:{r['__line__']}: an addition only adds receivers; the text's template "
                            "comes from the rule that chose the route")
    return tuple(_rule(r, path, templates) for r in raw)


def _plain(value: Any) -> Any:
    """A YAML value without the loader's line markers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_rule_file(path: Path, templates: Path = PACKAGED_TEMPLATES
                   ) -> tuple[str | None, tuple[Rule, ...], tuple[Rule, ...]]:
    """(kommune, rules, additions) of one file."""
    kommune, rules, additions, _ = _load_rule_file(path, templates)
    return kommune, rules, additions


def _load_rule_file(path: Path, templates: Path
                    ) -> tuple[str | None, tuple[Rule, ...], tuple[Rule, ...], dict[str, Any] | None]:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except _DuplicateKey as dup:
        raise RuleError(f"{path}:{dup.line}: {dup}; the second would silently replace the first") from None
    except UnicodeDecodeError:
        raise RuleError(f"{path}: not valid UTF-8") from None
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: expected a mapping with version and rules")
    _check_keys(raw, {"version", "kommune", "rules", "additions", "due_windows"}, f"{path}:{raw['__line__']}")
    if raw.get("version") != 1:
        raise RuleError(f"{path}:{raw['__line__']}: version must be 1")
    kommune = raw.get("kommune")
    if kommune is not None and not (isinstance(kommune, str) and len(kommune) == 4 and kommune.isdigit()):
        raise RuleError(f"{path}:{raw['__line__']}: kommune must be a four-digit string, e.g. \"5001\"")
    if "rules" not in raw and "additions" not in raw and "due_windows" not in raw:
        raise RuleError(f"{path}: no rules")
    rules = _rules(raw["rules"], path, "rules", templates) if "rules" in raw else ()
    additions = _rules(raw["additions"], path, "additions", templates) if "additions" in raw else ()
    return kommune, rules, additions, _plain(raw.get("due_windows"))


def load_rules(folder: Path, templates: Path = PACKAGED_TEMPLATES) -> RuleSet:
    """``default.yaml`` plus ``kommune/NNNN.yaml``; every file is checked before any is used (a rule's
    template family must exist in ``templates``)."""
    default_path = folder / "default.yaml"
    if not default_path.exists():
        raise RuleError(f"{default_path} is missing: the gateway needs a default rule set")
    kommune_none, default, default_additions, default_windows = _load_rule_file(default_path, templates)
    if kommune_none is not None:
        raise RuleError(f"{default_path}: the default rule set names no kommune")
    overrides: dict[str, tuple[Rule, ...]] = {}
    override_additions: dict[str, tuple[Rule, ...]] = {}
    windows: dict[str, dict[str, Any] | None] = {}
    for path in sorted((folder / "kommune").glob("*.yaml")):
        kommune, rules, additions, kommune_windows = _load_rule_file(path, templates)
        if kommune is None or path.stem != kommune:
            raise RuleError(f"{path}: the file must be named after its kommune ({kommune}.yaml)")
        overrides[kommune], override_additions[kommune] = rules, additions
        windows[kommune] = kommune_windows
    for sp in range(1, 6):
        if not any(r.when.matches(Fakta(sp)) for r in default):
            raise RuleError(f"{default_path}: no default rule for samhandlingspunkt {sp}")
    try:
        due = parse_due_window_settings(default_windows, windows, f"{default_path}: due_windows",
                                        str(folder / "kommune" / "{kommune}.yaml") + ": due_windows")
    except DueWindowError as exc:
        raise RuleError(str(exc)) from None
    return RuleSet(default, overrides, default_additions, override_additions, due)


@lru_cache(maxsize=1)
def packaged_rules() -> RuleSet:
    """The rules the package ships, with its templates: what tools and tests use when given none."""
    return load_rules(PACKAGED_ROUTES, PACKAGED_TEMPLATES)
