"""A rebuild writes its staging tables with COPY: the tables must be exactly those the live
handlers build from the same log, batch boundaries anywhere, with whatever an untidy log holds
(steps out of order, events published twice, stale versions, events the handlers refuse,
messages nobody can decode)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from shared.analytics import rebuild
from shared.analytics.rebuild import Rebuild, q
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.contracts import REGISTRY, event_id_for
from shared.readmodels.readmodel import BulkHandler, load_read_model, make_tables, registered
from shared.settings import Settings
from tests.analytics.support import (
    HARDSHIP,
    HUAMU,
    LUJIAZUI,
    UNEMPLOYMENT,
    Aggregate,
    CaseStory,
    aftercare,
    at,
    follow_up,
    month_of_march_stories,
    rated,
    survey,
)

#: Read model: what it must refuse of the untidy log (undecodable or refused by its handler).
REFUSED = {"intake": 3, "followup": 1, "feedback": 1, "feedback.figures": 4}
#: Columns two correct builds may differ in: when a row or a batch was written.
VOLATILE = {"projected_at", "started_at", "updated_at", "moved_at",
            *load_read_model("feedback.figures").volatile}  # a note's number: per build
_positions = itertools.count(10_000)


def step(service: str, type_name: str, story: CaseStory | None, aggregate_id: uuid.UUID,
         version: int, when: Any, payload: dict[str, Any], *,
         schema_version: int = 1) -> dict[str, Any]:
    """A wire event as a relay publishes it, the payload taken as given (unchecked)."""
    return {
        "event_id": str(event_id_for(service, aggregate_id, version)), "type": type_name,
        "version": schema_version, "service": service, "position": next(_positions),
        "aggregate_id": str(aggregate_id), "aggregate_version": version,
        "case_id": str(story.case_id) if story else None,
        "center_id": story.center if story else HUAMU, "occurred_at": when.isoformat(),
        "recorded_at": (when + timedelta(seconds=3)).isoformat(), "causation_id": None,
        "correlation_id": None, "actor": "clerk-017", "payload": payload}


def untidy_log() -> list[dict[str, Any] | bytes]:
    """The March history of the other analytics tests, then what a real log also holds."""
    stories = month_of_march_stories()
    tidy = sorted([*(e for s in stories for e in s.events()), *aftercare(stories)],
                  key=lambda e: e["recorded_at"])
    h0, h1, h5 = stories[0], stories[1], stories[5]
    out: list[dict[str, Any] | bytes] = [*tidy]

    # Intake: a case whose first step arrives before its opening; a case reopened and
    # resolved again; deadlines (the nearest wins) and an obligation; a step of a case that
    # was never opened; steps published twice; a resolution without an outcome (refused).
    late = CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-04", 9), emotion="anxious")
    first, *rest = late.events()
    out += [rest[0], first, *rest[1:]]
    out += [step("intake", "CaseReopened", h0, h0.case_id, 6, at("2026-03-05", 9),
                 {"reason": "材料有误"}),
            step("intake", "CaseResolved", h0, h0.case_id, 7, at("2026-03-05", 10),
                 {"outcome": "partly_resolved", "explanation": "部分办结",
                  "emotion_defused": False})]
    for version, due in ((5, "2026-03-20"), (6, "2026-03-10"), (7, "2026-03-15")):
        out.append(step("intake", "DeadlineNoted", h5, h5.case_id, version,
                        at("2026-03-03", 11, version),
                        {"deadline_id": str(uuid.uuid4()), "due_on": due,
                         "description": "申请截止"}))
    # Due dates (issue 19): set from a deadline, then moved by hand; the latest counts.
    for version, due, source in ((10, "2026-03-10", "deadline"), (11, "2026-03-12", "moved")):
        out.append(step("intake", "CaseDueDateSet", h5, h5.case_id, version,
                        at("2026-03-03", 13, version),
                        {"due_on": due, "source": source, "cause": (
                            "deadline_noted" if source == "deadline" else "moved"),
                         "basis": "official", "previous_due_on": None, "counted_from": None,
                         "working_days": None, "note": "等待证明" if source == "moved"
                         else None}))
    out.append(step("intake", "ObligationDeclared", h5, h5.case_id, 8, at("2026-03-03", 12),
                    {"obligation_id": str(uuid.uuid4()), "description": "每月报销",
                     "cadence": "monthly", "next_due_on": "2026-04-01"}))
    ghost = CaseStory(LUJIAZUI, HARDSHIP, at("2026-03-03", 9))
    out.append(step("intake", "ConcernsNoted", ghost, ghost.case_id, 3, at("2026-03-03", 9),
                    {"needs": [], "worries": [], "emotion": "calm", "urgency": "normal",
                     "needs_defusing": False}, schema_version=2))
    out += [e for e in tidy if e["case_id"] == str(h1.case_id)
            and e["type"] in ("CaseOpened", "GuidanceGiven")]
    out.append(step("intake", "CaseResolved", h5, h5.case_id, 9, at("2026-03-06", 9),
                    {"explanation": "已办结", "emotion_defused": True}))

    # Feedback: a bad review rectified and revisited, the revisit withdrawn; an answer
    # recorded by a clerk with marks; a step of an unknown survey; a rectification
    # published twice; one with a deadline that is no date (refused).
    bad = survey(late, at("2026-03-04", 10))
    bad.add("SurveySent", at("2026-03-04", 10, 1), survey_id=str(bad.id), channel="sms",
            expires_at=at("2026-03-06", 10).isoformat())
    bad.add("RatingGiven", at("2026-03-04", 11), survey_id=str(bad.id), purpose="resolution",
            level="very_dissatisfied", comment="等太久", via="clerk", clerk_id="clerk-017",
            aspects={"listened": 2, "served_well": 1})
    rect = Aggregate("feedback", late)
    rect.add("RectificationOpened", at("2026-03-04", 11, 5), rectification_id=str(rect.id),
             resident_id=None, rating="very_dissatisfied", deadline_on="2026-03-25",
             survey_id=str(bad.id), summary="等太久")
    revisit = survey(late, at("2026-03-09", 16), "revisit", rect.id)
    # 好差评: triaged, appealed by the clerk, the appeal rejected by another supervisor.
    rect.add("RectificationTriaged", at("2026-03-05", 10), rectification_id=str(rect.id),
             track="limited", working_days=5, counted_from="2026-03-05",
             deadline_on="2026-03-12", previous_deadline_on="2026-03-25")
    rect.add("RectificationAppealed", at("2026-03-05", 11), rectification_id=str(rect.id),
             survey_id=str(bad.id), reasons="居民评的是别的窗口")
    rect.add("RectificationAppealDecided", at("2026-03-06", 9), rectification_id=str(rect.id),
             survey_id=str(bad.id), decision="rejected", reasons="差评属实",
             appealed_by="clerk-017")
    rect.add("RectificationCompleted", at("2026-03-09", 15), rectification_id=str(rect.id),
             outcome="explained", actions="说明", deadline_on="2026-03-12",
             completed_on="2026-03-09", on_time=True)
    rect.add("RevisitRequested", at("2026-03-09", 16), rectification_id=str(rect.id),
             survey_id=str(revisit.id))
    revisit.add("SurveyWithdrawn", at("2026-03-09", 17), survey_id=str(revisit.id),
                reason="案件重开")
    out += [*bad.events, rect.events[0], *revisit.events[:1], *rect.events[1:],
            *revisit.events[1:], rect.events[0]]
    stray = uuid.uuid4()
    out.append(step("feedback", "SurveySent", late, stray, 2, at("2026-03-04", 12),
                    {"survey_id": str(stray), "channel": "sms",
                     "expires_at": at("2026-03-06", 12).isoformat()}))
    broken = Aggregate("feedback", h5)
    broken.add("RectificationOpened", at("2026-03-05", 9), rectification_id=str(broken.id),
               resident_id=None, rating="dissatisfied", deadline_on="2026-03-25")
    broken.events[0]["payload"]["deadline_on"] = "2026-13-45"
    # current: refused by the handlers, not on the way in
    broken.events[0].update(version=REGISTRY.get("RectificationOpened").version)
    broken.events[0]["payload"]["basis"] = "official"
    out += broken.events
    out += rated(survey(ghost, at("2026-03-03", 10)), at("2026-03-03", 11),
                 "satisfied").events

    # Trips (issue 18): a return trip naming a case, published twice, and one naming none; an
    # answer of 28 March typed in on 3 April (a late event of March); March closed, then
    # revised for it.
    trip, walk_in, month = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def visit(story: CaseStory | None, visit_id: uuid.UUID, when: Any) -> dict[str, Any]:
        return step("intake", "VisitRecorded", story, visit_id, 1, when, {
            "visit_id": str(visit_id), "center_id": HUAMU, "counter_id": "window-3",
            "clerk_id": "clerk-017", "channel": "counter",
            "case_id": str(story.case_id) if story else None, "ticket": "A017",
            "wait_minutes": 7})
    back = visit(h0, trip, at("2026-03-06", 9))
    out += [back, visit(None, walk_in, at("2026-03-06", 10)), back]
    typed_late = rated(survey(h1, at("2026-03-05", 10)), at("2026-03-28", 11), "satisfied")
    typed_late.events[-1]["recorded_at"] = at("2026-04-03", 9).isoformat()
    out += typed_late.events
    reported = [{"name": "visits", "count": 2},
                {"name": "satisfaction_rate", "numerator": 1, "denominator": 1, "rate": 1.0}]
    out += [step("feedback", "PeriodClosed", None, month, 1, at("2026-04-02", 9), {
                "center_id": HUAMU, "month": "2026-03-01", "closed_by": "automatic",
                "as_of": "2026-04-02", "figures": reported[:1]}),
            step("feedback", "PeriodRevised", None, month, 2, at("2026-04-03", 10), {
                "center_id": HUAMU, "month": "2026-03-01", "revision": 1, "figures": reported,
                "changed": ["satisfaction_rate"], "late_events": [{
                    "event_id": typed_late.events[-1]["event_id"], "type": "RatingGiven",
                    "recorded_at": typed_late.events[-1]["recorded_at"]}],
                "late_events_total": 1})]

    # Follow-up: one due, missed, escalated, rescheduled and done; one completed before the
    # stale reschedule arrives (the version guard); one published twice; one without a due
    # time (refused); a policy change; obligations watched, missed, fulfilled, ended, with a
    # stale fulfilment and a watch published twice.
    long_way = follow_up(late, at("2026-03-04", 12), at("2026-03-05", 10))
    long_way.add("FollowUpDue", at("2026-03-05", 10), due_at=at("2026-03-05", 10).isoformat(),
                 overdue_at=at("2026-03-05", 17).isoformat())
    long_way.add("FollowUpMissed", at("2026-03-05", 17),
                 due_at=at("2026-03-05", 10).isoformat(),
                 escalate_at=at("2026-03-09", 9).isoformat())
    long_way.add("FollowUpEscalated", at("2026-03-09", 9), escalated_to="supervisors",
                 overdue_working_days=2, by_scheduler=True)
    long_way.add("FollowUpRescheduled", at("2026-03-09", 10),
                 due_at=at("2026-03-10", 10).isoformat(), assigned_clerk=None,
                 assigned_team="followup-desk")
    long_way.add("FollowUpCompleted", at("2026-03-10", 11), outcome="needs_action",
                 channel="home_visit")
    stale = follow_up(h0, at("2026-03-05", 9), at("2026-03-06", 10))
    stale.add("FollowUpRescheduled", at("2026-03-05", 10),
              due_at=at("2026-03-09", 10).isoformat(), assigned_clerk="clerk-018",
              assigned_team=None)
    stale.add("FollowUpCompleted", at("2026-03-05", 11), outcome="done", channel="phone")
    twice = follow_up(h1, at("2026-03-05", 9), at("2026-03-06", 10))
    no_due = follow_up(h1, at("2026-03-05", 9), at("2026-03-06", 10))
    no_due.events[0]["payload"]["due_at"] = None
    # At the current version, so that it is not upcast (and refused) on the way in: the
    # handlers are the ones to refuse it.
    no_due.events[0].update(version=2)
    no_due.events[0]["payload"].update(basis="official", contact=True)
    out += [*long_way.events, stale.events[0], stale.events[2], stale.events[1],
            *twice.events, *no_due.events, *twice.events]
    # A reminder the resident later refused contact for: a task from then on, still timed;
    # and one stored before follow-ups knew of consent (FollowUpScheduled v1, no contact).
    task = follow_up(h0, at("2026-03-05", 9), at("2026-03-09", 9))
    task.add("FollowUpContactWithdrawn", at("2026-03-05", 12),
             reason="the resident has not agreed to be contacted")
    # Its case turned urgent (issue 19): high priority from then on, the timer unchanged.
    task.add("FollowUpPrioritised", at("2026-03-05", 13))
    task.add("FollowUpDue", at("2026-03-09", 9), due_at=at("2026-03-09", 9).isoformat(),
             overdue_at=at("2026-03-09", 17).isoformat())
    older = uuid.uuid4()
    out += [*task.events, step("followup", "FollowUpScheduled", h5, older, 1,
                               at("2026-03-02", 9), {
                                   "reason": "deadline_reminder", "resident_id": None,
                                   "due_at": at("2026-03-06", 9).isoformat(),
                                   "assigned_clerk": "clerk-017", "assigned_team": None,
                                   "priority": "normal", "service_item": None,
                                   "source": "intake:DeadlineNoted", "source_id": None})]
    policy = uuid.uuid4()
    out += [step("followup", "PolicyChangePublished", None, policy, 1, at("2026-03-06", 9),
                 {"service_items": [HARDSHIP, UNEMPLOYMENT], "summary": "提高补助标准",
                  "effective_on": "2026-04-01", "all_centers": False,
                  "outreach_due_at": at("2026-03-10", 9).isoformat()}),
            step("followup", "PolicyChangeFannedOut", None, policy, 2, at("2026-03-06", 10),
                 {"residents": 3})]
    resident = str(uuid.uuid4())
    for story in (h0, h1):
        watch = Aggregate("followup", story)
        watch.add("ObligationWatched", at("2026-03-03", 12), obligation_id=str(uuid.uuid4()),
                  resident_id=resident, cadence="monthly", next_due_on="2026-04-01",
                  missed_at=at("2026-04-07", 17).isoformat(), service_item=HARDSHIP)
        watch.add("ObligationMissed", at("2026-04-07", 17), period_due_on="2026-04-01",
                  follow_up_id=str(uuid.uuid4()), next_due_on="2026-05-01",
                  missed_at=at("2026-05-08", 17).isoformat())
        watch.add("ObligationFulfilled", at("2026-04-10", 9), period_due_on="2026-04-01",
                  fulfilled_on="2026-04-10", late=True, next_due_on="2026-05-01",
                  missed_at=at("2026-05-08", 17).isoformat())
        watch.add("ObligationEnded", at("2026-04-20", 9), reason="不再需要")
        out += [*watch.events, watch.events[1], watch.events[0]]

    # Intake's eligibility hints: one shown, taken, its showing published again; one whose
    # dismissal arrives before its showing.
    who = str(uuid.uuid4())
    for decided in ("HintTaken", "HintDismissed"):
        hint = uuid.uuid4()
        ident = {"resident_id": who, "rule_id": "senior-allowance-65", "rule_version": 1,
                 "service_item": HARDSHIP}
        shown = step("intake", "HintShown", None, hint, 1, at("2026-03-04", 9), ident)
        later = step("intake", decided, None, hint, 2, at("2026-03-04", 10), ident)
        out += [shown, later, shown] if decided == "HintTaken" else [later, shown]

    # 转办, 帮办, 派单: a case handed over twice (the second published twice); a follow-up
    # reassigned with it; a help task accepted, escalated and done, one handed back before
    # it was accepted (stale acceptance after it); a referral overdue then replied, one
    # replied by its unit on time.
    out += [step("intake", "CaseHandedOver", h5, h5.case_id, 20, at("2026-03-06", 9),
                 {"to_clerk": "clerk-018", "to_team": None, "from_clerk": None,
                  "from_team": None, "first_clerk": "clerk-017", "reason": "专人办理"})]
    second = step("intake", "CaseHandedOver", h5, h5.case_id, 21, at("2026-03-06", 10),
                  {"to_clerk": None, "to_team": "hardship-team", "from_clerk": "clerk-018",
                   "from_team": None, "first_clerk": "clerk-017", "reason": "转团队"})
    out += [second, second]
    moved = follow_up(h5, at("2026-03-05", 9), at("2026-03-09", 9))
    moved.add("FollowUpReassigned", at("2026-03-06", 10), assigned_clerk=None,
              assigned_team="hardship-team", reason="the case was handed over")
    out += moved.events
    # A plan step's reminder whose step a case carries since: its row names that case.
    linked = follow_up(h5, at("2026-03-05", 9), at("2026-03-10", 9))
    linked.add("FollowUpReassigned", at("2026-03-06", 11), assigned_clerk="clerk-017",
               assigned_team=None, reason="the step's case carries it",
               case_id=str(h1.case_id))
    out += linked.events
    helped = Aggregate("followup", h1)
    helped.add("HelpTaskOpened", at("2026-03-05", 9), owner_clerk="clerk-018",
               owner_team=None, requested_by="clerk-017",
               deadline_at=at("2026-03-10", 17).isoformat(), source_id=str(uuid.uuid4()),
               service_item=HARDSHIP)
    helped.add("HelpTaskAccepted", at("2026-03-05", 10))
    helped.add("HelpTaskStarted", at("2026-03-06", 10))
    helped.add("HelpTaskEscalated", at("2026-03-10", 17), escalated_to="supervisor",
               overdue_working_days=0)
    helped.add("HelpTaskDone", at("2026-03-11", 9), note="已协助")
    back = Aggregate("followup", h0)
    back.add("HelpTaskOpened", at("2026-03-05", 9), owner_clerk=None, owner_team="supervisor",
             requested_by="clerk-017", deadline_at=at("2026-03-10", 17).isoformat(),
             source_id=str(uuid.uuid4()))
    back.add("HelpTaskAccepted", at("2026-03-05", 10))
    back.add("HelpTaskHandedBack", at("2026-03-05", 11), reason="不属本中心")
    out += [*helped.events, back.events[0], back.events[2], back.events[1]]
    no_longer = Aggregate("followup", h0)  # its case resolved first: closed by the rules
    no_longer.add("HelpTaskOpened", at("2026-03-05", 9), owner_clerk="clerk-018",
                  owner_team=None, requested_by="clerk-017",
                  deadline_at=at("2026-03-10", 17).isoformat(), source_id=str(uuid.uuid4()))
    no_longer.add("HelpTaskClosed", at("2026-03-06", 10), reason="case_resolved")
    out += [*no_longer.events, no_longer.events[1]]
    late_reply = Aggregate("followup", h1)
    late_reply.add("ReferralSent", at("2026-03-05", 9), unit_kind="social_insurance_bureau",
                   unit_name="区社保中心", unit_contact="窗口12", referred_by="clerk-017",
                   reply_due_at=at("2026-03-12", 17).isoformat(), source_id=str(uuid.uuid4()))
    late_reply.add("ReferralOverdue", at("2026-03-12", 17), follow_up_id=str(uuid.uuid4()),
                   assigned_clerk="clerk-017", assigned_team=None)
    late_reply.add("ReferralReplied", at("2026-03-13", 9), reply="已受理", by_recipient=True)
    on_time = Aggregate("followup", h0)
    on_time.add("ReferralSent", at("2026-03-05", 9), unit_kind="street_office",
                unit_name="花木街道", referred_by="clerk-017",
                reply_due_at=at("2026-03-12", 17).isoformat(), source_id=str(uuid.uuid4()))
    on_time.add("ReferralReplied", at("2026-03-06", 9), reply="已办", by_recipient=False)
    out += [*late_reply.events, *on_time.events, on_time.events[0]]
    no_reply_needed = Aggregate("followup", h1)  # its case resolved first: closed, not chased
    no_reply_needed.add("ReferralSent", at("2026-03-05", 9), unit_kind="employer",
                        unit_name="某公司人事部", referred_by="clerk-017",
                        reply_due_at=at("2026-03-12", 17).isoformat(),
                        source_id=str(uuid.uuid4()))
    no_reply_needed.add("ReferralClosed", at("2026-03-06", 10), reason="case_resolved")
    out += [*no_reply_needed.events, no_reply_needed.events[1]]

    # Nobody can read these: not JSON, an unknown event type.
    out.append(b"{not json")
    out.append(step("intake", "CaseTeleported", h0, h0.case_id, 8, at("2026-03-05", 11), {}))
    return out


async def publish(settings: Settings, log: list[dict[str, Any] | bytes]) -> int:
    """Every entry on the stream, each under its own message id (a republish after the
    server's duplicate window looks like this)."""
    nc = await connect(settings, "test-untidy")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for n, e in enumerate(log):
            if isinstance(e, bytes):
                subject, data = event_subject(settings, "intake", "CaseOpened",
                                              uuid.uuid4()), e
            else:
                key = uuid.UUID(e["case_id"] or e["aggregate_id"])
                subject, data = event_subject(settings, e["service"], e["type"], key), \
                    orjson.dumps(e)
            await js.publish(subject, data, headers={"Nats-Msg-Id": f"untidy-{n}"})
    finally:
        await nc.close()
    return len(log)


async def tables(conn: asyncpg.Connection, schema: str) -> dict[str, list[str]]:
    rows = await conn.fetch(
        "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) AS columns"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        " WHERE n.nspname = $1 AND c.relkind = 'r' GROUP BY c.relname", schema)
    return {r["relname"]: [c for c in r["columns"] if c not in VOLATILE] for r in rows}


async def differences(conn: asyncpg.Connection, expected: str,
                      built: str) -> dict[str, tuple[int, int]]:
    """Per table: rows only in ``expected``, rows only in ``built`` (as multisets)."""
    theirs, ours = await tables(conn, expected), await tables(conn, built)
    assert theirs.keys() == ours.keys()
    out = {}
    for table, columns in theirs.items():
        assert ours[table] == columns, table
        cols = ", ".join(q(c) for c in columns)
        a, b = f"{q(expected)}.{q(table)}", f"{q(built)}.{q(table)}"
        missing = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}) x")
        extra = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT {cols} FROM {b} EXCEPT ALL SELECT {cols} FROM {a}) x")
        out[table] = (missing, extra)
    return out


