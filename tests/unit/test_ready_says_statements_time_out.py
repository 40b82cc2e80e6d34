"""/ready's reasons name a consumer whose statements run out of time (DB_STATEMENT_TIMEOUT_S),
since when and what to look at; the reason goes once a batch went through again."""

from __future__ import annotations

import time

from shared.bus.consumer import Consumer
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings


def test_a_consumer_whose_statements_time_out_makes_the_service_degraded_until_one_goes_through(
        ) -> None:
    settings = Settings(db_statement_timeout_s=30)
    consumer = Consumer(settings=settings, nc=None, pool=None,  # type: ignore[arg-type]
                        name="intake-cases", handler=None,  # type: ignore[arg-type]
                        filter_subjects=["sixstep.intake.>"])
    runtime = Runtime(settings, "intake", None, None, None, None, None)  # type: ignore[arg-type]
    runtime.consumers = runtime.driven = {"intake-cases": consumer}
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
    settings = Settings(db_statement_timeout_s=30)
    consumer = Consumer(settings=settings, nc=None, pool=None,  # type: ignore[arg-type]
                        name="intake-verdicts", handler=None,  # type: ignore[arg-type]
                        filter_subjects=["sixstep.feedback.>"])
    runtime = Runtime(settings, "intake", None, None, None, None, None)  # type: ignore[arg-type]
    runtime.consumers = runtime.driven = {"intake-verdicts": consumer}
    consumer.stats.timing_out_since = time.time() - 95
    consumer.stats.last_timeout = "Unavailable: the vault's key bucket 3 is missing"
    [reason] = runtime._path_degradations({})
    assert reason.startswith("consumer intake-verdicts: a command it sends is refused as "
                             "unavailable (Unavailable: the vault's key bucket 3 is missing)")
    assert "'A consumer retrying for ever'" in reason and "lock" not in reason
