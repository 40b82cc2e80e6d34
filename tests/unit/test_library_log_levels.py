"""A service's log holds its own lines, not a line per HTTP call a library makes: httpx logs
every request at INFO (follow-up's and feedback's free text goes to intake at every write);
its warnings still come through."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shared.runtime.logs import adopt_stdlib_logging

_TOUCHED = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """adopt_stdlib_logging sets process-wide loggers: put them back for the next tests."""
    kept = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level,
                logging.getLogger(n).propagate) for n in _TOUCHED}
    yield
    for name, (handlers, level, propagate) in kept.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_httpx_says_only_what_went_wrong_at_the_services_info_level() -> None:
    adopt_stdlib_logging("INFO")
    httpx_log = logging.getLogger("httpx")
    assert not httpx_log.isEnabledFor(logging.INFO), "a line per request"
    assert httpx_log.isEnabledFor(logging.WARNING)
    assert logging.getLogger("sixstep.intake").isEnabledFor(logging.INFO)
