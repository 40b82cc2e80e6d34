"""A log line never carries a resident's numbers or plate, however a clerk parted them: the
logs' last processor scrubs every string (an exception's message can quote a row), with the
same rules as the events (``shared.runtime.logs``)."""

from __future__ import annotations

import io

import orjson
import structlog

from shared.kernel.privacy import REDACTED_ID, REDACTED_PHONE, REDACTED_PLATE
from shared.runtime.logs import log_processors


def test_an_error_quoting_a_row_is_logged_without_the_numbers_and_the_plate_in_it() -> None:
    out = io.StringIO()
    logger = structlog.wrap_logger(structlog.PrintLogger(out), processors=log_processors())
    try:
        raise ValueError("row rejected: 电话138；0013；8000 证件310115～19850312～123X "
                         "车牌沪A·52917 座机021\n5432\n1234")
    except ValueError:
        logger.exception("import.failed", detail=["备用139—0013—8000"])
    line = orjson.loads(out.getvalue())
    text = orjson.dumps(line).decode()
    for clear in ("0013", "19850312", "52917", "5432"):
        assert clear not in text, clear
    assert REDACTED_PLATE in line["exception"] and REDACTED_ID in line["exception"]
    assert line["detail"] == [f"备用{REDACTED_PHONE}"]
