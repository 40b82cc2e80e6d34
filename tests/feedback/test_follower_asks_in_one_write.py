"""Feedback's intake follower asks a batch's surveys in one write: the resolutions whose one
command is their survey's request go to group commit as one command
(``Feedback.request_surveys``), not one each (feed59: each command cost the writer its own
queue item, due time, answer and await, ~7 events read for every one). Each survey is still
asked once: the batch applied again after its transaction rolled back (its requests stored
by then, on the writer's own connection) asks nothing twice: a survey the store has already
is left as it is."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.feedback.consumer import IntakeFollower
from services.feedback.domain import survey_id_for_resolution
from services.feedback.main import create_app
from shared.contracts import Envelope
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.support import bare_envelope, running

#: The calendar's edges: a Sunday window, New Year's Eve at 23:30 in Shanghai, a year the
#: holiday package does not know (provisional), a leap day.
MOMENTS = [datetime(2026, 12, 20, 2, tzinfo=UTC), datetime(2026, 12, 31, 15, 30, tzinfo=UTC),
           datetime(2027, 3, 8, 2, tzinfo=UTC), datetime(2028, 2, 29, 2, tzinfo=UTC)]


class RolledBack(Exception):
    pass


def resolved_at_the_window(case_id: uuid.UUID, at: datetime) -> list[Envelope]:
    return [bare_envelope("CaseOpened", at, case_id=case_id, payload={
                "counter_id": "window-3", "clerk_id": "clerk-017", "channel": "counter",
                "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": str(uuid.uuid4())}),
            bare_envelope("CaseResolved", at, case_id=case_id,
                          payload={"outcome": "resolved"})]


@pytest.mark.parametrize("at", MOMENTS, ids=["sunday", "new-years-eve", "2027", "leap-day"])
async def test_a_mornings_resolutions_are_asked_in_one_write_and_once(
        settings: Settings, at: datetime) -> None:
    app = create_app(settings, sender=KeptSender(), clock=Clock(at))
    async with running(app, anonymous=True):
        committer = app.state.runtime.committer
        commands: list[int] = []
        send = committer.send

        def counted(command: Any, ids: Any) -> Any:
            commands.append(len(ids))
            return send(command, ids)

        committer.send = counted
        follower = IntakeFollower(app.state.feedback)
        cases = [uuid.uuid4() for _ in range(3)]
        batch = [e for case in cases for e in resolved_at_the_window(case, at)]
        async with app.state.pool.acquire() as conn:
            # The batch's transaction rolled back after its requests were stored (the
            # process killed before its commit), then the same batch delivered again.
            with pytest.raises(RolledBack):
                async with conn.transaction():
                    await follower.apply(conn, batch)
                    raise RolledBack
            async with conn.transaction():
                await follower.apply(conn, batch)
        assert commands == [3, 3], "each delivery's three requests as one command"
        repository = committer.app.repository
        for resolved in batch[1::2]:
            survey = await asyncio.to_thread(repository.get,
                                             survey_id_for_resolution(resolved.event_id))
            assert survey.version == 1 and survey.status == "requested", "asked once"
            assert survey.case_id == resolved.case_id
