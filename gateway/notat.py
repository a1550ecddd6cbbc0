"""The human-readable note text, rendered from ``templates/`` so a region can change the
wording without touching code."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import jinja2

from gateway.kartlegging import Kartlegging

SAMHANDLINGSPUNKT_TEXT = {
    1: "ved klinisk beslutning (spesialisthelsetjenesten)",
    2: "når primær kreftbehandling er startet (spesialisthelsetjenesten)",
    3: "oppfølging i kommunen etter at behandlingen er startet",
    4: "om lag tre måneder etter samhandlingspunkt 3 (kommunen)",
    5: "om lag ett år etter samhandlingspunkt 3 (kommunen)",
}


def template_dir() -> Path:
    return Path(os.environ.get("GATEWAY_TEMPLATE_DIR") or Path(__file__).resolve().parent.parent / "templates")


@lru_cache(maxsize=4)
def _environment(folder: str) -> jinja2.Environment:
    # Plain text: autoescape off, XML escaping is lxml's job when the text goes into the message.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=True)


def render_note(event: Kartlegging, receiver_role: str) -> str:
    template = _environment(str(template_dir())).get_template("notat.txt.j2")
    return template.render(
        e=event,
        receiver_role=receiver_role,
        sp_text=SAMHANDLINGSPUNKT_TEXT[event.samhandlingspunkt],
        topics_with_need=[t for t in event.assessment.topics if t.need],
    )