async def differing(conn: asyncpg.Connection, expected: str,
                    built: str) -> dict[str, tuple[int, int]]:
    """The tables whose rows differ (:func:`differences`), leaving out ``rebuild_state``,
    which says how each build went, not what it built."""
    found = await differences(conn, expected, built)
    found.pop("rebuild_state")
    return {t: d for t, d in found.items() if d != (0, 0)}


@pytest.mark.parametrize("batch", [1, 4, 16])
async def test_copy_path_builds_what_the_live_handlers_build(settings: Settings,
                                                             batch: int) -> None:
    await publish(settings, untidy_log())
    conn = await asyncpg.connect(settings.database_url)
    # Per batch, the statements it sent (asyncpg's query logger).
    sent: list[str] = []
    per_batch: list[list[str]] = []
    try:
        for ref, refusals in REFUSED.items():
            model = load_read_model(ref)
            assert isinstance(model.handler(settings), BulkHandler), ref
            built: dict[bool, tuple[str, list[tuple[Any, ...]], int, int]] = {}
            for copy in (False, True):
                batches = handed = 0
                sent.clear()
                per_batch.clear()

                def count(_: object, got: rebuild.Batch) -> None:
                    nonlocal batches, handed
                    batches += 1
                    handed += len(got.events) + len(got.undecodable)
                    per_batch.append(sent[:])
                    sent.clear()

                async with Rebuild(settings, model, batch_size=batch, copy=copy,
                                   on_batch=count) as rb:
                    staging = await rb.prepare(fresh=True)
                    rb.conn.add_query_logger(lambda record: sent.append(record.query))
                    await rb.catch_up()
                    refused = [tuple(r) for r in await rb.skipped(limit=1000)]
                    fallbacks = rb.fallbacks
                    # Every event handed to the read model is applied or skipped (refused,
                    # or undecodable: the log's "{not json"), once.
                    state = await rb.state()
                    assert (state["applied"], state["skipped"]) == (
                        handed - len(refused), len(refused)), (ref, copy, handed, refused)
                if not copy:  # keep the live handler's tables aside
                    kept = f"{settings.schema_prefix}expected"
                    await conn.execute(f"DROP SCHEMA IF EXISTS {q(kept)} CASCADE")
                    await conn.execute(f"ALTER SCHEMA {q(staging)} RENAME TO {q(kept)}")
                    staging = kept
                built[copy] = (staging, refused, fallbacks, batches)

            (expected, refused_live, _, _), (copied, refused_copy, fallbacks, batches) = (
                built[False], built[True])
            assert refused_copy == refused_live, ref
            assert len(refused_live) == refusals, (ref, refused_live)
            found = await differences(conn, expected, copied)
            assert all(d == (0, 0) for d in found.values()), (ref, batch, found)
            rows = {t: await conn.fetchval(f"SELECT count(*) FROM {q(copied)}.{q(t)}")
                    for t in found if t != "consumer_held"}  # a rebuild holds nothing back
            assert all(rows.values()), (ref, rows)  # every table has something to compare
            # The bulk path did the work; a batch meeting a row an earlier batch wrote (a
            # duplicate on the log) or an event to refuse went to the live handler.
            assert 0 < fallbacks < batches, (ref, fallbacks, batches)
            # A batch the bulk path takes is one transaction without a savepoint (one is
            # only needed to try the live handler on a batch it gave back), and its
            # bookkeeping (tracking, progress, rebuild_state) is one statement.
            nested = [b for b in per_batch if any(q.startswith("SAVEPOINT") for q in b)]
            assert len(nested) == fallbacks, (ref, len(nested), fallbacks, batches)
            bookkeeping = [sum(not q.startswith("SELECT") and any(
                t in q for t in ("consumer_tracking", "consumer_progress", "rebuild_state"))
                for q in b) for b in per_batch]
            assert bookkeeping == [1] * batches, (ref, bookkeeping)
    finally:
        await conn.close()


