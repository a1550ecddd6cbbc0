"""The human-readable note text, rendered from ``templates/`` so a region can change the
wording without touching code.

The most specific template wins: ``notat_sp{N}_{role}``, ``notat_{role}``, ``notat_sp{N}``, then
``notat`` (all ``.txt.j2``); a rule can name another family than ``notat`` (``avslag`` for a
declined kartlegging), chosen the same way. Whatever the wording, the field's first complaint must never come
back ("forms arrive without the hospital's contact information and without the diagnosis"): a
rendered text that lacks any part of the mandatory block is refused.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from gateway.domain.kartlegging import Kartlegging
from gateway.errors import Parked, Reason
from gateway.settings import PACKAGED_TEMPLATES

SAMHANDLINGSPUNKT_TEXT = {
    1: "ved klinisk beslutning (spesialisthelsetjenesten)",
    2: "når primær kreftbehandling er startet (spesialisthelsetjenesten)",
    3: "oppfølging i kommunen etter at behandlingen er startet",
    4: "om lag tre måneder etter samhandlingspunkt 3 (kommunen)",
    5: "om lag ett år etter samhandlingspunkt 3 (kommunen)",
}


_DEFAULT_TEMPLATES = str(PACKAGED_TEMPLATES)  # a str: the folder is a cache key on the hot path


def template_exists(folder: str | Path, family: str) -> bool:
    """Whether a family of templates (``{family}.txt.j2``) is in the folder; the rule loader asks."""
    return (Path(folder) / f"{family}.txt.j2").exists()


@lru_cache(maxsize=4)
def _environment(folder: str) -> jinja2.Environment:
    """One Environment per folder: Jinja caches compiled templates on it."""
    # Plain text: autoescape off, XML escaping is lxml's job when the text goes into the message.
    # auto_reload off: templates are read once at start like the schemas (no stat() per message)
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=True, auto_reload=False)


def template_names(samhandlingspunkt: int, receiver_role: str, family: str = "notat") -> list[str]:
    """Most specific first; ``select_template`` takes the first that exists."""
    sp = f"sp{samhandlingspunkt}"
    return [f"{family}_{sp}_{receiver_role}.txt.j2", f"{family}_{receiver_role}.txt.j2", f"{family}_{sp}.txt.j2",
            f"{family}.txt.j2"]


def mandatory_block(event: Kartlegging) -> dict[str, str]:
    """What every text must contain, by a name an operator can read (never patient data)."""
    block = {
        "sender unit": event.sender.name,
        "contact person": event.sender.contact.name,
        "phone": event.sender.contact.phone,
        "diagnosis": event.diagnosis.text,
        "ICD-10 code": event.diagnosis.icd10,
        "date of the kartlegging": event.assessment.performed_on.strftime("%d.%m.%Y"),
    }
    if event.assessment.procedure_code or (event.samhandlingspunkt in (1, 2) and event.declined is None):
        block["procedure code"] = event.assessment.procedure_code or "WMFG10"
    return block


@lru_cache(maxsize=64)
def _template(folder: str, samhandlingspunkt: int, receiver_role: str, family: str) -> jinja2.Template:
    """Chosen and compiled once per process: templates are read at start, like the schemas."""
    return _environment(folder).select_template(template_names(samhandlingspunkt, receiver_role, family))


def render_note(event: Kartlegging, receiver_role: str, family: str = "notat", *, route: Any = None,
                m: Any = None, template_dir: str | Path = _DEFAULT_TEMPLATES) -> str:
    """The note text for one receiver; raises Parked when the template leaves out the mandatory block.
    ``route`` and ``m`` (the receiver) reach the template for the special cases; None when unknown."""
    template = _template(str(template_dir), event.samhandlingspunkt, receiver_role, family)
    text = template.render(
        e=event,
        receiver_role=receiver_role,
        sp_text=SAMHANDLINGSPUNKT_TEXT[event.samhandlingspunkt],
        topics_with_need=[t for t in event.assessment.topics if t.need],
        route=route,
        m=m,
    )
    missing = [name for name, value in mandatory_block(event).items() if value not in text]
    if missing:
        raise Parked(Reason.TEMPLATE_INCOMPLETE,
                     f"template {template.name} leaves out the mandatory {', '.join(missing)}; fix the template")
    return text
