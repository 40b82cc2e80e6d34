"""A correlation id for every request: taken from the caller, bound into the logs, echoed back."""

from __future__ import annotations

import os
import random
import re

from orjson import JSONDecodeError
from orjson import loads as json_loads
from starlette.types import Message, Receive, Scope

from shared.kernel.meta import CORRELATION_ID
from shared.kernel.privacy.patterns import personal_number_in

CORRELATION_HEADER = "x-correlation-id"
_HEADER = CORRELATION_HEADER.encode()
_CORRELATION = re.compile(CORRELATION_ID)
_MAX_SNIFFED_BODY = 64 * 1024
SNIFFED_BODY = "sixstep.sniffed_body"
"""The scope's key for ``(body, parsed)``: the JSON object a request's body was parsed into
to find its ``correlation_id``. The body is handed on unchanged; a write route
(``shared.http.fast_route``) that reads these very bytes takes the parse instead of parsing
them again."""
_new_ids = random.Random()
"""A new id is 16 hex digits, as ``secrets.token_hex(8)`` gave, without a system call per
request: it names a request in the logs and is no secret (a caller may send any id)."""
# Seeded anew in a forked process (``random``'s own instance is; this one would not be): a
# fork of a process that imported this (the fault tests' fork server, a pre-forking server)
# would hand out its parent's ids, the same in every sibling.
os.register_at_fork(after_in_child=_new_ids.seed)


class PersonalCorrelation(Exception):
    """The ``X-Correlation-Id`` header holds a phone number or an ID number (``what``): the
    request is refused (422 ``correlation_id_personal_data``), as a command's body with one
    is, not logged under it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"X-Correlation-Id must not hold {what}")
        self.what = what


def valid_correlation(value: str | None) -> str | None:
    """``value`` when it is a correlation id (``CORRELATION_ID``) holding no phone number or
    ID number, else ``None``."""
    return value if value is not None and _CORRELATION.fullmatch(value) \
        and personal_number_in(value) is None else None


async def correlation_of(scope: Scope, receive: Receive) -> tuple[str, Receive]:
    """The request's correlation id, and the ``receive`` to hand on (the body replayed when
    it was read to find the id).

    The id is the ``X-Correlation-Id`` header, else the JSON body's ``correlation_id`` (the
    field every command takes), else a new one. The front door (``shared.http.front_door``)
    binds it into the log context while the request is handled, so that every log line
    written meanwhile carries it, and echoes it in the response's ``X-Correlation-Id``. Only
    the id is looked at: the body is handed on unchanged. A header holding a phone number or
    an ID number raises :class:`PersonalCorrelation` (it would be logged, kept in the audit
    trail and echoed); a body's is not taken (the command's validation refuses it).
    """
    header = b""
    for name, value in scope["headers"]:
        if name == _HEADER:
            header = value  # the last one, as dict(headers) had it
    text = header.decode("latin-1")
    correlation = text if _CORRELATION.fullmatch(text) else None
    if correlation is not None and (what := personal_number_in(correlation)) is not None:
        raise PersonalCorrelation(what)
    if correlation is None and scope["method"] in ("POST", "PUT", "PATCH"):
        correlation, receive = await _sniff_body(scope, receive)
    return correlation or new_correlation(), receive


def new_correlation() -> str:
    """A new correlation id, for a request that brought none."""
    return f"{_new_ids.getrandbits(64):016x}"


async def _sniff_body(scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """Read the request body, find ``correlation_id`` in it, and replay it to the app (the
    parse kept in the scope, ``SNIFFED_BODY``)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body") or size > _MAX_SNIFFED_BODY:
            break
    found: str | None = None
    if size <= _MAX_SNIFFED_BODY:
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        value = None
        if body[:1] == b"{":
            try:
                parsed = json_loads(body)
            except JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                scope[SNIFFED_BODY] = (body, parsed)
                value = parsed.get("correlation_id")
        if isinstance(value, str):
            found = valid_correlation(value)
    replay = iter(messages)

    async def replayed() -> Message:
        try:
            return next(replay)
        except StopIteration:
            return await receive()

    return found, replayed
