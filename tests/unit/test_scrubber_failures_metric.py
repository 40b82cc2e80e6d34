"""A rule of the scrubber that raises is counted where an operator looks: ``RedactionFailed``
is a Python warning, shown once a place by the default filters and never in the services'
JSON logs, so a scrubber defect refusing clerks' notes all day was seen by nobody but the
clerks. ``/metrics`` serves ``sixstep_scrubber_failures_total`` and an alert reads it."""

from __future__ import annotations

import warnings

import pytest
from prometheus_client import generate_latest

from shared.kernel.privacy.redaction import (
    REDACTED_TEXT,
    RedactionFailed,
    Unscrubbable,
    redact,
    refusing,
)
from shared.runtime.metrics import Metrics
from tests.support import scrubber_broken_on


def served(metrics: Metrics, outcome: str) -> float:
    """The count ``/metrics`` serves for ``outcome``."""
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith("sixstep_scrubber_failures_total{") and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sixstep_scrubber_failures_total for {outcome}")


def test_a_text_the_scrubber_fails_on_is_counted_by_what_became_of_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = Metrics("intake")
    refused, replaced = served(metrics, "refused"), served(metrics, "replaced")
    scrubber_broken_on("锟斤拷", monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RedactionFailed)
        assert redact("王秀英说锟斤拷") == REDACTED_TEXT  # a log line's: blanked whole
        assert redact("又是锟斤拷") == REDACTED_TEXT
        with refusing(), pytest.raises(Unscrubbable):  # a clerk's note: asked again
            redact("想申请低保，锟斤拷")
        assert redact("想申请低保") == "想申请低保"  # a text the rules read: not counted
    assert served(metrics, "replaced") == replaced + 2
    assert served(metrics, "refused") == refused + 1
    assert 'service="intake"' in generate_latest(metrics.registry).decode()
