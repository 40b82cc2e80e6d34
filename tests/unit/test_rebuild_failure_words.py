"""What ``sixstep rebuild`` says when the database stops it: the read model, the phase, the
PostgreSQL error code and what to do, in one line (no traceback without ``-v``)."""

from __future__ import annotations

import asyncpg
import nats.errors
import pytest

from shared.analytics.rebuild import FailedAt
from shared.cli.rebuild import database_failed

NAMES = {"intake-cases": "intake", "feedback-figures": "feedback.figures"}


def failed(exc: BaseException, consumer: str, phase: str) -> BaseException:
    exc._sixstep_rebuild_failed_at = FailedAt(consumer, phase)  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(("exc", "starts", "todo"), [
    (failed(asyncpg.AdminShutdownError("terminating connection due to administrator command"),
            "intake-cases", "catching up"),
     "intake: catching up failed: PostgreSQL error 57P01 (terminating connection due to "
     "administrator command)", "once PostgreSQL answers again, run the same command"),
    (failed(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of "
                                                "operation"), "feedback-figures",
            "making indexes"),
     "feedback.figures: making indexes failed: PostgreSQL error 08003 (connection was closed",
     "run the same command: it resumes"),
    (failed(asyncpg.InsufficientPrivilegeError("permission denied for schema t_intake"),
            "intake-cases", "switching"),
     "intake: switching failed: PostgreSQL error 42501 (permission denied for schema",
     "give the role the right it lacks"),
    (failed(ConnectionRefusedError(111, "Connection refused"), "intake-cases", "connecting"),
     "intake: connecting failed: the database connection failed (ConnectionRefusedError",
     "once PostgreSQL answers again"),
], ids=["restarted", "connection-lost", "no-right", "refused"])
def test_a_database_error_that_stops_a_rebuild_is_one_line_saying_what_to_do(
        exc: BaseException, starts: str, todo: str) -> None:
    line = database_failed(exc, NAMES)
    assert "\n" not in line
    assert line.startswith(starts), line
    assert todo in line and "every batch committed is kept" in line, line
    assert "sixstep -v rebuild" in line


def test_a_run_given_v_is_not_told_that_v_shows_the_traceback() -> None:
    """``sixstep -v rebuild`` prints the traceback and then the line, which told the operator
    to run with -v for the traceback printed right above it."""
    exc = failed(asyncpg.DiskFullError("could not extend file"), "intake-cases", "catching up")
    line = database_failed(exc, NAMES, verbose=True)
    assert line.startswith("intake: catching up failed: PostgreSQL error 53100"), line
    assert "-v" not in line and "traceback" not in line, line
    assert line.endswith("then run again: it resumes"), line


@pytest.mark.parametrize("exc", [
    asyncpg.InvalidCatalogNameError('database "sixstep_prod" does not exist'),
    asyncpg.InvalidPasswordError('password authentication failed for user "sixstep"'),
    asyncpg.InvalidAuthorizationSpecificationError('role "sixstep" does not exist'),
], ids=["no-such-database", "wrong-password", "no-such-role"])
def test_a_rebuild_that_cannot_log_in_says_to_check_the_url_not_to_start_over(
        exc: BaseException) -> None:
    """A mistyped DATABASE_URL is refused at connection: running again (or with --fresh,
    which it advised "if it fails the same way") cannot help; the URL can."""
    line = database_failed(failed(exc, "intake-cases", "connecting"), NAMES)
    assert line.startswith("intake: connecting failed: PostgreSQL error"), line
    assert "check DATABASE_URL" in line and "--fresh starts over" not in line, line


def test_nats_not_answering_during_the_switch_is_not_blamed_on_postgresql() -> None:
    """NATS restarted while the indexes were made; the switch's pause of the live consumers
    timed out. ``nats: timeout`` is an OSError too: the line said "the database connection
    failed ... once PostgreSQL answers again"."""
    line = database_failed(failed(nats.errors.TimeoutError(), "intake-cases", "switching"),
                           NAMES)
    assert line.startswith("intake: switching failed: NATS did not answer"), line
    assert "once NATS answers again" in line and "PostgreSQL" not in line, line


def test_a_rebuild_refused_because_another_runs_names_that_one_in_one_line() -> None:
    """Two operators (or a retried Job's pod) rebuild feedback's figures at once: the second
    says whose session holds the read model, since when, and what to do."""
    from datetime import UTC, datetime

    from shared.analytics.rebuild import Holder, RebuildBusy
    from shared.cli.rebuild import BUSY, busy

    holder = Holder(4242, "sixstep-rebuild feedback-figures", "10.0.3.7",
                    datetime(2026, 12, 20, 23, 30, 5, tzinfo=UTC))
    line = busy(RebuildBusy("feedback-figures", holder), NAMES)
    assert "\n" not in line
    assert line.startswith("feedback.figures: another rebuild of it is running (pid 4242, "
                           "sixstep-rebuild feedback-figures from 10.0.3.7, since "
                           "2026-12-20 23:30:05+0000); nothing done"), line
    assert "--wait" in line and "pg_terminate_backend(4242)" in line, line
    assert BUSY not in (0, 1, 2, 130)
    over_a_socket = Holder(77, "sixstep-rebuild intake-cases", None, None)
    assert busy(RebuildBusy("intake-cases", over_a_socket), NAMES).startswith(
        "intake: another rebuild of it is running (pid 77, sixstep-rebuild intake-cases); ")
