"""An answer recorded by staff names who recorded it: the token's subject, never a name from
the body. A supervisor may record for a clerk; then both are kept. Neither may be someone who
opened or served the case (代评: 403 ``self_rating``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.feedback.application import ResolvedCase
from services.feedback.domain import rectification_id_for, survey_id_for_resolution
from services.feedback.main import create_app
from services.followup.main import create_app as followup_app
from shared.kernel.serving import help_task_id_for
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, key
from tests.support import TEST_CENTER, bearer, headers, running, stream_envelopes, wait_until


async def test_a_clerk_records_answers_in_their_own_name_and_a_supervisor_for_a_clerk(
        settings: Settings) -> None:
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback

        async def phone_survey() -> uuid.UUID:
            resolved = ResolvedCase(
                case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="phone-desk",
                clerk_id="clerk-005", service_item="SA-HARDSHIP-SUBSIDY",
                intake_channel="phone", resident_id=uuid.uuid4(),
                resolved_event_id=uuid.uuid4(), resolved_at=feedback.clock.now())
            return (await feedback.request_survey(resolved)).aggregate_id

        clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
        supervisor = bearer(settings, role=Role.SUPERVISOR, sub="director-01")
        first, second, third = [await phone_survey() for _ in range(3)]

        async def record(survey: uuid.UUID, who: dict[str, str], clerk_id: str) -> dict:
            r = await client.post(f"/surveys/{survey}/rating", headers={**headers(key()), **who},
                                  json={"level": "satisfied", "clerk_id": clerk_id})
            return {"status": r.status_code, **r.json()}

        # A clerk cannot put a colleague's name on an answer (and on the figures per clerk).
        spoofed = await record(first, clerk, "clerk-099")
        assert spoofed["status"] == 403 and spoofed["error"]["code"] == "forbidden_actor"
        assert (await record(first, clerk, "clerk-017"))["status"] == 200
        # A supervisor records the phone desk's answer for the clerk who took the call.
        behalf = await record(second, supervisor, "clerk-021")
        assert behalf["status"] == 200
        own = await record(third, supervisor, "director-01")
        assert own["status"] == 200

        r = await client.get(f"/surveys/{second}", params={"after": behalf["position"]},
                             headers=supervisor)
        assert (r.json()["answered_by"], r.json()["recorded_by"]) == ("clerk-021", "director-01")

    async def rated() -> bool:
        return sum(e.type == "RatingGiven" for e in await stream_envelopes(settings)) == 3

    await wait_until(rated, what="the three answers on the stream")
    answers = {e.aggregate_id: e for e in await stream_envelopes(settings)
               if e.type == "RatingGiven"}
    assert (answers[first].actor, answers[first].payload["clerk_id"]) == ("clerk-017",
                                                                          "clerk-017")
    assert (answers[second].actor, answers[second].payload["clerk_id"]) == ("director-01",
                                                                            "clerk-021")
    assert (answers[third].actor, answers[third].payload["clerk_id"]) == ("director-01",
                                                                          "director-01")


async def test_the_clerk_who_served_cannot_answer_with_the_residents_link_while_signed_in(
        settings: Settings) -> None:
    """The survey's QR code is on the serving clerk's screen. Sent with the link's token and
    their own bearer token, their answer was taken as the resident's own (actor resident,
    counted in the residents' satisfaction), past the 代评 check their staff answer meets. Now
    403 ``self_rating``; a colleague's token beside the link changes nothing."""
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback

        async def survey() -> tuple[uuid.UUID, str]:
            resolved = ResolvedCase(
                case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="window-3",
                clerk_id="clerk-017", service_item="SA-HARDSHIP-SUBSIDY",
                intake_channel="counter", resident_id=uuid.uuid4(),
                resolved_event_id=uuid.uuid4(), resolved_at=feedback.clock.now())
            survey_id = (await feedback.request_survey(resolved)).aggregate_id
            return survey_id, feedback.tokens.issue(survey_id, feedback.clock.now()
                                                    + timedelta(days=7))

        own, own_link = await survey()
        r = await client.post(f"/surveys/{own}/rating", json={
            "token": own_link, "level": "very_satisfied"}, headers={
            **headers(key()), **bearer(settings, role=Role.CLERK, sub="clerk-017")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "self_rating", r.text
        other, other_link = await survey()
        r = await client.post(f"/surveys/{other}/rating", json={
            "token": other_link, "level": "satisfied"}, headers={
            **headers(key()), **bearer(settings, role=Role.SUPERVISOR, sub="director-01")})
        assert r.status_code == 200, r.text
        r = await client.post(f"/surveys/{own}/rating", json={  # the resident, at last
            "token": own_link, "level": "satisfied"}, headers=headers(key()))
        assert r.status_code == 200, r.text


#: A supervisor records the answer given on the call: (sub, level) -> status and body.
Recording = Callable[..., Awaitable[dict]]


def escalated_case() -> tuple[History, uuid.UUID]:
    """clerk-017's case, opened on Friday 18 December 2026 for a resident with nobody on file
    (their survey is a call), escalated at 09:30 to the supervisor team (帮办)."""
    history = History(TEST_CENTER)
    case_id = history.case("2026-12-18T09:00:00+08:00", resident_id=None)
    history.step(case_id, "ActionTaken", "2026-12-18T09:30:00+08:00", kind="escalated",
                 description="政策冲突需协调")
    return history, case_id


async def as_supervisor(client: httpx.AsyncClient, settings: Settings, sub: str, path: str,
                        body: dict) -> httpx.Response:
    return await client.post(path, json=body, headers={
        **headers(key()), **bearer(settings, role=Role.SUPERVISOR, sub=sub)})


@asynccontextmanager
async def calling(settings: Settings, history: History, resolved: Any, now: str
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, uuid.UUID, Recording, FastAPI]]:
    """Feedback at ``now`` reading ``history``: its client, the resolution's survey, and a
    supervisor recording the answer the resident gave on the call (a level, very satisfied
    unless said), as the status and the body of the answer."""
    survey = survey_id_for_resolution(resolved.event_id)
    app = create_app(settings, sender=KeptSender(), clock=Clock(datetime.fromisoformat(now)))
    async with running(app, anonymous=True) as client:
        await history.publish(settings)

        async def record(sub: str, level: str = "very_satisfied") -> dict:
            r = await as_supervisor(client, settings, sub, f"/surveys/{survey}/rating",
                                    {"level": level, "clerk_id": sub})
            return {"status": r.status_code, **r.json()}

        yield client, survey, record, app


async def until_asked(client: httpx.AsyncClient, settings: Settings, survey: uuid.UUID) -> None:
    """Until feedback has asked the resolution's survey (as director-01 reads it)."""

    async def asked() -> bool:
        return (await client.get(f"/surveys/{survey}", headers=bearer(
            settings, role=Role.SUPERVISOR, sub="director-01"))).status_code == 200

    await wait_until(asked, what="the resolution's survey")


@asynccontextmanager
async def help_task_finished_after_resolution(settings: Settings) -> AsyncIterator[
        tuple[httpx.AsyncClient, uuid.UUID, Recording]]:
    """The escalated case resolved on Sunday 20 December at 10:00, its help task finished by
    supervisor-02 at 10:30 (open past its deadline), feedback at 10:40 once it has asked the
    resolution's survey and read supervisor-02 among who served the case."""
    history, case_id = escalated_case()
    resolved = history.resolved(case_id, "2026-12-20T10:00:00+08:00")
    history.add("followup", "HelpTaskDone", "2026-12-20T10:30:00+08:00", {}, case_id=case_id,
                aggregate_id=uuid.uuid4(), actor="supervisor-02")
    async with calling(settings, history, resolved, "2026-12-20T10:40:00+08:00") as (
            client, survey, record, app):

        async def read() -> bool:
            asked = await client.get(f"/surveys/{survey}", headers=bearer(
                settings, role=Role.SUPERVISOR, sub="director-01"))
            served = await app.state.pool.fetchval(
                "SELECT served_by FROM intake_cases WHERE case_id = $1", case_id)
            return asked.status_code == 200 and "supervisor-02" in (served or ())

        await wait_until(read, what="the survey, then the help task's step read")
        yield client, survey, record


async def test_the_supervisor_who_did_the_help_task_does_not_record_the_answer(
        settings: Settings) -> None:
    """clerk-017's case is escalated on Friday 18 December to the supervisor team (帮办, a
    task naming nobody); supervisor-02 takes it and does it; the case is resolved on Sunday
    the 20th and its resident, with nobody on file, is to be called. supervisor-02 records
    the answer: 403 ``self_rating``, as the colleague an escalation names (they served the
    resident); director-01 records it. Before, only intake's steps made staff of a case."""
    history, case_id = escalated_case()
    task = uuid.uuid4()
    for type_, at in (("HelpTaskAccepted", "2026-12-18T10:00:00+08:00"),
                      ("HelpTaskDone", "2026-12-18T15:00:00+08:00")):
        history.add("followup", type_, at, {}, case_id=case_id, aggregate_id=task,
                    actor="supervisor-02")
    resolved = history.resolved(case_id, "2026-12-20T10:00:00+08:00")
    async with calling(settings, history, resolved, "2026-12-20T10:05:00+08:00") as (
            client, survey, record, _):
        await until_asked(client, settings, survey)

        own = await record("supervisor-02")
        assert own["status"] == 403 and own["error"]["code"] == "self_rating", own
        assert (await record("director-01"))["status"] == 200


async def test_the_supervisor_who_finishes_the_help_task_after_the_resolution_does_not_record(
        settings: Settings) -> None:
    """clerk-017's case is escalated on Friday 18 December (帮办, the supervisor team's task);
    it is resolved on Sunday the 20th with the task past its deadline, so the task stays open
    for a supervisor to finish, and the resolution's survey (a call: nobody on file) is asked
    naming nobody else. supervisor-02 finishes the task at 10:30 and then calls the resident:
    403 ``self_rating``, as follow-up refuses them the check's verdict; director-01 records
    the resident's "dissatisfied". The bad review is supervisor-02's work too: they neither
    triage it nor decide clerk-017's appeal (403 ``self_decision``); director-02 does. Before,
    the survey and its rectification kept only who served the case when it was asked:
    supervisor-02's "very satisfied" stood (代评), and their decision of the appeal."""
    async with help_task_finished_after_resolution(settings) as (client, survey, record):

        own = await record("supervisor-02")
        assert own["status"] == 403 and own["error"]["code"] == "self_rating", own
        assert (await record("director-01", "dissatisfied"))["status"] == 200
        path = f"/rectifications/{rectification_id_for(survey)}"

        async def judge(sub: str, what: str, body: dict) -> httpx.Response:
            return await as_supervisor(client, settings, sub, f"{path}/{what}", body)

        triage = {"track": "explain"}
        r = await judge("supervisor-02", "triage", triage)
        assert r.status_code == 403 and r.json()["error"]["code"] == "self_decision", r.text
        assert (await judge("director-02", "triage", triage)).status_code == 200
        r = await client.post(f"{path}/appeal", json={"reasons": "居民误解政策"}, headers={
            **headers(key()), **bearer(settings, role=Role.CLERK, sub="clerk-017")})
        assert r.status_code == 200, r.text
        decision = {"decision": "upheld", "grounds": "mistaken", "reasons": "误评"}
        r = await judge("supervisor-02", "appeal/decision", decision)
        assert r.status_code == 403 and r.json()["error"]["code"] == "self_decision", r.text
        assert (await judge("director-02", "appeal/decision", decision)).status_code == 200


async def test_the_supervisor_who_finishes_the_help_task_after_the_resolution_does_not_close(
        settings: Settings) -> None:
    """The same Sunday: supervisor-02 finishes the help task at 10:30, after the resolution;
    director-01 records the resident's "dissatisfied" and director-02 triages the bad review.
    supervisor-02 records its outcome (整改结果): 403 ``self_decision``, as for its triage and
    its appeal's decision (nobody closes the rectification about their own work);
    director-02 records it. Before, the outcome read only who served the case when the
    survey was asked: supervisor-02 closed it."""
    async with help_task_finished_after_resolution(settings) as (client, survey, record):
        assert (await record("director-01", "dissatisfied"))["status"] == 200
        path = f"/rectifications/{rectification_id_for(survey)}"
        r = await as_supervisor(client, settings, "director-02", f"{path}/triage",
                                {"track": "explain"})
        assert r.status_code == 200, r.text
        outcome = {"outcome": "explained", "actions": "电话说明政策"}
        r = await as_supervisor(client, settings, "supervisor-02", f"{path}/outcome", outcome)
        assert r.status_code == 403 and r.json()["error"]["code"] == "self_decision", r.text
        assert r.json()["error"]["details"]["because"] == "served", r.text
        r = await as_supervisor(client, settings, "director-02", f"{path}/outcome", outcome)
        assert r.status_code == 200, r.text


@dataclass
class TeamTask:
    """The escalated case's help task (the supervisor team's), open in follow-up."""

    clock: Clock
    history: History
    task: uuid.UUID
    resolved: Any  # the case's resolution on Sunday 20 December at 10:00, not yet published


@asynccontextmanager
async def team_task_opened(settings: Settings) -> AsyncIterator[
        tuple[httpx.AsyncClient, TeamTask]]:
    """Follow-up (on Sunday 20 December at 09:55) once it opened the help task of
    ``escalated_case``: its client, and the task."""
    clock = Clock(datetime.fromisoformat("2026-12-20T09:55:00+08:00"))
    history, case_id = escalated_case()
    task = help_task_id_for(history.envelopes[-1].event_id)
    opened = history.take()
    resolved = history.resolved(case_id, "2026-12-20T10:00:00+08:00")
    async with running(followup_app(settings, clock)) as followup:
        await opened.publish(settings)

        async def task_opened() -> bool:
            return (await followup.get(f"/help-tasks/{task}")).status_code == 200

        await wait_until(task_opened, what="the escalation's help task")
        yield followup, TeamTask(clock, history, task, resolved)


async def take_and_do(followup: httpx.AsyncClient, task: uuid.UUID,
                      auth: dict[str, str]) -> None:
    """The help task accepted and done by ``auth``'s supervisor."""
    for step in ("accept", "done"):
        r = await followup.post(f"/help-tasks/{task}/{step}", json={},
                                headers={**headers(key()), **auth})
        assert r.status_code == 200, r.text


async def refused_once_read(record: Recording) -> None:
    """Once feedback has read the help task's work (no more 504), supervisor-02 who did it
    is refused the answer (403 ``self_rating``) and director-01 records it."""
    own: dict = {}

    async def refused() -> bool:
        own.update(await record("supervisor-02"))
        return own["status"] != 504

    await wait_until(refused, what="feedback reading the help task's work")
    assert own["status"] == 403 and own["error"]["code"] == "self_rating", own
    assert (await record("director-01"))["status"] == 200


async def test_the_supervisor_who_did_the_help_task_a_moment_ago_waits_for_feedback_to_know_it(
        settings: Settings) -> None:
    """clerk-017's case is escalated on Friday 18 December to the supervisor team (帮办);
    supervisor-02 takes the task and marks it done on Sunday the 20th at 09:58, and the case
    is resolved at 10:00. Follow-up's events reach feedback on their own path (held here: its
    relay is down, as under a backlog), so feedback knows the survey, not yet that
    supervisor-02 worked the case. supervisor-02 records the resident's "very satisfied" on
    the call: 504 ``read_model_behind``, nothing recorded (before, it stood: 代评 by read model
    lag). Once feedback has read the task's work: 403 ``self_rating``; director-01 records."""
    quick = settings.model_copy(update={"read_wait_timeout_s": 0.5})
    supervisor_02 = bearer(quick, role=Role.SUPERVISOR, sub="supervisor-02")
    async with team_task_opened(quick) as (_, opened):
        clock, history, task, resolved = (opened.clock, opened.history, opened.task,
                                          opened.resolved)
    # Follow-up answers (its API), its relay does not run: what it stores stays unpublished.
    async with running(followup_app(quick.model_copy(update={"roles": {"api"}}), clock)) as api:
        await take_and_do(api, task, supervisor_02)
        async with calling(quick, history, resolved, "2026-12-20T10:05:00+08:00") as (
                client, survey, record, _):
            await until_asked(client, quick, survey)
            own = await record("supervisor-02")
            assert own["status"] == 504 and own["error"]["code"] == "read_model_behind", own
            async with running(followup_app(quick, clock)):  # its relay publishes the work
                await refused_once_read(record)


@pytest.mark.parametrize("read_before_kept", [False, True])
async def test_a_partitioned_feedback_knows_who_did_the_help_task_and_lets_another_record(
        settings: Settings, read_before_kept: bool) -> None:
    """Feedback's workers run partitioned (``CONSUMER_PARTITIONS``, as deploy/k8s ships
    them: durables ``feedback-intake-p…``). clerk-017's case is escalated on Friday 18
    December to the supervisor team; supervisor-02 accepts the task and marks it done on
    Sunday the 20th, the case is resolved at 10:00 and feedback has read all of it. The
    answer then waited on the progress of ``feedback-intake``, a name no partitioned worker
    writes: 504 ``read_model_behind`` for ever, for supervisor-02 and for director-01, who
    never served the case. Now the case's row says how far its help tasks' work was read:
    403 ``self_rating`` for supervisor-02, and director-01 records. ``read_before_kept``: the
    task's row kept from before its ``read_up_to`` (its work read by an earlier release): the
    progress of the partitioned durable that takes the case says it."""
    quick = settings.model_copy(update={
        "read_wait_timeout_s": 0.5, "consumer_partitions": f"0-{settings.partitions - 1}"})
    supervisor_02 = bearer(quick, role=Role.SUPERVISOR, sub="supervisor-02")
    async with team_task_opened(quick) as (followup, opened):
        history, task, resolved = opened.history, opened.task, opened.resolved
        await take_and_do(followup, task, supervisor_02)
        async with calling(quick, history, resolved, "2026-12-20T10:05:00+08:00") as (
                client, survey, record, app):
            await until_asked(client, quick, survey)
            if read_before_kept:
                pool = app.state.pool

                async def read() -> bool:
                    return await pool.fetchval("SELECT read_up_to FROM case_help_tasks"
                                               " WHERE task_id = $1", task) is not None

                await wait_until(read, what="the help task's work read")
                await pool.execute("UPDATE case_help_tasks SET read_up_to = NULL")
            await refused_once_read(record)