def test_replays_pause_the_collector_together_and_give_it_back() -> None:
    assert gc.isenabled()
    with rebuild.collections_paused() as first:
        with rebuild.collections_paused() as second:  # a second rebuild in the process
            assert not gc.isenabled()
            second(rebuild.COLLECT_EVERY)  # a collection of the young generations
        assert not gc.isenabled(), "the first replay is still running"
        first(1)
    assert gc.isenabled()


async def test_every_read_model_at_once_from_one_replay_builds_what_each_builds_alone(
        settings: Settings) -> None:
    """``catch_up_together``: the log read and decoded once, each read model given its own
    events; each ends with the rows, refusals and position its own live-handler rebuild
    leaves (tracking included)."""
    await publish(settings, untidy_log())
    names = sorted({*REFUSED, *registered()})
    conn = await asyncpg.connect(settings.database_url)
    try:
        alone: dict[str, tuple[str, list[tuple[Any, ...]], int, int]] = {}
        for ref in names:
            async with Rebuild(settings, load_read_model(ref), batch_size=4, copy=False) as rb:
                staging = await rb.prepare(fresh=True)
                await rb.catch_up()
                refused = [tuple(r) for r in await rb.skipped(limit=1000)]
                last_seq, applied = (await rb.state())["last_seq"], (await rb.state())["applied"]
                kept = f"{settings.schema_prefix}alone_{ref.replace('.', '_')}"
                await conn.execute(f"DROP SCHEMA IF EXISTS {q(kept)} CASCADE")
                await conn.execute(f"ALTER SCHEMA {q(staging)} RENAME TO {q(kept)}")
                alone[ref] = (kept, refused, last_seq, applied)
        async with contextlib.AsyncExitStack() as stack:
            rebuilds = [await stack.enter_async_context(
                Rebuild(settings, load_read_model(ref), batch_size=4)) for ref in names]
            for rb in rebuilds:
                await rb.prepare(fresh=True)
            # One of them is further on already (a resumed rebuild): it skips what it has.
            await rebuilds[0].catch_up()
            await rebuild.catch_up_together(rebuilds, batch_size=4)
            for ref, rb in zip(names, rebuilds, strict=True):
                expected, refused, last_seq, applied = alone[ref]
                assert (await rb.state())["applied"] == applied, ref  # each event once
                assert [tuple(r) for r in await rb.skipped(limit=1000)] == refused, ref
                # It read on to the last event of the log, not only of its own subjects.
                assert (await rb.state())["last_seq"] >= last_seq, ref
                assert rb.staging is not None
                assert await differing(conn, expected, rb.staging) == {}, ref
    finally:
        await conn.close()


