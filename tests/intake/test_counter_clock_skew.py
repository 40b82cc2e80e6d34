"""A counter tablet whose clock runs 3 minutes fast resolves a case at 23:58 and the network is
down: the page keeps the step (its clock saying 00:01, the next day) and sends it at 00:20.
Then ``occurred_at`` is behind intake's clock and nothing in it shows the tablet's error; the
``sent_at`` the page stamps as it sends (00:23 by the tablet) does, and intake dates the
resolution 23:58, on the day the resident was at the counter. On New Year's Eve in Shanghai,
Sunday 20 December 2026, and 29 February 2028 (a year the holiday package does not know).
A caller that sends no ``sent_at`` is taken as before; a ``sent_at`` more than
OCCURRED_AT_MAX_FUTURE_S off is a 422 naming it, and records nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson

from services.intake.main import create_app
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import SHANGHAI, at
from tests.intake.test_counter_day import CENTER, key, open_case, step
from tests.support import headers, running, stream_envelopes, token_for

FAST = timedelta(minutes=3)
#: The service's clock as the resident sits at the counter, the last minutes of a day.
EDGES = [at(2026, 12, 20, 23, 58), at(2026, 12, 31, 23, 58), at(2028, 2, 29, 23, 58)]


def tablet(moment: datetime) -> str:
    """What the tablet's clock says at ``moment`` (the service's clock)."""
    return (moment + FAST).astimezone(SHANGHAI).isoformat()


async def heard_case(client: Any) -> str:
    case_id = (await open_case(client))["id"]
    r = await step(client, case_id, "hear", {"words": "想问临时救助怎么申请"})
    assert r.status_code == 200, r.text
    return str(case_id)


async def test_a_resolution_queued_offline_on_a_fast_tablet_is_dated_when_it_happened(
        settings: Settings) -> None:
    clock = ManualClock(EDGES[0] - timedelta(minutes=10))
    resolved: dict[str, datetime] = {}
    async with running(create_app(settings, clock=clock)) as client:
        for happened in EDGES:
            clock.set(happened - timedelta(minutes=10))
            case_id = await heard_case(client)
            clock.set(happened + timedelta(minutes=22))  # 00:20: the network is back
            body = {"outcome": "resolved", "emotion_defused": True,
                    "occurred_at": tablet(happened),  # 00:01 by the tablet: the next day
                    "sent_at": tablet(clock.now())}
            k = key()
            r = await step(client, case_id, "resolve", body, k=k)
            assert r.status_code == 200, r.text
            # The answer was lost: the page sends it again, stamped anew, a minute later.
            clock.set(clock.now() + timedelta(minutes=1))
            again = await step(client, case_id, "resolve",
                               body | {"sent_at": tablet(clock.now())}, k=k)
            assert again.status_code == 200 and again.json()["replayed"] is True, again.text
            resolved[case_id] = happened

        # A caller that says nothing of its clock (Open311, a script) is taken as before.
        before = at(2027, 1, 1, 0, 1)
        clock.set(before - timedelta(minutes=10))
        plain = await heard_case(client)
        clock.set(before + timedelta(minutes=20))
        r = await step(client, plain, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                                   "occurred_at": before.isoformat()})
        assert r.status_code == 200, r.text
        resolved[plain] = before

        # A tablet ten minutes off: set its clock right; nothing is recorded.
        off = await heard_case(client)
        r = await client.post(f"/cases/{off}/resolve", headers=headers(key()), json={
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": clock.now().isoformat(),
            "sent_at": (clock.now() + timedelta(minutes=10)).isoformat()})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_command"
        assert r.json()["error"]["details"]["field"] == "sent_at"

    envelopes = await stream_envelopes(settings)
    got = {str(e.case_id): e.occurred_at for e in envelopes if e.type == "CaseResolved"}
    assert got == resolved, "the refused one is not resolved"
    for case_id, happened in resolved.items():
        assert got[case_id].astimezone(SHANGHAI).date() == happened.date(), case_id


async def test_a_script_sending_its_first_request_again_ten_minutes_later_gets_the_first_answer(
        settings: Settings) -> None:
    """A script (curl, a civic app's client) that keeps the request it sent, ``sent_at`` and
    all, and sends the very same bytes again when its answer was lost: ten minutes on, that
    ``sent_at`` is far behind intake's clock, but the key was answered, and a retry answers as
    the first write did (before, a 422 ``sent_at``: the client took the step for refused).
    A new command under a new key with the same old ``sent_at`` is still refused."""
    start = at(2026, 12, 31, 23, 50)
    clock = ManualClock(start)
    async with running(create_app(settings, clock=clock)) as client:
        opening = {"center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
                   "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
                   "occurred_at": start.isoformat(), "sent_at": start.isoformat()}
        opened_key = key()
        opened = await client.post("/cases", json=opening, headers=headers(opened_key))
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["id"]
        heard = await step(client, case_id, "hear", {"words": "想问临时救助怎么申请"})
        assert heard.status_code == 200, heard.text
        resolving = {"outcome": "resolved", "emotion_defused": True,
                     "occurred_at": start.isoformat(), "sent_at": start.isoformat()}
        resolved_key = key()
        first = await step(client, case_id, "resolve", resolving, k=resolved_key)
        assert first.status_code == 200, first.text

        clock.set(start + timedelta(minutes=10))  # 00:00 on 1 January 2027: the same bytes
        again = await client.post("/cases", json=opening, headers=headers(opened_key))
        assert again.status_code == 201 and again.json()["id"] == case_id, again.text
        assert again.json()["replayed"] is True
        again = await step(client, case_id, "resolve", resolving, k=resolved_key)
        assert again.status_code == 200, again.text
        assert again.json()["replayed"] is True
        assert again.json()["version"] == first.json()["version"]

        # Another center's clerk with that key and that old sent_at: refused as for a case
        # nobody has (whether the key was used there is nobody else's business).
        elsewhere = headers(resolved_key) | {
            "Authorization": f"Bearer {token_for(settings, Role.SUPERVISOR, 'SH-XH-TIANPING')}"}
        for target in (case_id, str(uuid.uuid4())):
            refused = await client.post(f"/cases/{target}/resolve", json=resolving,
                                        headers=elsewhere)
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["details"]["field"] == "sent_at"

        # The resolution's key on a visit naming the case: the key is the case's, not the
        # visit's, so this is no retry either.
        visit = {"center_id": CENTER, "counter_id": "window-3", "channel": "counter",
                 "case_id": case_id, "occurred_at": start.isoformat(),
                 "sent_at": start.isoformat()}
        for new in (lambda: client.post("/cases", json=opening, headers=headers(key())),
                    lambda: client.post("/visits", json=visit, headers=headers(resolved_key)),
                    lambda: step(client, case_id, "reopen", {
                        "reason": "居民说没有办好", "occurred_at": start.isoformat(),
                        "sent_at": start.isoformat()})):
            refused = await new()
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["details"]["field"] == "sent_at"

    envelopes = await stream_envelopes(settings)
    assert [e.type for e in envelopes if str(e.case_id) == case_id] == [
        "CaseOpened", "RequestHeard", "CaseResolved"], "nothing more was recorded"
    assert sum(e.type == "CaseOpened" for e in envelopes) == 1
    assert not [e for e in envelopes if e.type == "VisitRecorded"]


def trickling(clock: ManualClock, body: dict[str, Any], by: timedelta) -> Any:
    """A request body that reaches intake ``by`` after its headers (a slow network, a long
    queue): intake's clock moves on as the body is first read, past the front door."""
    async def chunks() -> Any:
        clock.advance(by)
        yield orjson.dumps(body)
    return chunks()


def observed(app: Any, name: str) -> float:
    """How many writes intake's histogram ``name`` counted."""
    return app.state.runtime.metrics.registry.get_sample_value(
        f"{name}_count", {"service": "intake"}) or 0.0


async def test_a_step_whose_body_spends_a_minute_in_the_service_is_dated_when_it_was_sent(
        settings: Settings) -> None:
    """A tablet whose clock is right sends a resolution at 23:58 on the day's last minutes;
    the request's headers reach intake's front door then, its body a minute later (a slow
    network, a long queue in the service). Measured against intake's clock as its command
    ran, ``sent_at`` read as a tablet a minute slow and moved the resolution to 23:59, or
    past midnight into the next day (and the next year on 31 December). Measured against the
    moment the request came in at the front door, the clock is right and nothing moves. A
    tablet that really is four minutes slow is moved, and counted as slow (before, only fast
    clocks were counted: a slow one was invisible to ops)."""
    app = create_app(settings, clock=(clock := ManualClock(EDGES[0])))
    resolved: dict[str, datetime] = {}
    async with running(app) as client:
        slow_before = observed(app, "sixstep_occurred_at_behind_seconds")
        for happened in [*EDGES, at(2027, 6, 30, 23, 59)]:
            clock.set(happened - timedelta(minutes=10))
            case_id = await heard_case(client)
            clock.set(happened)
            body = {"outcome": "resolved", "emotion_defused": True,
                    "occurred_at": happened.isoformat(), "sent_at": clock.now().isoformat()}
            r = await client.post(f"/cases/{case_id}/resolve", headers=headers(key()) | {
                "Content-Type": "application/json"},
                content=trickling(clock, body, timedelta(minutes=1)))
            assert r.status_code == 200, r.text
            resolved[case_id] = happened
        assert observed(app, "sixstep_occurred_at_behind_seconds") == slow_before, \
            "a right clock is not counted as slow"

        # A tablet four minutes slow: its step, at 23:58 by the service, said 23:54.
        happened = EDGES[1]
        clock.set(happened - timedelta(minutes=10))
        case_id = await heard_case(client)
        clock.set(happened)
        slow = timedelta(minutes=4)
        r = await step(client, case_id, "resolve", {
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": (happened - slow).isoformat(),
            "sent_at": (happened - slow).isoformat()})
        assert r.status_code == 200, r.text
        resolved[case_id] = happened
        assert observed(app, "sixstep_occurred_at_behind_seconds") == slow_before + 1
        assert app.state.runtime.metrics.registry.get_sample_value(
            "sixstep_occurred_at_behind_seconds_sum", {"service": "intake"}) == 240.0

    envelopes = await stream_envelopes(settings)
    got = {str(e.case_id): e.occurred_at for e in envelopes if e.type == "CaseResolved"}
    assert got == resolved
    for case_id, happened in resolved.items():
        assert got[case_id].astimezone(SHANGHAI).date() == happened.date(), case_id


#: The last second of a day, a month, a year: Sunday 20 December 2026, New Year's Eve 2026,
#: New Year's Eve 2027 (a year planned on the provisional calendar), 29 February 2028.
LAST_SECONDS = [at(2026, 12, 20, 23, 59) + timedelta(seconds=59),
                at(2026, 12, 31, 23, 59) + timedelta(seconds=59),
                at(2027, 12, 31, 23, 59) + timedelta(seconds=59),
                at(2028, 2, 29, 23, 59) + timedelta(seconds=59)]


async def test_a_post_that_came_in_before_midnight_is_dated_before_it_however_long_its_body_took(
        settings: Settings) -> None:
    """A resolution comes in at intake's front door at 23:59:59, its body two seconds behind
    its headers (a phone's uplink, a proxy). A caller that says no ``occurred_at`` (a script,
    an Open311 client) is dated when it came in; so is one whose clock runs 3 minutes fast
    and says no ``sent_at`` (a moment ahead is recorded at the service's). Dated by intake's
    clock as its command ran, both were 00:00:01: the next day, month or year, in the
    figures of a period the resident never came in (the time a request spends inside the
    service is not the sender's, as for ``sent_at``)."""
    app = create_app(settings, clock=(clock := ManualClock(LAST_SECONDS[0])))
    resolved: dict[str, datetime] = {}
    async with running(app) as client:
        for last in LAST_SECONDS:
            clock.set(last - timedelta(minutes=10))
            plain, fast = await heard_case(client), await heard_case(client)
            for case_id, said in ((plain, {}), (fast, {"occurred_at": tablet(last)})):
                clock.set(last)
                body = {"outcome": "resolved", "emotion_defused": True, **said}
                r = await client.post(f"/cases/{case_id}/resolve", headers=headers(key()) | {
                    "Content-Type": "application/json"},
                    content=trickling(clock, body, timedelta(seconds=2)))
                assert r.status_code == 200, r.text
                resolved[case_id] = last

    envelopes = await stream_envelopes(settings)
    got = {str(e.case_id): e.occurred_at for e in envelopes if e.type == "CaseResolved"}
    assert got == resolved
    for case_id, came in resolved.items():
        assert got[case_id].astimezone(SHANGHAI).date() == came.date(), case_id


def refused_for_clock(app: Any, clock: str) -> float:
    """How many writes intake counted as refused for their sender's clock, ``fast``/``slow``."""
    return app.state.runtime.metrics.registry.get_sample_value(
        "sixstep_writes_refused_for_clock_total", {"service": "intake", "clock": clock}) or 0.0


async def resolved_then_replayed(client: Any, clock: ManualClock, start: datetime,
                                 later: timedelta) -> str:
    """A case heard and resolved at ``start`` by a script that stamps ``sent_at``, then the
    very same bytes sent ten times ``later`` (its answer lost): each replays the first."""
    clock.set(start - timedelta(minutes=5))
    case_id = await heard_case(client)
    clock.set(start)
    resolving = {"outcome": "resolved", "emotion_defused": True,
                 "occurred_at": start.isoformat(), "sent_at": start.isoformat()}
    k = key()
    first = await step(client, case_id, "resolve", resolving, k=k)
    assert first.status_code == 200, first.text
    clock.set(start + later)  # past midnight: the same bytes
    for _ in range(10):
        again = await step(client, case_id, "resolve", resolving, k=k)
        assert again.status_code == 200 and again.json()["replayed"] is True, again.text
    return case_id


async def test_a_script_replaying_its_answered_request_is_no_slow_clock_for_ops(
        settings: Settings) -> None:
    """A script keeps its request, ``sent_at`` and all, and sends the same bytes again and
    again after its answer was lost: ten minutes on, that ``sent_at`` is far behind intake's
    clock, but every retry replays the first answer (200, ``replayed``): nothing was refused,
    and the tablet's clock was right when it sent. Counted as refused for a slow clock as
    they came in (before the key was looked up), ten such retries among twenty writes
    made SixstepCounterClockSlow's share 10/20 for a clock that was never off. A new command
    under a new key with that old ``sent_at`` is refused, and counted once. At 23:50 on New
    Year's Eve, Sunday 20 December and 29 February 2028, the retries past midnight."""
    clock = ManualClock(EDGES[0])
    app = create_app(settings, clock=clock)
    async with running(app) as client:
        for start in [EDGES[1] - timedelta(minutes=8), EDGES[0], EDGES[2]]:
            slow, fast = refused_for_clock(app, "slow"), refused_for_clock(app, "fast")
            case_id = await resolved_then_replayed(client, clock, start, timedelta(minutes=10))
            assert (refused_for_clock(app, "slow"), refused_for_clock(app, "fast")) == (
                slow, fast), "a replay of an answered write is no clock refused"
            new = await step(client, case_id, "reopen", {
                "reason": "居民说没有办好", "occurred_at": start.isoformat(),
                "sent_at": start.isoformat()})
            assert new.status_code == 422, new.text
            assert new.json()["error"]["details"]["field"] == "sent_at"
            ahead = await step(client, case_id, "reopen", {
                "reason": "居民说没有办好", "occurred_at": clock.now().isoformat(),
                "sent_at": (clock.now() + timedelta(minutes=10)).isoformat()})
            assert ahead.status_code == 422, ahead.text
            assert (refused_for_clock(app, "slow"), refused_for_clock(app, "fast")) == (
                slow + 1, fast + 1), "each new command refused is counted once"


async def test_a_script_replaying_its_answered_request_minutes_later_is_no_slow_clock_either(
        settings: Settings) -> None:
    """The same script sends its answered request again two minutes on, ``sent_at`` kept:
    within the window, it was measured as a tablet two minutes slow as it came in (before
    its key was looked up), every replay one more write over a minute off in
    SixstepCounterClockSlow's share. A new command from a tablet that slow is counted, once,
    as its answer is given."""
    clock = ManualClock(EDGES[1])
    app = create_app(settings, clock=clock)
    async with running(app) as client:
        for start in [EDGES[1] - timedelta(minutes=1), EDGES[0], EDGES[2]]:
            slow = observed(app, "sixstep_occurred_at_behind_seconds")
            case_id = await resolved_then_replayed(client, clock, start, timedelta(minutes=2))
            assert observed(app, "sixstep_occurred_at_behind_seconds") == slow, \
                "a replay of an answered write is no clock measured"
            tablet_slow = (clock.now() - timedelta(minutes=2)).isoformat()
            r = await step(client, case_id, "reopen", {
                "reason": "居民说没有办好", "occurred_at": tablet_slow, "sent_at": tablet_slow})
            assert r.status_code == 200, r.text
            assert observed(app, "sixstep_occurred_at_behind_seconds") == slow + 1
