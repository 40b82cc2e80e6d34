"""GeoReport v2 on the wire: the .json and .xml renderings, W3C date-times, the error list.

The spec defines XML (schemaless, no namespace, UTF-8 with an XML declaration) and derives JSON
from it by the Spark convention: the root element is dropped, a list element becomes an array of
its items, an empty element becomes null. Routes build plain dicts and lists once and
:func:`render` writes either.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import Response

MEDIA_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
DEFAULT_FORMAT = "xml"  # the format the spec requires; errors use it when the URL names none

ITEM_TAGS = {
    "services": "service", "attributes": "attribute", "values": "value",
    "service_requests": "request", "errors": "error", "endpoints": "endpoint",
    "formats": "format",
}

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Open311Error(Exception):
    """Ends a request with the spec's error list: 404 missing, 403 api_key, 400 the rest."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        for name, child in value.items():
            element.append(_element(name, child))
    elif isinstance(value, list):
        for child in value:
            element.append(_element(ITEM_TAGS[tag], child))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML.sub("", str(value))
    return element


def render(fmt: str, root: str, data: Any, status: int = 200) -> Response:
    """``data`` as the document ``root`` (e.g. ``service_requests``) in ``fmt``."""
    if fmt == "json":
        body = orjson.dumps(data)
    else:
        body = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                + ET.tostring(_element(root, data), encoding="utf-8", xml_declaration=False))
    return Response(body, status_code=status, headers={"content-type": MEDIA_TYPES[fmt]})


def error(fmt: str, status: int, description: str) -> Response:
    return render(fmt, "errors", [{"code": status, "description": description}], status)


# -- date-times -----------------------------------------------------------------------------

_W3C = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?")


def w3c(moment: datetime | None, tz: ZoneInfo) -> str | None:
    """A moment as the spec writes it: ``2026-03-02T09:15:00+08:00`` in the center's zone."""
    if moment is None:
        return None
    return moment.astimezone(tz).isoformat(timespec="seconds")


def end_of(day: date | None, tz: ZoneInfo) -> datetime | None:
    """A deadline date means "by the end of that day" at the center."""
    if day is None:
        return None
    return datetime.combine(day, time(23, 59, 59), tz)


def parse_w3c(text: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """A W3C date-time with its zone, or a date (the center's day; its end when ``end``)."""
    if not _W3C.fullmatch(text):
        raise ValueError(text)
    if "T" not in text:
        day = date.fromisoformat(text)
        if end:
            return datetime.combine(day + timedelta(days=1), time(0), tz) - timedelta(
                microseconds=1)
        return datetime.combine(day, time(0), tz)
    return datetime.fromisoformat(text)