async def test_every_read_model_is_the_same_wherever_its_batches_end(
        settings: Settings) -> None:
    """A live consumer's batches end wherever the stream's timing puts them, a rebuild's at
    its batch size: from the same untidy log (stale versions, events twice, steps out of
    order), each read model's live handler must leave the same rows one event at a time
    as in batches of 4, 16 or a thousand."""
    await publish(settings, untidy_log())
    conn = await asyncpg.connect(settings.database_url)
    try:
        for ref in sorted({*REFUSED, *registered()}):
            built = []
            for batch in (1, 4, 16, 1000):
                async with Rebuild(settings, load_read_model(ref), batch_size=batch,
                                   copy=False) as rb:
                    staging = await rb.prepare(fresh=True)
                    await rb.catch_up()
                kept = f"{settings.schema_prefix}batch_{batch}"
                await conn.execute(f"DROP SCHEMA IF EXISTS {q(kept)} CASCADE")
                await conn.execute(f"ALTER SCHEMA {q(staging)} RENAME TO {q(kept)}")
                built.append(kept)
            for other in built[1:]:
                assert await differing(conn, built[0], other) == {}, (ref, other)
    finally:
        await conn.close()


async def test_a_rebuild_reading_in_a_child_process_builds_what_one_process_builds(
        settings: Settings) -> None:
    """The log read in a child process (``reader="process"``, what a long rebuild does) while
    this one decodes and applies: every read model, alone and all at once, ends with the same
    rows, tracking, refusals and ``rebuild_state`` as when one process does it all."""
    await publish(settings, untidy_log())
    names = sorted({*REFUSED, *registered()})
    conn = await asyncpg.connect(settings.database_url)
    try:
        inline: dict[str, tuple[str, list[tuple[Any, ...]]]] = {}
        for ref in names:
            for reader in ("inline", "process"):
                async with Rebuild(settings, load_read_model(ref), batch_size=4,
                                   reader=reader) as rb:  # type: ignore[arg-type]
                    staging = await rb.prepare(fresh=True)
                    await rb.catch_up()
                    refused = [tuple(r) for r in await rb.skipped(limit=1000)]
                kept = f"{settings.schema_prefix}{reader}_{ref.replace('.', '_')}"
                await conn.execute(f"DROP SCHEMA IF EXISTS {q(kept)} CASCADE")
                await conn.execute(f"ALTER SCHEMA {q(staging)} RENAME TO {q(kept)}")
                if reader == "inline":
                    inline[ref] = (kept, refused)
                    continue
                expected, refused_inline = inline[ref]
                assert refused == refused_inline, ref
                found = await differences(conn, expected, kept)
                assert {t: d for t, d in found.items() if d != (0, 0)} == {}, ref
                assert found.keys() >= {"consumer_tracking", "consumer_progress",
                                        "rebuild_state"}, ref
        async with contextlib.AsyncExitStack() as stack:
            rebuilds = [await stack.enter_async_context(
                Rebuild(settings, load_read_model(ref), batch_size=4, reader="process"))
                for ref in names]
            for rb in rebuilds:
                await rb.prepare(fresh=True)
            await rebuild.catch_up_together(rebuilds, batch_size=4)
            for ref, rb in zip(names, rebuilds, strict=True):
                expected, refused = inline[ref]
                assert [tuple(r) for r in await rb.skipped(limit=1000)] == refused, ref
                assert rb.staging is not None
                # Together, each reads on to the log's last event, not its own subjects'.
                assert await differing(conn, expected, rb.staging) == {}, ref
    finally:
        await conn.close()


