"""structlog set-up: JSON lines when not on a terminal, readable lines when on one.

Patient data must never reach a log. The code never passes it; as a second fence a
processor masks anything shaped like a fødselsnummer (11 digits) before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_FNR_SHAPE = re.compile(r"(?<!\d)\d{11}(?!\d)")


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _FNR_SHAPE.sub("***********", value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def mask_fnr_shapes(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {key: _mask(value) for key, value in event_dict.items()}


def configure(fmt: str = "auto", stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    json_lines = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_fnr_shapes,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # kombu and amqp log through the standard library; keep them at WARNING on the same stream.
    logging.basicConfig(stream=out, level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")


log = structlog.get_logger("gateway")
