"""A POST Service Request's form: read it, check it as the spec does, and name the request.

Naming the request is what makes a retried POST harmless. Open311 has no idempotency of its
own, so sixstep's Idempotency-Key for the request is: from the app's ``Idempotency-Key``
header when it sends one (:func:`header_key`: exact, same key, same request; sent again with
another service code or description it is refused, as every reused key is, and records
nothing), otherwise a random key drawn when the form is first seen (:func:`fresh_key`), which
identical POSTs less than ``open311_retry_window_s`` apart share: the form is recognised by
its :func:`form_digest`, a MAC under a server secret kept server-side for one window only
(``recent_forms.py``). The key lands in the log (``causation_id``, ``correlation_id``, the
case id), so it holds nothing of the form: a phone, an e-mail or a name in it cannot be
tried against the log, by whoever holds the api_key either. The case is opened with
``<key>-open`` and heard with ``<key>-hear``, so a retry after a half-done POST finishes the
hearing.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import parse_qsl

import orjson
from fastapi import Request

from services.intake.open311.wire import Open311Error
from services.intake.open311.wording import Lang, definition
from shared.catalogue import Catalogue
from shared.kernel.privacy import KnownPerson
from shared.kernel.typed import trimmed

MAX_BODY = 64 * 1024
MAX_DESCRIPTION = 4000  # the spec's limit, and HearRequest's
FORM_FIELDS = ("api_key", "jurisdiction_id", "service_code", "description", "lat", "long",
               "address_string", "address_id", "email", "device_id", "account_id",
               "first_name", "last_name", "phone", "media_url")


async def read_form(request: Request) -> list[tuple[str, str]]:
    """The form's fields in order ("Content-Type: application/x-www-form-urlencoded"), values
    trimmed as every request body's texts are (``shared.kernel.typed``): a description of
    only a zero-width space is none, not a case opened and then a 400 for its blank words.
    The spec's ``attribute[code][]`` repeats stay separate pairs."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in ("", "application/x-www-form-urlencoded"):
        raise Open311Error(400, "send the service request as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Open311Error(400, f"the request is larger than {MAX_BODY} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200,
                          errors="strict")
    except ValueError:
        raise Open311Error(400, "the request is not valid UTF-8 form data") from None
    return [(name, trimmed(value)) for name, value in pairs]


def first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Each field's first value; an empty value counts as absent (the spec's null rule)."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if value and name not in out:
            out[name] = value
    return out


_ATTRIBUTE = re.compile(r"attribute\[([^\]]+)\](?:\[\])?")


def check_fields(fields: dict[str, str], pairs: list[tuple[str, str]], cat: Catalogue,
                 lang: Lang) -> str:
    """The spec's checks on a new request; returns the service_code."""
    code = fields.get("service_code")
    if not code:
        raise Open311Error(400, "service_code was not provided")
    item = cat.get(code)
    if item is None:
        raise Open311Error(404, f"service_code {code!r} was not found")
    known = {a["code"] for a in definition(item, lang)["attributes"]}
    for name, _ in pairs:
        match = _ATTRIBUTE.fullmatch(name)
        if match and match.group(1) not in known:
            raise Open311Error(400, f"attribute {match.group(1)!r} is not defined for {code}")
    if len(fields.get("description", "")) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    if ("lat" in fields) != ("long" in fields):
        raise Open311Error(400, "lat and long are sent together")
    if "lat" in fields:
        try:
            lat, long = float(fields["lat"]), float(fields["long"])
        except ValueError:
            raise Open311Error(400, "lat and long are WGS84 decimal degrees") from None
        if not (-90 <= lat <= 90 and -180 <= long <= 180):
            raise Open311Error(400, "lat and long are out of range")
    return code


def header_key(api_key: str, center_id: str, header_key: str) -> str:
    """The request's key from the app's own Idempotency-Key: one app's key is never
    another's (keyed with its api_key), and holds only what the app chose to send."""
    material = f"{center_id}\x1fheader\x1f{header_key}"
    mac = hmac.new(api_key.encode(), material.encode(), hashlib.sha256)
    return f"o311-{mac.hexdigest()[:40]}"


def fresh_key() -> str:
    """The key of a request sent without an Idempotency-Key: random, nothing of the form."""
    return f"o311-{secrets.token_hex(20)}"


def form_digest(secret: bytes, center_id: str, fingerprint: str,
                pairs: list[tuple[str, str]]) -> bytes:
    """What recognises an identical POST from one api_key (``fingerprint``) at one center:
    the whole form but the api_key, under the server's secret. Kept server-side for one
    window only (``recent_forms.py``), never in an event."""
    form = sorted((n, v) for n, v in pairs if n != "api_key" and v)
    material = f"{center_id}\x1f{fingerprint}\x1f{orjson.dumps(form).decode()}"
    return hmac.new(secret, material.encode(), hashlib.sha256).digest()


_HAN = re.compile(r"[\u3400-\u9fff]+")


def sender_of(fields: dict[str, str]) -> KnownPerson | None:
    """Who the form says sent it (``first_name``, ``last_name``, ``phone``,
    ``address_string``): never kept, but what the description is scrubbed of, as a case's
    words are of its resident. The app sends the name apart, and the resident then writes it
    alone in their own words (``楼上漏水，王秀英家天花板都湿了``, ``咨询高龄津贴 王秀英``,
    ``Wang Xiuying asks ...``), where no pattern can tell it from other words. A Chinese name
    is the surname then the given name (王 + 秀英); a Latin one the given name first. A name
    of one character alone is left to the patterns (the surname 王 would take every 王)."""
    first = fields.get("first_name", "").strip()
    last = fields.get("last_name", "").strip()
    if first and last:
        name = last + first if _HAN.fullmatch(last + first) else f"{first} {last}"
    else:
        name = first or last
    if len(name.replace(" ", "")) < 2:
        name = ""
    sender = KnownPerson(name=name, phone=fields.get("phone", "").strip(),
                         address=fields.get("address_string", "").strip())
    return sender if sender else None