async def _indexes(conn: asyncpg.Connection, schema: str) -> set[str]:
    """The indexes of a schema's read-model tables (not of the consumer's bookkeeping)."""
    rows = await conn.fetch("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = $1",
                            schema)
    return {r["indexname"] for r in rows if r["tablename"] not in rebuild.BOOKKEEPING}


async def test_a_rebuild_makes_the_indexes_no_handler_reads_by_once_the_log_is_read(
        settings: Settings) -> None:
    """A case's rows are found by their keys while the log is folded; the worklists' and
    boards' indexes (a clerk's open cases, surveys to send) are not kept up row by row
    during a rebuild but made once its catch-up has read the log, alone or all at once: the
    rebuilt tables then have every index the read model's DDL makes."""
    await publish(settings, untidy_log())
    names = sorted(registered())
    conn = await asyncpg.connect(settings.database_url)
    try:
        expected: dict[str, set[str]] = {}
        for ref in names:
            schema = f"{settings.schema_prefix}ddl_{ref.replace('.', '_')}"
            await conn.execute(f"DROP SCHEMA IF EXISTS {q(schema)} CASCADE")
            await make_tables(conn, schema, load_read_model(ref).ddl)
            expected[ref] = await _indexes(conn, schema)
        await conn.execute("SET search_path TO DEFAULT")
        async with contextlib.AsyncExitStack() as stack:
            rebuilds = {ref: await stack.enter_async_context(
                Rebuild(settings, load_read_model(ref), batch_size=4)) for ref in names}
            for rb in rebuilds.values():
                await rb.prepare(fresh=True)
            staging = {ref: str(rb.staging) for ref, rb in rebuilds.items()}
            # Before the log: a clerk's open cases, the surveys to send, the day indexes of
            # the people behind the figures are not there yet; the keys are.
            intake = await _indexes(conn, staging["intake"])
            assert "cases_pkey" in intake and "cases_clerk_status" not in intake
            assert "surveys_to_send" not in await _indexes(conn, staging["feedback"])
            assert "fig_placements_on" not in await _indexes(conn, staging["feedback.people"])
            await rebuilds["intake"].catch_up()  # alone
            await rebuild.catch_up_together([rb for ref, rb in rebuilds.items()
                                             if ref != "intake"], batch_size=4)
            for ref in names:
                assert await _indexes(conn, staging[ref]) == expected[ref], ref
    finally:
        await conn.close()


