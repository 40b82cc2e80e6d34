"""A consumer's dead letters go to ``dlq.<prefix>.<service>.<consumer>``, the service read
from the name up to its first ``-``, and the shipped NATS lets each service's user publish
under its own service only. A consumer named otherwise (``cases``, ``intake_cases``, or
another service's ``followup-rules`` added by intake) could not write a dead letter: the
server refused it, and the consumer handed its batch back for ever. The service refuses
such a name when it starts, not when the first event fails."""

from __future__ import annotations

import pytest

from shared.runtime.lifecycle import Runtime
from shared.runtime.metrics import Metrics
from shared.settings import Settings


def intake() -> Runtime:
    return Runtime(Settings(roles="api"), "intake", None, None, None, None,  # type: ignore[arg-type]
                   Metrics("intake"))


@pytest.mark.parametrize("name", ["cases", "intake_cases", "followup-rules", "intakecases-x"])
def test_a_consumer_whose_name_does_not_say_its_service_is_refused_at_start(name: str) -> None:
    with pytest.raises(ValueError, match="must begin with 'intake-'"):
        intake().add_consumer(name, object(), ["sixstep.intake.*.*"])  # type: ignore[arg-type]


def test_the_shipped_consumer_name_and_its_partitioned_durable_are_taken() -> None:
    runtime = intake()
    runtime.add_consumer("intake-cases", object(), ["sixstep.intake.*.*"])  # type: ignore[arg-type]
    assert runtime.filters_for("intake-cases-p0_1") == ["sixstep.intake.*.*"]
