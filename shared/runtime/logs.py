"""Structured JSON logs; correlation ids ride along, personal data never does.

* Every line is one JSON object on stderr (``LOG_JSON=false`` for people at a terminal),
  with ``timestamp``, ``level``, ``event`` and whatever was bound: the HTTP middleware binds
  ``correlation_id`` per request (``shared.http.front_door``), the consumer binds the
  event's ``correlation_id`` and ``event_id`` while it applies one.
* Inside a span (``shared.tracing``) a line also has its ``trace_id`` and ``span_id``.
* Personal data is kept out twice over: events carry no names or numbers to begin with, and
  this last processor drops fields named like personal data and replaces ID numbers and phone
  numbers in every string (an exception's message can quote a row).
* uvicorn's own lines (errors, start-up) go through the same renderer once a service starts
  (``adopt_stdlib_logging``), so a log shipper sees one format.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from shared.kernel.privacy import redact
from shared.tracing import current_ids

#: Field names that never reach a log line, whatever their value.
PERSONAL_FIELDS = frozenset({
    "name", "full_name", "resident_name", "phone", "mobile", "telephone", "id_number",
    "id_card", "address", "words", "restatement", "correction", "email",
})
DROPPED = "[personal data dropped]"
_AN_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                    r"[0-9a-fA-F]{12}")
"""A value that is one UUID and nothing else: an id (a case's, a survey's, an opaque
resident's), which ``redact`` leaves whole whatever its digits look like (``_outside_ids``)
after running every rule over it (60-80 us of CPU an id): a ``survey.sent`` line, one a
case at the default level, scrubbed in 250 us instead of 520 (batchcost48,
benchmarks/README.md, target 3)."""


_A_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                       r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?")
"""A value that is one ISO 8601 moment and nothing else (``datetime.isoformat()``: the line's
own ``timestamp``, a survey's ``expires_at``): times are what the scrubber leaves as they
are (``redact``: "What stays"), yet every rule ran over each, 90-120 us of CPU a value
(latency56, benchmarks/README.md, target 3)."""

CLEAN_KEPT = 4096
"""How many short values the scrubber left as they were are remembered (``_clean``)."""
CLEAN_LONGEST = 64
_clean: dict[str, None] = {}
"""Short values ``redact`` gave back unchanged (a channel, a purpose, a center's or a
counter's id, an event's name: the same few in every line): not run through every rule
again. ``redact(text)`` depends on the text alone, and a value it changed (or failed on) is
never kept, so a value found here is one the rules found nothing in, as the line shows it
anyway; emptied when full (bounded; one ``clear`` is safe beside another thread's line)."""


def _scrubbed(value: str) -> str:
    if _AN_ID.fullmatch(value) or _A_MOMENT.fullmatch(value) or value in _clean:
        return value
    out = redact(value)
    if out == value and len(value) <= CLEAN_LONGEST:
        if len(_clean) >= CLEAN_KEPT:
            _clean.clear()
        _clean[value] = None
    return out


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrubbed(value)
    if isinstance(value, Mapping):
        return {k: DROPPED if str(k).lower() in PERSONAL_FIELDS else _scrub(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub_personal_data(_: Any, __: str, event_dict: MutableMapping[str, Any]
                        ) -> MutableMapping[str, Any]:
    """A structlog processor: the last line of defence for residents' personal data."""
    for key in list(event_dict):
        if key.lower() in PERSONAL_FIELDS:
            event_dict[key] = DROPPED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]
                  ) -> MutableMapping[str, Any]:
    """A structlog processor: ``trace_id`` and ``span_id`` of the span the line is written in
    (a request's, a consumer's message), so a log line leads to its trace and back."""
    ids = current_ids()
    if ids is not None:
        event_dict.setdefault("trace_id", ids[0])
        event_dict.setdefault("span_id", ids[1])
    return event_dict


def _shared_processors() -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrub_personal_data,
    ]


def log_processors(json: bool = True) -> list[structlog.types.Processor]:
    """What each line goes through, to the renderer: JSON, or plain text for a terminal."""
    return [*_shared_processors(), structlog.processors.JSONRenderer() if json
            else structlog.dev.ConsoleRenderer(colors=False)]


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    structlog.configure(
        processors=log_processors(json),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def adopt_stdlib_logging(level: str = "INFO") -> None:
    """Render uvicorn's (and any library's) stdlib log records as our JSON lines.

    Called when a service starts, i.e. after ``uvicorn.run`` installed its own handlers.
    """
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler] if name == "uvicorn" else []
        logger.propagate = name != "uvicorn"
    access = logging.getLogger("uvicorn.access")
    if access.handlers:  # access lines stay off unless uvicorn was asked for them
        access.handlers = [handler]
    # httpx logs every request it makes at INFO: a line per write of follow-up and feedback
    # (their free text goes to intake first), as uvicorn's access lines would be; its warnings
    # and errors still come through.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.getLevelName(level))
