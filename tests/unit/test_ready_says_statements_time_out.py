"""/ready's reasons name a consumer whose statements run out of time (DB_STATEMENT_TIMEOUT_S),
since when and what to look at; the reason goes once a batch went through again."""

from __future__ import annotations

import time

from shared.bus.consumer import Consumer
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings


def _intake_with(name: str) -> tuple[Consumer, Runtime]:
    """Intake's runtime, server-free, driving one consumer ``name``."""
    settings = Settings(db_statement_timeout_s=30)
    consumer = Consumer(settings=settings, nc=None, pool=None,  # type: ignore[arg-type]
                        name=name, handler=None,  # type: ignore[arg-type]
                        filter_subjects=["sixstep.intake.>"])
    runtime = Runtime(settings, "intake", None, None, None, None, None)  # type: ignore[arg-type]
    runtime.consumers = runtime.driven = {name: consumer}
    return consumer, runtime


def test_a_consumer_whose_statements_time_out_makes_the_service_degraded_until_one_goes_through(
        ) -> None:
    consumer, runtime = _intake_with("intake-cases")
    assert runtime._path_degradations({}) == []
    consumer.stats.timing_out_since = time.time() - 95
    consumer.stats.last_timeout = "QueryCanceledError: canceling statement due to statement timeout"
    [reason] = runtime._path_degradations({})
    assert reason.startswith("consumer intake-cases: its statements run out of time "
                             "(DB_STATEMENT_TIMEOUT_S 30 s; QueryCanceledError")
    assert "for 95 s (since " in reason and "'A hung statement'" in reason
    consumer._answers_again()
    assert runtime._path_degradations({}) == []


def test_a_consumer_whose_command_is_refused_as_unavailable_is_not_said_to_time_out() -> None:
    """A command refused as unavailable (the vault's key bucket missing) lasts until someone
    puts it right: /ready names it and the runbook's section for it, not a hung statement's
    lock (before: "its statements run out of time ... a lock another session holds?")."""
    consumer, runtime = _intake_with("intake-verdicts")
    consumer.stats.timing_out_since = time.time() - 95
    consumer.stats.last_timeout = "Unavailable: the vault's key bucket 3 is missing"
    [reason] = runtime._path_degradations({})
    assert reason.startswith("consumer intake-verdicts: a command it sends is refused as "
                             "unavailable (Unavailable: the vault's key bucket 3 is missing)")
    assert "'A consumer retrying for ever'" in reason and "lock" not in reason