async def test_a_rebuild_resumed_after_a_kill_during_its_index_build_waits_for_that_index(
        settings: Settings) -> None:
    """An analyst's ``sixstep rebuild intake`` is killed (kill -9) while PostgreSQL makes the
    indexes put off: PostgreSQL finishes the killed client's CREATE INDEX all the same. The
    run started again at once makes the same index beside it, and the first one's commit
    made it fail on the catalog's unique name (a traceback, the index sorted twice); it
    waits for the index being made and finds it there."""
    await publish(settings, untidy_log())
    model = load_read_model("intake")
    building = next(s for s in rebuild.split_indexes(model)[1]
                    if "resident_hints_resident" in s)
    killed = await asyncpg.connect(settings.database_url)
    watch = await asyncpg.connect(settings.database_url)
    try:
        async with Rebuild(settings, model, batch_size=4) as first:
            staging = await first.prepare(fresh=True)
            await first.catch_up()
        # Killed while making this one: its CREATE INDEX had not committed.
        await watch.execute(f"DROP INDEX {q(staging)}.resident_hints_resident")
        # The killed run's backend, still making one of them.
        await killed.execute(f"SET search_path TO {q(staging)}, public")
        orphan = killed.transaction()
        await orphan.start()
        await killed.execute(building)
        async with Rebuild(settings, model, batch_size=4) as again:
            assert await again.prepare() == staging and again.resumed
            resumed = asyncio.ensure_future(again.catch_up())
            pid = again.conn.get_server_pid()
            for _ in range(600):  # until the resumed run waits on the killed one's index
                if resumed.done() or await watch.fetchval(
                        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                        pid):
                    break
                await asyncio.sleep(0.05)
            await orphan.commit()
            await resumed
        assert "resident_hints_resident" in await _indexes(watch, staging)
    finally:
        await killed.close()
        await watch.close()


