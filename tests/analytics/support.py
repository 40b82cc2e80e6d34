"""A small known history for the analysts' tests: cases built as envelopes, put on the stream."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
HUAMU = "SH-PD-HUAMU"
LUJIAZUI = "SH-PD-LUJIAZUI"
HARDSHIP = "SA-HARDSHIP-SUBSIDY"
UNEMPLOYMENT = "EMP-UNEMPLOYMENT-REGISTRATION"
PHONE = "13812345678"

_positions = itertools.count(1)


@dataclass
class CaseStory:
    """One visit: opened at a window, heard, concerns noted, guided, maybe resolved."""

    center: str
    item: str
    opened_at: datetime
    emotion: str = "calm"
    outcome: str | None = "resolved"
    defused: bool = True
    reopened: bool = False
    concerns_v1: bool = False
    words: str = "想问问补贴怎么申请"
    case_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def events(self) -> list[dict[str, Any]]:
        """The case's events as wire dicts (v1 ConcernsNoted when ``concerns_v1``)."""
        steps: list[tuple[str, int, dict[str, Any]]] = [
            ("CaseOpened", 1, {"center_id": self.center, "counter_id": "window-3",
                               "clerk_id": "clerk-017", "channel": "counter",
                               "service_item": self.item,
                               "resident_id": str(uuid.uuid4())}),
            ("RequestHeard", 1, {"words": self.words}),
        ]
        if self.concerns_v1:  # exactly as the relay published it before v2
            steps.append(("ConcernsNoted", 1, {"needs": ["生活费"], "worries": [],
                                                "emotion": self.emotion, "urgency": "high"}))
        else:
            steps.append(("ConcernsNoted", 2, {
                "needs": ["生活费"], "worries": [], "emotion": self.emotion,
                "urgency": "normal",
                "needs_defusing": self.emotion in ("upset", "angry", "distressed")}))
        steps.append(("GuidanceGiven", 1, {"service_item": self.item, "policy_basis": "条例",
                                            "eligibility": "eligible", "promised": "",
                                            "missing_documents": []}))
        if self.outcome:
            steps.append(("CaseResolved", 1, {"outcome": self.outcome, "explanation": "已办结",
                                               "emotion_defused": self.defused}))
        if self.reopened:
            steps.append(("CaseReopened", 1, {"reason": "材料有误"}))
        out = []
        for n, (type_name, version, payload) in enumerate(steps, start=1):
            at = self.opened_at + timedelta(minutes=5 * (n - 1))
            out.append({
                "event_id": str(event_id_for("intake", self.case_id, n)), "type": type_name,
                "version": version, "service": "intake", "position": next(_positions),
                "aggregate_id": str(self.case_id), "aggregate_version": n,
                "case_id": str(self.case_id), "center_id": self.center,
                "occurred_at": at.isoformat(), "recorded_at": (at + timedelta(seconds=3))
                .isoformat(), "causation_id": f"k-{self.case_id.hex[:8]}-{n}",
                "correlation_id": None, "actor": "clerk-017", "payload": payload})
        return out


def at(day: str, hour: int = 9, minute: int = 0) -> datetime:
    y, m, d = map(int, day.split("-"))
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI)


async def publish(settings: Settings, stories: list[CaseStory],
                  more: Sequence[dict[str, Any]] = ()) -> int:
    """Put the stories' events (and ``more`` wire dicts, e.g. :func:`aftercare`) on the
    test's stream, in time order; returns how many."""
    events = sorted([*(e for s in stories for e in s.events()), *more],
                    key=lambda e: e["recorded_at"])
    nc = await connect(settings, "test-history")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for e in events:
            await js.publish(
                event_subject(settings, e["service"], e["type"], uuid.UUID(e["case_id"])),
                orjson.dumps(e), headers={"Nats-Msg-Id": f"{e['service']}:{e['position']}"})
    finally:
        await nc.close()
    return len(events)


def check_current(data: dict[str, Any]) -> Envelope:
    """A wire dict as the current contract version (what replay must give)."""
    return REGISTRY.current(Envelope.model_validate(data))


