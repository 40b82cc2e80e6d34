"""A log line never carries a resident's numbers or plate, however a clerk parted them: the
logs' last processor scrubs every string (an exception's message can quote a row), with the
same rules as the events (``shared.runtime.logs``)."""

from __future__ import annotations

import io

import orjson
import pytest
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
    # Not the line's own timestamp: its microseconds held 5432 once (08:17:30.543280).
    text = orjson.dumps({k: v for k, v in line.items() if k != "timestamp"}).decode()
    for clear in ("0013", "19850312", "52917", "5432"):
        assert clear not in text, clear
    assert REDACTED_PLATE in line["exception"] and REDACTED_ID in line["exception"]
    assert line["detail"] == [f"备用{REDACTED_PHONE}"]


def test_a_survey_sent_line_keeps_its_ids_without_the_rules_reading_them(monkeypatch) -> None:
    """The ids of a ``survey.sent`` line (case, survey, the opaque resident) are ids however
    their digits read (a phone's eleven in the last group): kept whole without the rules run
    over them (0.2-0.35 ms of CPU each, every case at a quiet hour); the link beside them and
    a phone in a note are still scrubbed."""
    read, out, logger = _read_by_the_rules(monkeypatch)
    ids = ["5f0c1a2b-3c4d-4e5f-8a9b-013912345678", "13812345-6781-3812-3456-013812345678",
           "0C6B2A1E-9D8F-4A3B-B2C1-D4E5F6A7B8C9"]
    logger.info("survey.sent", survey_id=ids[0], case_id=ids[1], resident_id=ids[2],
                link=f"https://center.example/s/{ids[0]}?t=abcdef…", note="回电13912345678")
    line = orjson.loads(out.getvalue())
    assert [line["survey_id"], line["case_id"], line["resident_id"]] == ids
    assert line["note"] == f"回电{REDACTED_PHONE}"
    assert not set(ids) & set(read), read


def test_a_survey_sent_line_a_case_reads_its_times_and_repeated_words_with_no_rule(
        monkeypatch) -> None:
    """Feedback's workers write a ``survey.sent`` line a case, on the loop the follower, the
    relay and the views share: its times (the line's own and the survey's expiry) are times
    whatever their digits, and its channel, purpose, center and counter are the same few
    words line after line; the rules read none of the times and each word once (the line
    took ~1 ms of CPU, latency56). A note with a phone in it is scrubbed every time it comes,
    a time with a phone after it too, and what is remembered stays bounded."""
    import shared.runtime.logs as logs

    monkeypatch.setattr(logs, "_clean", {}, raising=False)
    read, out, logger = _read_by_the_rules(monkeypatch)
    expiries = ["2026-12-27T23:30:00.138001+08:00", "2027-02-28T08:17:30.543280Z",
                "2028-02-29T16:00:00+00:00"]
    for expires_at in expiries:
        logger.info("survey.sent", channel="sms", purpose="resolution", center_id="c017",
                    counter_id="c017-w3", expires_at=expires_at, note="回电13912345678",
                    late=f"{expires_at} 回电13912345678")
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line["expires_at"] for line in lines] == expiries
    assert all(line["note"] == f"回电{REDACTED_PHONE}" for line in lines)
    assert all(line["late"].endswith(f"回电{REDACTED_PHONE}") for line in lines)
    assert not {*expiries, *(line["timestamp"] for line in lines)} & set(read), read
    for word in ("survey.sent", "sms", "resolution", "c017", "c017-w3", "info"):
        assert read.count(word) == 1, (word, read.count(word))
    assert read.count("回电13912345678") == 3

    monkeypatch.setattr(logs, "CLEAN_KEPT", 5, raising=False)
    for n in range(12):
        logger.info("counter.opened", counter_id=f"c017-w{n}")
    assert len(logs._clean) <= 5


def _read_by_the_rules(monkeypatch: pytest.MonkeyPatch
                       ) -> tuple[list[str], io.StringIO, structlog.typing.FilteringBoundLogger]:
    """Every text the logs' scrubber hands to ``redact`` (into the list), and a logger
    through the shipped processors writing into the buffer."""
    import shared.runtime.logs as logs

    read: list[str] = []
    real = logs.redact

    def counted(text: str) -> str:
        read.append(text)
        return real(text)

    monkeypatch.setattr(logs, "redact", counted)
    out = io.StringIO()
    logger = structlog.wrap_logger(structlog.PrintLogger(out), processors=log_processors())
    return read, out, logger