async def test_one_read_models_index_failing_in_a_rebuild_of_all_leaves_the_others_built(
        settings: Settings) -> None:
    """``sixstep rebuild --all``: the surveys' index build ends in an error (the disk full,
    a DBA's cancel) while the cases' indexes wait their turn. The others still make theirs,
    and the error comes once they have: it was raised at once, the cases' builds cut off
    when the command closed their connections, to be sorted again by the next run."""
    await publish(settings, untidy_log())
    held = await asyncpg.connect(settings.database_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            rebuilds = {ref: await stack.enter_async_context(
                Rebuild(settings, load_read_model(ref), batch_size=4))
                for ref in ("feedback", "intake")}
            for rb in rebuilds.values():
                await rb.prepare(fresh=True)
            lock = held.transaction()
            await lock.start()  # a long writer on both: the index builds wait
            for ref, table in (("feedback", "surveys"), ("intake", "cases")):
                await held.execute(f"LOCK TABLE {q(str(rebuilds[ref].staging))}.{table}"
                                   " IN ROW EXCLUSIVE MODE")
            together = asyncio.ensure_future(rebuild.catch_up_together(
                list(rebuilds.values()), batch_size=4))
            pids = [rb.conn.get_server_pid() for rb in rebuilds.values()]
            for _ in range(600):  # until both wait for their tables
                waiting = await held.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
                    " AND wait_event_type = 'Lock'", pids)
                if waiting == 2 or together.done():
                    break
                await asyncio.sleep(0.05)
            await held.execute("SELECT pg_cancel_backend($1)", pids[0])  # the surveys'
            await lock.rollback()
            with pytest.raises(asyncpg.QueryCanceledError):
                await together
            building = [t for t in asyncio.all_tasks()
                        if getattr(t.get_coro(), "__qualname__", "") == "Rebuild._index"]
            assert not building, building  # no index build left running behind the error
        cases = await _indexes(held, str(rebuilds["intake"].staging))
        assert {"cases_clerk_status", "resident_hints_item"} <= cases, cases
    finally:
        await held.close()