def month_of_march_stories() -> list[CaseStory]:
    """Ten visits over two centers, 27 Feb - 3 Mar 2026 (across a month boundary).

    Huamu, opened 2 Mar: 4 cases, 3 resolved + 1 partly; one upset (defused), one angry (not).
    Huamu, opened 3 Mar: 2 cases, 1 resolved, 1 open. Huamu 27 Feb: 1 resolved then reopened.
    Lujiazui 2 Mar: 3 cases, all resolved, two distressed (defused), one of them recorded
    under ConcernsNoted v1 (before ``needs_defusing``).
    """
    return [
        CaseStory(HUAMU, HARDSHIP, at("2026-03-02", 9), emotion="upset", defused=True,
                  words=f"我想申请困难补助，电话{PHONE}"),
        CaseStory(HUAMU, HARDSHIP, at("2026-03-02", 10), emotion="angry", defused=False),
        CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-02", 11)),
        CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-02", 14), outcome="partly_resolved"),
        CaseStory(HUAMU, HARDSHIP, at("2026-03-03", 9)),
        CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-03", 10), outcome=None),
        CaseStory(HUAMU, HARDSHIP, at("2026-02-27", 16), reopened=True),
        CaseStory(LUJIAZUI, HARDSHIP, at("2026-03-02", 9), emotion="distressed"),
        CaseStory(LUJIAZUI, UNEMPLOYMENT, at("2026-03-02", 9, 30), concerns_v1=True,
                  emotion="distressed"),
        CaseStory(LUJIAZUI, HARDSHIP, at("2026-03-02", 10)),
    ]


class Aggregate:
    """Feedback's or follow-up's events about one survey, rectification or follow-up."""

    def __init__(self, service: str, story: CaseStory, aggregate_id: uuid.UUID | None = None):
        self.service, self.story = service, story
        self.id = aggregate_id or uuid.uuid4()
        self.events: list[dict[str, Any]] = []

    def add(self, type_name: str, when: datetime, *, actor: str = "system",
            **payload: Any) -> Aggregate:
        n = len(self.events) + 1
        self.events.append({
            "event_id": str(event_id_for(self.service, self.id, n)), "type": type_name,
            "version": REGISTRY.get(type_name).version, "service": self.service,
            "position": next(_positions),
            "aggregate_id": str(self.id), "aggregate_version": n,
            "case_id": str(self.story.case_id), "center_id": self.story.center,
            "occurred_at": when.isoformat(),
            "recorded_at": (when + timedelta(seconds=3)).isoformat(), "causation_id": None,
            "correlation_id": None, "actor": actor,
            # every field, defaults too, as the service writes it
            "payload": REGISTRY.get(type_name).payload.model_validate(payload)
            .model_dump(mode="json")})
        return self


def survey(story: CaseStory, requested: datetime, purpose: str = "resolution",
           rectification_id: uuid.UUID | None = None) -> Aggregate:
    a = Aggregate("feedback", story)
    return a.add("SurveyRequested", requested, survey_id=str(a.id), purpose=purpose,
                 channel="sms", resident_id=None, counter_id="window-3", clerk_id="clerk-017",
                 service_item=story.item, send_at=requested.isoformat(),
                 expires_at=(requested + timedelta(days=2)).isoformat(),
                 rectification_id=str(rectification_id) if rectification_id else None)


def rated(a: Aggregate, when: datetime, level: str, purpose: str = "resolution") -> Aggregate:
    return a.add("RatingGiven", when, survey_id=str(a.id), purpose=purpose, level=level,
                 via="token")


def follow_up(story: CaseStory, scheduled: datetime, due: datetime) -> Aggregate:
    return Aggregate("followup", story).add(
        "FollowUpScheduled", scheduled, reason="post_resolution_check", resident_id=None,
        due_at=due.isoformat(), assigned_clerk="clerk-017", assigned_team=None,
        service_item=story.item, source="api")


