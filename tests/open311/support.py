"""What the Open311 tests share: the spec's words, credentials, and both formats read alike."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx

from shared.settings import Settings

CENTER = "SH-PD-HUAMU"
OTHER_CENTER = "SH-PD-ZHANGJIANG"
KEY = "civic-app-key-0123456789"
OTHER_KEY = "neighbour-center-key-0123456789"

# "All date/time fields must be formatted in a common subset of ISO 8601 as per the w3 note.
#  Timezone information (either Z meaning UTC, or an HH:MM offset from UTC) must be included."
W3C_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")

# "XML: Content-Type: text/xml; charset=utf-8" / "JSON: Content-Type: application/json;
#  charset=utf-8"; "the root element must be preceded with the XML declaration including the
#  encoding="UTF-8" attribute."
CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

# List elements of the spec's XML and the item each holds (the Spark convention's arrays).
LISTS = {"services": "service", "attributes": "attribute", "values": "value",
         "service_requests": "request", "errors": "error", "endpoints": "endpoint",
         "formats": "format"}


def with_keys(settings: Settings, **extra: Any) -> Settings:
    """The test's settings with two centers' credentials, one given as its SHA-256 only."""
    hashed = "sha256:" + hashlib.sha256(OTHER_KEY.encode()).hexdigest()
    return settings.model_copy(update={"open311_api_keys": {KEY: CENTER, hashed: OTHER_CENTER},
                                       **extra})


def spark(element: ET.Element) -> Any:
    """XML read back by the Spark convention: what the JSON rendering must equal."""
    if element.tag in LISTS:
        assert all(child.tag == LISTS[element.tag] for child in element), element.tag
        return [spark(child) for child in element]
    if len(element):
        return {child.tag: spark(child) for child in element}
    return element.text


def as_text(value: Any) -> Any:
    """JSON values as XML carries them: text, or nothing for null."""
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        return None
    return str(value)


def check_format(response: httpx.Response, fmt: str) -> None:
    assert response.headers["content-type"] == CONTENT_TYPES[fmt], response.headers
    response.content.decode("utf-8")  # "UTF-8 is required everywhere."
    if fmt == "xml":
        assert response.text.startswith(XML_DECLARATION), response.text[:80]


async def both(client: httpx.AsyncClient, method: str, resource: str, root: str,
               status: int = 200, **kwargs: Any) -> Any:
    """Ask for ``resource`` as .json and .xml; both must say the same. Returns the JSON."""
    answers = {}
    for fmt in ("json", "xml"):
        response = await client.request(method, f"/open311/v2/{resource}.{fmt}", **kwargs)
        assert response.status_code == status, (fmt, response.text)
        check_format(response, fmt)
        answers[fmt] = response
    data = answers["json"].json()
    document = ET.fromstring(answers["xml"].content)
    assert document.tag == root
    assert as_text(data) == spark(document)
    return data


async def spec_error(client: httpx.AsyncClient, method: str, resource: str, status: int,
                     **kwargs: Any) -> str:
    """An error in both formats, as the spec's Errors section has it; returns the description.

    "code - The error code representing the type of error. In most cases, this should match
    the HTTP status code returned in the HTTP header." "description - A human readable
    description of the error that occurred." "(the response is an array)"
    """
    errors = await both(client, method, resource, "errors", status=status, **kwargs)
    assert isinstance(errors, list) and len(errors) >= 1
    for e in errors:
        assert set(e) == {"code", "description"}
        assert e["code"] == status and e["description"]
    return errors[0]["description"]