async def test_a_switch_behind_a_long_reader_of_the_live_cases_is_refused_in_words(
        settings: Settings) -> None:
    """A report reads the live cases for longer than the switch waits for its lock: the
    switch gives up with a sentence ``sixstep rebuild`` prints (a PostgreSQL lock timeout
    went past it as a traceback and stopped ``--all`` before the next read model), the
    rebuilt tables kept for the next run, which switches once the reader is done."""
    await publish(settings, untidy_log())
    model = load_read_model("intake")
    live = model.schema(settings)
    reader = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(reader, live, model.ddl)
        async with Rebuild(settings, model, batch_size=4) as rb:
            staging = await rb.prepare(fresh=True)
            await rb.catch_up()
            report = reader.transaction()
            await report.start()
            await reader.fetchval("SELECT count(*) FROM cases")
            with pytest.raises(rebuild.RebuildError, match="held the live tables"):
                await rb.switch(lock_timeout_s=0.2)
            await report.rollback()
            assert await rb.schemas() == [staging]
            assert (await rb.switch()).tables
    finally:
        await reader.close()


@pytest.mark.parametrize("batch", [4, 1000])
async def test_the_people_behind_the_figures_are_rebuilt_by_copy_as_the_live_handler_builds(
        settings: Settings, batch: int) -> None:
    """feedback.people's cases go to the staging table by COPY, not as seven column arrays
    through ``unnest`` (asyncpg asks every element of an array parameter whether it is an
    array: ten Python calls a case); from the untidy log (cases opened twice, some of them
    in two batches) the tables are the live handler's."""
    await publish(settings, untidy_log())
    conn = await asyncpg.connect(settings.database_url)
    sent: list[str] = []
    try:
        model = load_read_model("feedback.people")
        built = {}
        for copy in (False, True):
            async with Rebuild(settings, model, batch_size=batch, copy=copy) as rb:
                staging = await rb.prepare(fresh=True)
                if copy:
                    rb.conn.add_query_logger(lambda record: sent.append(record.query))
                await rb.catch_up()
                fallbacks = rb.fallbacks
            kept = f"{settings.schema_prefix}people_{'copied' if copy else 'live'}"
            await conn.execute(f"DROP SCHEMA IF EXISTS {q(kept)} CASCADE")
            await conn.execute(f"ALTER SCHEMA {q(staging)} RENAME TO {q(kept)}")
            built[copy] = kept
        assert await differing(conn, built[False], built[True]) == {}
        assert await conn.fetchval(
            f"SELECT count(*) FROM {q(built[True])}.fig_people_cases") > 0
        arrays = [s for s in sent if "INTO fig_people_cases" in s and "unnest" in s]
        assert arrays == [], arrays[:1]
        assert fallbacks <= 1, fallbacks  # at most the batch meeting an earlier batch's case
    finally:
        await conn.close()