def aftercare(stories: list[CaseStory]) -> list[dict[str, Any]]:
    """Surveys, rectifications and follow-ups after :func:`month_of_march_stories`' visits.

    Resolution surveys, answered 2-4 Mar: Huamu very satisfied, dissatisfied, basically
    satisfied and one expired; Lujiazui very dissatisfied and one withdrawn. Huamu's bad review
    is rectified on time (opened 3 Mar with a provisional deadline of 4 Mar, revised to 5 Mar
    when the official schedule came; done 5 Mar) and revisited (satisfied, 6 Mar);
    Lujiazui's (opened 2 Mar, deadline 3 Mar) is never completed. Follow-ups due 3-5 Mar:
    Huamu one on time, one missed then done, one not reached at the last attempt
    (unreachable); Lujiazui one rescheduled and done on time, one cancelled, two cancelled by
    their own clerk (counted apart; one by the clerk its handed-over case went to).
    Lujiazui's distressed resident has not agreed to be asked by text: that survey is
    withdrawn at once, *no consent* (never *no answer*).
    """
    h0, h1, h2, h3 = stories[:4]
    l0, l1, l2 = stories[7:10]

    good = survey(h0, at("2026-03-02", 9, 30))
    good.add("SurveySent", at("2026-03-02", 9, 31), survey_id=str(good.id), channel="sms",
             expires_at=at("2026-03-04", 9, 30).isoformat())
    rated(good, at("2026-03-02", 12), "very_satisfied")
    bad = rated(survey(h1, at("2026-03-02", 10, 30)), at("2026-03-03", 10), "dissatisfied")
    rect = Aggregate("feedback", h1)
    rect.add("RectificationOpened", at("2026-03-03", 10, 5), rectification_id=str(rect.id),
             resident_id=None, rating="dissatisfied", deadline_on="2026-03-04",
             survey_id=str(bad.id), basis="provisional", counted_from="2026-03-03",
             working_days=1)
    rect.add("RectificationDeadlineRevised", at("2026-03-03", 12),
             rectification_id=str(rect.id), deadline_on="2026-03-05",
             previous_deadline_on="2026-03-04", basis="official")
    rect.add("RectificationCompleted", at("2026-03-05", 16), rectification_id=str(rect.id),
             outcome="rectified", actions="补办", deadline_on="2026-03-05",
             completed_on="2026-03-05", on_time=True)
    revisit = survey(h1, at("2026-03-05", 16, 5), "revisit", rect.id)
    revisit.add("RatingGiven", at("2026-03-06", 9), survey_id=str(revisit.id),
                purpose="revisit", level="satisfied", via="token",
                rectification_id=str(rect.id))
    expired = survey(h2, at("2026-03-02", 11, 30))
    expired.add("SurveyExpired", at("2026-03-04", 11, 30), survey_id=str(expired.id),
                purpose="resolution", was_sent=True)
    tablet = rated(survey(h3, at("2026-03-02", 14, 30)), at("2026-03-02", 14, 31),
                   "basically_satisfied")
    worst = rated(survey(l0, at("2026-03-02", 9, 30)), at("2026-03-02", 15),
                  "very_dissatisfied")
    late = Aggregate("feedback", l0)
    late.add("RectificationOpened", at("2026-03-02", 15, 5), rectification_id=str(late.id),
             resident_id=None, rating="very_dissatisfied", deadline_on="2026-03-03",
             survey_id=str(worst.id))
    withdrawn = survey(l2, at("2026-03-02", 10, 30))
    withdrawn.add("SurveyWithdrawn", at("2026-03-02", 11), survey_id=str(withdrawn.id),
                  reason="案件重开")
    not_asked = survey(l1, at("2026-03-02", 9, 40))
    not_asked.add("SurveyWithdrawn", at("2026-03-02", 9, 40), survey_id=str(not_asked.id),
                  reason="the resident has not agreed to be asked", because="no_consent")

    on_time = follow_up(h0, at("2026-03-02", 12), at("2026-03-03", 10))
    on_time.add("FollowUpCompleted", at("2026-03-03", 10, 30), outcome="done", channel="phone")
    missed = follow_up(h2, at("2026-03-02", 12), at("2026-03-03", 10))
    missed.add("FollowUpMissed", at("2026-03-04", 9), due_at=at("2026-03-03", 10).isoformat(),
               escalate_at=at("2026-03-06", 9).isoformat())
    missed.add("FollowUpCompleted", at("2026-03-05", 9), outcome="done", channel="phone")
    moved = follow_up(l0, at("2026-03-02", 16), at("2026-03-04", 10))
    moved.add("FollowUpRescheduled", at("2026-03-03", 9),
              due_at=at("2026-03-05", 10).isoformat(), assigned_clerk="clerk-017",
              assigned_team=None)
    moved.add("FollowUpCompleted", at("2026-03-05", 9), outcome="done", channel="wechat")
    cancelled = follow_up(l2, at("2026-03-02", 16), at("2026-03-04", 10))
    cancelled.add("FollowUpCancelled", at("2026-03-03", 9), reason="案件重开")
    # Not reached at the last attempt: closed, not done on time (the team takes it up).
    unreached = follow_up(h3, at("2026-03-02", 16), at("2026-03-05", 10))
    unreached.add("FollowUpCompleted", at("2026-03-05", 15), outcome="unreachable",
                  channel="phone")
    # Cancelled by the clerk it is assigned to: in no rate, counted apart.
    dropped = follow_up(l0, at("2026-03-02", 16), at("2026-03-05", 10))
    dropped.add("FollowUpCancelled", at("2026-03-04", 9), actor="clerk-017", reason="不用了")
    # Its case handed over (转办): the new owner's, who cancels it: counted apart as well.
    handed = follow_up(l1, at("2026-03-02", 16), at("2026-03-05", 10))
    handed.add("FollowUpReassigned", at("2026-03-03", 9), assigned_clerk="clerk-018",
               assigned_team=None, reason="case handed over")
    handed.add("FollowUpCancelled", at("2026-03-04", 9), actor="clerk-018", reason="不用了")
    return [e for a in (good, bad, rect, revisit, expired, tablet, worst, late, withdrawn,
                        not_asked, on_time, missed, moved, cancelled, unreached, dropped,
                        handed)
            for e in a.events]
