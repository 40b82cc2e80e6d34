"""Feedback's use cases: each turns one command into events, committed in batches.

Ports, wired in ``main.py``: a clock (``now``), the centers' working-day calendars (the one
``shared.runtime.calendars.Calendars`` of the process) and the survey tokens. Sending lives in
``scheduler.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Any, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from services.feedback import commands as c
from services.feedback.domain import (
    Answer,
    AppealWindow,
    Consent,
    Recorder,
    Rectification,
    Survey,
    judged_day,
    survey_id_for_resolution,
)
from services.feedback.tokens import WINDOW, SurveyTokens
from shared.contracts.feedback import (
    DEFAULT_REASON_TAGS,
    AnsweredVia,
    RectificationTrack,
    StaffChannel,
    SurveyChannel,
    SurveyPurpose,
    WithdrawalCause,
)
from shared.eventstore.application import ServiceApplication
from shared.eventstore.command_path import CommandPath, on_existing
from shared.eventstore.group_commit import GroupCommitter, Sent, Unit, Written, out_of_scope
from shared.kernel.calendar import covered
from shared.kernel.clock import Clock
from shared.kernel.errors import CommandError
from shared.kernel.meta import Meta, meta_for
from shared.kernel.moments import Moments
from shared.kernel.scrubbing import CaseTexts
from shared.runtime.calendars import Calendars
from shared.security.principals import current_caller
from shared.settings import Settings

#: What a resident's own answer (a rating or a decline, with the link's token or a resident's
#: bearer) keeps of its device's clock: nothing. It is dated by the service's clock as it
#: came in (``CommandPath.meta``), so its ``occurred_at`` and its ``sent_at`` are not read,
#: and a phone minutes or hours wrong (or a ``sent_at`` in the wrong zone) is never refused
#: for its clock: before, a ``sent_at`` beyond OCCURRED_AT_MAX_FUTURE_S was a 422 telling the
#: resident to set a clock that dates nothing of the answer.
RESIDENT_NOW: dict[str, None] = {"occurred_at": None, "sent_at": None}


class ActorMismatch(CommandError):
    """A body named another actor than the authenticated caller, who may not act for them."""

    status = 403
    code = "forbidden_actor"


class FeedbackApplication(ServiceApplication):
    name = "feedback"


@dataclass(frozen=True)
class SurveyPolicy:
    """When surveys go out and how long they wait; how long a rectification may take."""

    delay: timedelta = timedelta(hours=2)
    answer_window: timedelta = timedelta(days=7)
    channels: dict[str, str] = field(default_factory=lambda: {
        "counter": "tablet", "phone": "phone_callback", "home_visit": "sms", "open311": "sms"})
    track_working_days: dict[str, int] = field(default_factory=lambda: {
        RectificationTrack.IMMEDIATE: 1, RectificationTrack.LIMITED: 5,
        RectificationTrack.EXPLAIN: 15})
    default_track: str = RectificationTrack.LIMITED.value
    #: 申诉时限: working days after the review's day a bad review may be appealed.
    appeal_working_days: int = 5
    revisit_channel: str = SurveyChannel.PHONE_CALLBACK.value
    reason_tags: tuple[str, ...] = DEFAULT_REASON_TAGS
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    #: No SMS or callback is due between these (the center's wall clock; equal: none).
    quiet: tuple[time, time] = (time(21, 0), time(8, 0))
    #: ``CLOCK_AHEAD_UNTIL``: the clock once ran ahead and recorded days up to this one; the
    #: appeal window, a triage's missed deadline and an outcome's day are not judged on them
    #: (``judged_day``).
    clock_ahead_until: date | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SurveyPolicy:
        for channel in settings.survey_channels.values():
            SurveyChannel(channel)  # fail at start-up on a channel nobody can send through
        return cls(delay=timedelta(minutes=settings.survey_delay_minutes),
                   answer_window=timedelta(days=settings.survey_answer_days),
                   channels=dict(settings.survey_channels),
                   track_working_days={
                       RectificationTrack.IMMEDIATE: settings.rectification_immediate_working_days,
                       RectificationTrack.LIMITED: settings.rectification_limited_working_days,
                       RectificationTrack.EXPLAIN: settings.rectification_explain_working_days},
                   default_track=settings.rectification_default_track,
                   appeal_working_days=settings.rectification_appeal_working_days,
                   revisit_channel=settings.revisit_channel,
                   reason_tags=tuple(settings.survey_reason_tags), tz=settings.tz,
                   quiet=(settings.survey_quiet_from, settings.survey_quiet_until),
                   clock_ahead_until=settings.clock_ahead_until)

    def working_days(self, track: str) -> int:
        """The limit of a triage track (好差评: immediate / limited / explain)."""
        return self.track_working_days[RectificationTrack(track)]

    def channel_for(self, intake_channel: str, resident_id: UUID | None,
                    at_window: bool = True) -> SurveyChannel:
        """The survey's channel: the intake channel's (``SURVEY_CHANNELS``). The counter's
        tablet asks only a resident who is at the window when the case is resolved
        (``at_window``); one resolved after they left (on a later day than their last trip
        about it: documents that came by post, work done in the back office, a case the
        resident reopened by phone) is asked where they are, by SMS, or by a clerk's call
        when nobody is on file. The tablet would have offered it to whoever sat there next."""
        channel = self._channel_of.get(intake_channel, SurveyChannel.SMS)
        if channel == SurveyChannel.TABLET and not at_window:
            return self.away_from_window(resident_id)
        if channel == SurveyChannel.SMS and resident_id is None:
            return SurveyChannel.PHONE_CALLBACK  # no one to text: a clerk calls back
        return channel

    @cached_property
    def _channel_of(self) -> dict[str, SurveyChannel]:
        """``channels`` as members, made once: ``SurveyChannel(value)`` on every resolution
        was most of ``channel_for``'s time (2.4 of 3.2 us)."""
        return {k: SurveyChannel(v) for k, v in self.channels.items()}

    def away_from_window(self, resident_id: UUID | None) -> SurveyChannel:
        """Where a resident no longer at the window is asked: by SMS, or by a clerk's call
        when nobody is on file (a case resolved after they left; a tablet survey the window
        can no longer offer them, ``Feedback.redirect_survey``)."""
        return SurveyChannel.SMS if resident_id is not None else SurveyChannel.PHONE_CALLBACK

    def timing(self, channel: str, start: datetime) -> tuple[datetime, datetime]:
        """(send_at, expires_at) of a survey whose occasion happened at ``start``."""
        send_at = start if channel == SurveyChannel.TABLET else self.not_quiet(
            start + self.delay)
        return send_at, send_at + self.answer_window

    def goes_at(self, channel: str, send_at: datetime, now: datetime) -> datetime:
        """When a survey still to be sent (``requested``) really goes, seen at ``now``: a
        text or a call already due while the quiet hours run waits for their end (the
        scheduler sends none then: a resolution read late, the scheduler down at 21:00), so
        that, not its ``send_at`` of the evening before, is when it goes; the tablet, one not
        yet due and one due outside them at their ``send_at`` (the next tick)."""
        if channel == SurveyChannel.TABLET or send_at > now:
            return send_at
        morning = self.not_quiet(now)
        return morning if morning != now else send_at

    def not_quiet(self, moment: datetime) -> datetime:
        """``moment``, or the end of the quiet hours it falls in (the center's wall clock):
        a resident is not texted or called back in the night. The tablet at the window asks
        at once, whatever the hour: the resident is there."""
        begin, end = self.quiet
        if begin == end:
            return moment
        local = moment.astimezone(self.tz)
        at = local.time().replace(tzinfo=None)
        quiet = (begin <= at or at < end) if begin > end else (begin <= at < end)
        if not quiet:
            return moment
        day = local.date() if at < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, self.tz).astimezone(moment.tzinfo)


class Plan(NamedTuple):
    """A resolution's survey as the policy times it: its channel, when it goes, when it
    expires (``Feedback.plan``)."""

    channel: SurveyChannel
    send_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class ResolvedCase:
    """What feedback needs to know about a resolved case (from intake's events)."""

    case_id: UUID
    center_id: str
    counter_id: str
    clerk_id: str
    service_item: str
    intake_channel: str
    resident_id: UUID | None
    resolved_event_id: UUID
    resolved_at: datetime
    correlation_id: str | None = None
    served_by: tuple[str, ...] = ()  # staff who opened or acted on the case: no 代评
    #: Whether the resident is at the window as the case is resolved (resolved on the day of
    #: their last trip about it): only then does the counter's tablet ask them.
    at_window: bool = True


@dataclass(frozen=True)
class Outgoing:
    """A survey to hand to the sender: where it goes and the link that answers it."""

    survey_id: UUID
    case_id: UUID
    center_id: str
    counter_id: str
    resident_id: UUID | None
    channel: str
    purpose: str
    expires_at: datetime
    token: str | None
    """None for a call (``phone_callback``): the phone desk records what the resident says as
    staff (``clerk_id``, checked against who served them), so no link goes to it; a link in a
    clerk's hands would answer as the resident, past that check (代评)."""


#: Who served a case as feedback knows it now (``consumer.served_now``: its intake steps'
#: actors and, read as they come, those who moved its help tasks along), for an answer staff
#: record after the survey was asked.
ServedNow = Callable[[UUID], Awaitable[tuple[str, ...]]]


#: The latest day feedback has recorded anything at a center on, as it has read it
#: (``figures.queries.center_seen_on``): an appeal window, a triage's missed deadline and an
#: outcome's grace are judged on it when the clock says an earlier day (``judged_day``).
CenterSeenOn = Callable[[str], Awaitable[date | None]]


class Feedback:
    """The feedback use cases, shared by the HTTP API, the consumers and the scheduler."""

    def __init__(self, committer: GroupCommitter, policy: SurveyPolicy, tokens: SurveyTokens,
                 calendars: Calendars, clock: Clock | None = None,
                 moments: Moments | None = None, case_texts: CaseTexts | None = None,
                 served_now: ServedNow | None = None,
                 center_seen_on: CenterSeenOn | None = None) -> None:
        self.path = CommandPath(committer, clock, moments, case_texts)
        self.clock = self.path.clock
        self.policy = policy
        self.tokens = tokens
        self.calendars = calendars
        self.served_now = served_now
        self.center_seen_on = center_seen_on

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.policy.tz).date()

    # -- from intake: a resolution asks for a survey; a reopening withdraws it --------------

    def on_the_tablet(self, case: ResolvedCase) -> bool:
        """Whether the resolution's survey is put before the resident at the window (the
        counter's tablet), as ``request_survey`` asks it."""
        return self.policy.channel_for(case.intake_channel, case.resident_id,
                                       case.at_window) == SurveyChannel.TABLET

    def plan(self, case: ResolvedCase) -> Plan:
        """The resolution's survey's channel and timing (``SurveyPolicy``): worked out once
        for ``is_too_old``, ``asked_at`` and ``request_survey`` of the same resolution (the
        intake follower asks all three; each worked it out again, the quiet hours' time-zone
        arithmetic three times a resolution)."""
        channel = self.policy.channel_for(case.intake_channel, case.resident_id,
                                          case.at_window)
        return Plan(channel, *self.policy.timing(channel, case.resolved_at))

    def asked_at(self, case: ResolvedCase, consent: Consent | None = None,
                 plan: Plan | None = None) -> datetime | None:
        """When the resolution's survey is put before the resident, as ``request_survey``
        times it: at once on the tablet; a text or a clerk's call at its ``send_at``, after
        the delay and out of the quiet hours. None when it never is: the resident may not
        be asked on its channel (``consent``: no consent to a text or a call, or erased),
        so ``request_survey`` withdraws it in the same commit (or the consumer asks
        nothing). ``plan``: ``plan(case)``, if worked out already."""
        channel, send_at, _ = plan or self.plan(case)
        if consent is not None and consent.forbids(channel.value) is not None:
            return None
        return send_at

    def is_too_old(self, case: ResolvedCase, plan: Plan | None = None) -> bool:
        """A resolution seen only after its survey would have expired gets no survey.

        That happens when feedback first reads a long history: old cases are not texted.
        ``plan``: ``plan(case)``, if worked out already.
        """
        return self.clock.now() >= (plan or self.plan(case)).expires_at

    def request_survey(self, case: ResolvedCase, consent: Consent | None = None,
                       plan: Plan | None = None) -> Sent:
        """The resolution's survey, once. When the resident may not be asked on its channel
        (``consent``), it is withdrawn in the same commit: recorded as *no consent*. Queued
        as it is called (``GroupCommitter.send``): await the answer. ``plan``: ``plan(case)``, if
        worked out already."""
        survey_id, build = self._requested(case, consent, plan)
        return self.path.create(survey_id, "SurveyRequested", None, build)

    def request_surveys(self, asked: Sequence[tuple[ResolvedCase, Consent | None, Plan | None]]
                        ) -> Sent:
        """``request_survey`` for each of a consumer batch's resolutions, in one command
        (``CommandPath.create_each``): one survey already there is left as it is (a batch
        delivered again asks nothing twice), the others are created; answered once for all.
        One command instead of one each: the writer's round runs one command, not one per
        survey (its future, queue item, due time, answer and the caller's await each), and
        the batch's requests are never split across rounds at ``GROUP_COMMIT_MAX_BATCH``."""
        builds: dict[UUID, Callable[[], Survey]] = {}
        for case, consent, plan in asked:
            survey_id, build = self._requested(case, consent, plan)
            builds.setdefault(survey_id, build)
        return self.path.create_each(builds)

    def _requested(self, case: ResolvedCase, consent: Consent | None, plan: Plan | None
                   ) -> tuple[UUID, Callable[[], Survey]]:
        """The resolution's survey's id and what builds it (``request_survey``)."""
        survey_id = survey_id_for_resolution(case.resolved_event_id)
        channel, send_at, expires_at = plan or self.plan(case)
        now = self.clock.now()
        if channel != SurveyChannel.TABLET and send_at < now < expires_at:
            # A resolution posted late (the counter page's queue, within the 72 h grace that
            # keeps its moment) or read late: the text or the call goes on a later day than
            # planned, and its answer window keeps its days from that day. Counted from the
            # resolution, one sent two days late gave the resident five days of seven, and
            # the no answer came early. Whole days: read a second late, it is the same day's.
            goes = max(self.policy.goes_at(channel, send_at, now), now)
            late = (goes.astimezone(self.policy.tz).date()
                    - send_at.astimezone(self.policy.tz).date())
            expires_at += late
        cause = str(case.resolved_event_id)
        meta = self.path.meta("system:feedback", cause, center_id=case.center_id,
                              case_id=case.case_id) | {"correlation_id": case.correlation_id}

        def build() -> Survey:
            survey = Survey(id=survey_id, survey_id=survey_id,
                            purpose=SurveyPurpose.RESOLUTION.value, channel=channel.value,
                            resident_id=case.resident_id, counter_id=case.counter_id,
                            clerk_id=case.clerk_id, service_item=case.service_item,
                            send_at=send_at, expires_at=expires_at, rectification_id=None,
                            meta=meta, served_by=tuple(case.served_by))
            if consent is not None:
                survey.respect(consent, meta)
            return survey

        return survey_id, build

    async def respect_consent(self, survey_id: UUID, consent: Consent,
                              cause: str | None) -> WithdrawalCause | None:
        """Withdraw a survey the resident may no longer be asked (``Consent.forbids``);
        nothing when it may still ask or is closed already. ``cause``: the upstream event."""
        outcome: dict[str, WithdrawalCause | None] = {}

        def act(survey: Survey, meta: Meta) -> None:
            outcome["because"] = survey.respect(consent, meta)

        await self.path.on(survey_id, "survey", "SurveyWithdrawn", act,  # a repeated cause:
                           self.path.meta("system:feedback", cause), cause)  # nothing, again
        return outcome.get("because")

    async def withdraw_survey(self, survey_id: UUID, reason: str, cause: str) -> Written:
        return await self.path.on(survey_id, "survey", "SurveyWithdrawn",
                                  lambda survey, meta: survey.withdraw(reason, meta),
                                  self.path.meta("system:feedback", cause), cause)

    async def withdraw_unless_sent(self, survey_id: UUID, reason: str, cause: str) -> bool:
        """``Survey.withdraw_unless_sent``, decided on the survey itself (its real sent state,
        not its send moment as planned): True when it was not put before the resident and is
        withdrawn by a reopening. No key: a repeated cause finds it withdrawn, and says so."""
        outcome: dict[str, bool] = {}

        def act(survey: Survey, meta: Meta) -> None:
            outcome["withdrawn"] = survey.withdraw_unless_sent(reason, meta)

        await self.path.on(survey_id, "survey", "SurveyWithdrawn", act,
                           self.path.meta("system:feedback", cause), None)
        return outcome.get("withdrawn", False)

    # -- the scheduler: send when due, expire when the deadline passes ----------------------

    async def send_survey(self, survey_id: UUID) -> Outgoing:
        """Record the survey as sent (once) and return what to hand to the sender."""
        meta = self.path.meta("system:feedback-scheduler", None)
        now = meta["occurred_at"]
        out: dict[str, Outgoing] = {}

        def act(survey: Survey, meta: Meta) -> None:
            survey.send(now, meta)
            out["message"] = Outgoing(
                survey_id=survey.id, case_id=survey.case_id, center_id=survey.center_id,
                counter_id=survey.counter_id, resident_id=survey.resident_id,
                channel=survey.channel, purpose=survey.purpose, expires_at=survey.expires_at,
                token=(None if survey.channel == "phone_callback"
                       else self.tokens.issue(survey.id, survey.expires_at,
                                              at_window=survey.channel == WINDOW)))

        await self.path.on(survey_id, "survey", "SurveySent", act, meta, None)
        return out["message"]

    async def redirect_survey(self, survey_id: UUID) -> Written:
        """A tablet survey the window can no longer offer its resident (``window_offer``) is
        asked where they are (``SurveyPolicy.away_from_window``), timed as if asked there from
        the resolution (its tablet ``send_at``): the delay, out of the quiet hours, and the
        answer window from then. The same survey, once (``Survey.redirect``): the scheduler
        sends it on its new channel after reading the resident's consent again."""
        meta = self.path.meta("system:feedback-scheduler", None)
        now = meta["occurred_at"]

        def act(survey: Survey, meta: Meta) -> None:
            channel = self.policy.away_from_window(survey.resident_id)
            send_at, expires_at = self.policy.timing(channel, survey.send_at)
            survey.redirect(channel, send_at, expires_at, now, meta)

        return await self.path.on(survey_id, "survey", "SurveyRedirected", act, meta, None)

    async def expire_survey(self, survey_id: UUID, rectification_id: UUID | None = None
                            ) -> Written:
        """No answer by the deadline. A named resident's revisit (``rectification_id``) is a
        task until done: its rectification asks again by phone in the same commit."""
        meta = self.path.meta("system:feedback-scheduler", None)
        now = meta["occurred_at"]
        if rectification_id is None:
            return await self.path.on(survey_id, "survey", "SurveyExpired",
                                      lambda survey, meta: survey.expire(now, meta), meta, None)

        def run(unit: Unit) -> Aggregate:
            survey: Survey = unit.get(survey_id, "survey")
            survey.expire(now, survey.meta_for(dict(meta)))
            rectification: Rectification = unit.get(rectification_id, "rectification")
            send_at, expires_at = self.policy.timing(SurveyChannel.PHONE_CALLBACK, now)
            again = rectification.ask_again(survey_id, send_at, expires_at,
                                            rectification.meta_for(dict(meta)))
            if again is not None:
                unit.add(again)
            return survey

        return await self.path.committer.submit(run, [survey_id, rectification_id])

    # -- the resident's answer --------------------------------------------------------------

    async def _on_survey(self, survey_id: UUID, kind: str,
                         act: Callable[[Survey, Meta, tuple[str, ...]], Any], meta: Meta,
                         key: str | None, expected_version: int | None, staff: bool
                         ) -> Written:
        """``act`` on the survey, given (for a revisit recorded by ``staff``) who its
        rectification was served by now: who recorded the outcome is kept on the
        rectification (``RectificationCompleted``'s actor), but a revisit asked before this
        was kept names only the staff who served the case, and the rectifier could decline
        such a revisit (still open, or asked again by phone after it expired) or rate their
        own work. The rectification a survey revisits is fixed when the survey is asked.

        Nor does the survey's own ``served_by`` (who served the case when it was asked) name
        who served it since, as feedback has read it (``served_now``): a supervisor who
        finishes an escalated help task after the resolution (it stays open past its
        deadline, ``HelpTask.close_as_not_needed``), or whose steps feedback read after the
        resolution, served the case all the same, and follow-up refuses them its check's
        verdict (代评)."""
        rectification_id: UUID | None = None
        since: tuple[str, ...] = ()
        if staff:
            asked = await self._in_reach(survey_id)  # None: the command's 404 says so
            rectification_id = getattr(asked, "rectification_id", None)
            case_id = getattr(asked, "case_id", None)
            if self.served_now is not None and case_id is not None:
                since = await self.served_now(case_id)
        served: dict[str, tuple[str, ...]] = {}
        inner = on_existing(survey_id, "survey", kind,
                            lambda survey, meta: act(survey, meta, served["by"]),
                            meta, key, expected_version)

        def run(unit: Unit) -> Aggregate:
            rectification = unit.find(rectification_id) if rectification_id else None
            served["by"] = (*getattr(rectification, "served_by", ()), *since)
            return inner(unit)

        ids = [survey_id] if rectification_id is None else [survey_id, rectification_id]
        return await self.path.committer.submit(run, ids)

    async def decline(self, survey_id: UUID, cmd: c.DeclineRating, key: str,
                      expected_version: int | None = None, *,
                      clerk: str | None = None) -> Written:
        """The resident declines to rate (``SurveyDeclined``, actor ``resident``): with the
        link's token, or (``cmd.token`` None) a resident's bearer token bound to the survey's
        case, checked where the survey is loaded. ``clerk``: the authenticated staff member
        who asked by phone records what the resident said (actor the clerk; only a survey
        asked by phone, and not by staff who served the case, ``Survey.decline``)."""
        now = self.clock.now()
        if cmd.token is not None:
            # A forged link, or another survey's, fails before anything is loaded, as for a
            # rating: checked only once the survey was loaded, another survey's link was a
            # 403 for a survey that exists (at any center: which cases were resolved there,
            # its id being worked out from the case's resolution) and a 404 for none.
            self.tokens.of_survey(cmd.token, survey_id)
        if clerk is None:
            cmd = cmd.model_copy(update=RESIDENT_NOW)  # a resident declines now
        meta = self.path.meta(clerk or "resident", key, cmd)

        def act(survey: Survey, meta: Meta, served: tuple[str, ...]) -> None:
            if cmd.token is not None:
                self.tokens.check(cmd.token, survey_id, now, survey.channel)
            survey.decline(now, meta, by_staff=clerk, also_served=served)

        return await self._on_survey(survey_id, "SurveyDeclined", act, meta, key,
                                     expected_version, clerk is not None)

    async def rate(self, survey_id: UUID, cmd: c.RateService, actor: str, key: str,
                   expected_version: int | None = None, *, resident: bool = False,
                   on_behalf: bool = False, signed_in: str | None = None) -> Written:
        """A rating; a bad review opens its rectification in the same commit.

        ``resident``: the resident answers with a bearer token bound to the survey's case
        (checked where the survey is loaded), instead of the link's token.

        ``signed_in``: the staff subject whose bearer token came with the link's token (the
        survey's QR code is on the serving clerk's screen): nobody who opened or served the
        case answers with the link while signed in either (403 ``self_rating``, 代评), as
        when they record an answer as staff.

        Staff record an answer as ``actor``, the authenticated subject, which the event keeps
        as its actor. ``cmd.clerk_id`` names the clerk the answer is attributed to: the actor
        themselves, or, only when ``on_behalf`` (a supervisor), another clerk; then both are
        recorded (the envelope's actor and the payload's ``clerk_id``)."""
        now = self.clock.now()
        clerk_id = cmd.clerk_id
        recorder: Recorder | None = None
        if cmd.token is not None or resident:
            if cmd.token is not None:
                # A forged link, or another survey's, fails before anything is loaded, and
                # before intake is asked to read this survey's resident for its comment.
                self.tokens.of_survey(cmd.token, survey_id)
            via, actor = AnsweredVia.TOKEN, "resident"
            cmd = cmd.model_copy(update=RESIDENT_NOW)  # a resident answers now
        else:
            via, clerk_id = AnsweredVia.CLERK, clerk_id or actor
            if clerk_id != actor and not on_behalf:
                raise ActorMismatch(
                    "a clerk records answers in their own name: clerk_id must be the token's "
                    "subject (only a supervisor records an answer on a clerk's behalf)",
                    clerk_id=clerk_id, actor=actor)
            recorder = Recorder(actor, clerk_id, cmd.channel or StaffChannel.PHONE_CALLBACK)
        answer = Answer(cmd.level, cmd.comment, {a.value: m for a, m in cmd.aspects.items()},
                        cmd.verdict, tuple(cmd.reason_tags))
        answer.check(self.policy.reason_tags)
        meta = self.path.meta(actor, key, cmd)
        await self.path.scrubbing(meta, survey_id, cmd.comment)

        def act(survey: Survey, meta: Meta, served: tuple[str, ...]) -> Rectification | None:
            if cmd.token is not None:
                self.tokens.check(cmd.token, survey_id, now, survey.channel)
                if signed_in is not None:  # answered or expired first, as for staff
                    survey.check_answerable(now)
                    survey.check_not_own(Recorder(signed_in, signed_in), served)
            survey.rate(answer, via, recorder, now, meta, served)
            if not survey.is_bad_review:
                return None
            calendar = self.calendars.for_center(survey.center_id)  # a day past the calendar:
            return covered(lambda: Rectification.open_for(  # 422, the answer not lost
                survey, calendar, self.policy.working_days(self.policy.default_track), meta,
                recorded_on=calendar.local_day(now)))

        return await self._on_survey(survey_id, "RatingGiven", act, meta, key,
                                     expected_version,
                                     recorder is not None or signed_in is not None)

    # -- the supervisor: what was done about a bad review, then ask again -------------------

    async def complete_rectification(self, rectification_id: UUID,
                                     cmd: c.CompleteRectification, actor: str, key: str,
                                     expected_version: int | None = None) -> Written:
        now = self.clock.now()
        meta = self.path.meta(actor, key, cmd)
        await self.path.scrubbing(meta, rectification_id, cmd.actions)
        # Who served the case since its survey was asked bars the outcome as the triage and
        # the appeal's decision (a supervisor who finished the help task after the resolution).
        known = await self._in_reach(rectification_id)
        since = await self._served_of(known)
        seen_on = await self._center_seen_on(known)

        def act(rectification: Rectification, meta: Meta) -> Survey:
            done_at: datetime = meta["occurred_at"]
            # Judged on the day given, unless posted more than the grace after it (backdated):
            # then on feedback's clock less the grace (shared.kernel.moments); that clock never
            # before the day the center reached (its last closed survey, the review's own
            # events: ``judged_day``): a clock set back past the grace recorded a missed
            # rectification put right on time (until redteam109).
            calendar = self.calendars.for_center(rectification.center_id)
            day = judged_day(calendar.local_day(now), seen_on, rectification.seen_day(calendar),
                             ahead_until=self.policy.clock_ahead_until)
            clock_at = max(now, calendar.start_of_day(day))
            judged_at = self.path.moments.judged_at(done_at, clock_at) or done_at
            rectification.complete(cmd.outcome.value, cmd.actions, self.local_day(judged_at),
                                   meta, since)
            channel = rectification.revisit_channel_for(self.policy.revisit_channel)
            send_at, expires_at = self.policy.timing(channel, max(done_at, now))
            return rectification.request_revisit(send_at, expires_at, meta, channel)

        return await self.path.on(rectification_id, "rectification", "RectificationCompleted",
                                  act, meta, key, expected_version)

    # -- 好差评: triage, the clerk's appeal, the supervisor's decision -----------------------

    async def triage(self, rectification_id: UUID, cmd: c.TriageRectification, actor: str,
                     key: str, expected_version: int | None = None) -> Written:
        """Put a bad review on its track; the deadline is the track's working days after the
        day of the triage, on the center's calendar (422 past the years it covers)."""
        meta = self.path.meta(actor, key, cmd)
        days = self.policy.working_days(cmd.track)
        known = await self._in_reach(rectification_id)
        since = await self._served_of(known)
        seen_on = await self._center_seen_on(known)
        ahead_until = self.policy.clock_ahead_until

        def act(rectification: Rectification, meta: Meta) -> None:
            calendar = self.calendars.for_center(rectification.center_id)
            today = calendar.local_day(meta["occurred_at"])
            # Not a day the caller gives: the service's, or the center's last closed survey's
            # when later (a clock set back past a missed deadline moves it on no more than it
            # reopens an appeal window: nothing is recorded of a missed rectification after
            # its deadline, so its own days did not hold it; until redteam109).
            as_of = judged_day(calendar.local_day(self.clock.now()), seen_on,
                               ahead_until=ahead_until)
            covered(lambda: rectification.triage(cmd.track, days, calendar, today, meta,
                                                 as_of, since, ahead_until))

        return await self.path.on(rectification_id, "rectification", "RectificationTriaged",
                                  act, meta, key, expected_version)

    async def lodge_appeal(self, rectification_id: UUID, cmd: c.LodgeAppeal, actor: str,
                           key: str, expected_version: int | None = None, *,
                           on_behalf: bool = False) -> Written:
        """The reviewed clerk's appeal; ``on_behalf``: a supervisor lodges it for them.
        Within ``appeal_working_days`` of the review, on the service's day (409
        ``appeal_window_closed``; 422 past the calendar), or on the latest day the service
        recorded anything of the review or at its center when later (``seen_on``,
        ``Rectification.seen_day``): a clock set back does not reopen a closed window; but
        not a day up to ``CLOCK_AHEAD_UNTIL`` (``judged_day``): the clock ran ahead then."""
        meta = self.path.meta(actor, key, cmd)
        await self.path.scrubbing(meta, rectification_id, cmd.reasons)
        seen_on = await self._center_seen_on(await self._in_reach(rectification_id))

        def act(rectification: Rectification, meta: Meta) -> None:
            calendar = self.calendars.for_center(rectification.center_id)
            ahead_until = self.policy.clock_ahead_until
            window = AppealWindow(
                calendar, judged_day(calendar.local_day(self.clock.now()), seen_on,
                                     ahead_until=ahead_until),
                self.policy.appeal_working_days, ahead_until)
            covered(lambda: rectification.lodge_appeal(cmd.reasons, meta, on_behalf, window))

        return await self.path.on(rectification_id, "rectification", "RectificationAppealed",
                                  act, meta, key, expected_version)

    async def decide_appeal(self, rectification_id: UUID, cmd: c.DecideAppeal, actor: str,
                            key: str, expected_version: int | None = None) -> Written:
        meta = self.path.meta(actor, key, cmd)
        await self.path.scrubbing(meta, rectification_id, cmd.reasons)
        since = await self._served_since(rectification_id)
        return await self.path.on(
            rectification_id, "rectification", "RectificationAppealDecided",
            lambda rectification, meta: rectification.decide_appeal(
                cmd.decision, cmd.grounds, cmd.reasons, actor, meta, since),
            meta, key, expected_version)

    async def _served_since(self, aggregate_id: UUID) -> tuple[str, ...]:
        """Who served the case of a survey or rectification as feedback has read it now
        (``served_now``), beyond the staff the survey named when it was asked: nothing when
        it is not found (the command's 404 says so)."""
        if self.served_now is None:
            return ()
        return await self._served_of(await self._in_reach(aggregate_id))

    async def _served_of(self, known: Aggregate | None) -> tuple[str, ...]:
        """``_served_since`` for ``known``, ``_in_reach``'s answer already asked."""
        case_id = getattr(known, "case_id", None)
        if self.served_now is None or case_id is None:
            return ()
        return await self.served_now(case_id)

    async def center_seen_on(self, center_id: str) -> date | None:
        """The latest day a survey of ``center_id`` closed on, as the figures read it (None:
        none yet, or no read model wired: a test's)."""
        return None if self.seen_on is None else await self.seen_on(center_id)

    async def judged_today(self, center_id: str) -> date:
        """The day a rectification of ``center_id`` is judged overdue on, as its triage
        judges a missed deadline (``judged_day``): the service's day, or the latest day a
        survey of the center closed on when later, but not a day up to ``CLOCK_AHEAD_UNTIL``.
        The supervisor's board read "not overdue" on a clock set back while the triage
        refused the same rectification as ``deadline_missed`` (until calendar54)."""
        calendar = self.calendars.for_center(center_id)
        seen = await self.center_seen_on(center_id)
        return judged_day(calendar.local_day(self.clock.now()), seen,
                          ahead_until=self.policy.clock_ahead_until)

    async def _center_seen_on(self, known: Aggregate | None) -> date | None:
        """The latest day a survey of a rectification's center closed on (``center_seen_on``), for
        one in the caller's reach (``known``: ``_in_reach``'s answer); None for none, or for
        another center's: nothing asked of the read model, the command's 404 as for none."""
        if self.center_seen_on is None or not isinstance(known, Rectification):
            return None
        return await self.center_seen_on(known.center_id)

    async def _in_reach(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate as stored, when the caller may act on it; None when there is none
        or it is out of the caller's reach (``out_of_scope``, the unit's own check): the
        command then answers the 404 as it loads it. Before, another center's survey or
        rectification was read on (its rectification loaded, who served its case asked of
        the read model) before that 404: the staff's answer to another center's survey
        whose case's help work feedback had not read yet was a 504 ``read_model_behind``,
        and a survey nobody has a 404."""
        try:
            found = await asyncio.to_thread(self.path.committer.app.repository.get,
                                            aggregate_id)
        except AggregateNotFoundError:
            return None
        return None if out_of_scope(current_caller(), found) is not None else found

    # -- re-planning: an official schedule replaced a provisional year -----------------------

    async def revise_deadline(self, rectification_id: UUID,
                              center_seen_on: date | None = None) -> bool:
        """Count an open rectification's working days again on the calendar in force (True:
        the deadline moved). Exactly once over replicas: the key names the official
        schedules and the rectification's version (``WorkingCalendar.replanning_key``), and
        optimistic concurrency settles a race. Whether its deadline was already missed is
        judged as its triage judges it (``judged_day``): on the service's day, or on
        ``center_seen_on`` (the latest day a survey of its center closed on, ``seen_on``) or
        its own latest recorded day when later (a clock set back, a schedule published
        meanwhile, moved a missed provisional deadline on, until calendar54)."""
        now = self.clock.now()
        ahead_until = self.policy.clock_ahead_until
        moved: dict[str, bool] = {}

        def run(unit: Unit) -> Aggregate:
            moved["yes"] = False  # a batch re-run after a conflict starts again
            rectification: Rectification = unit.get(rectification_id, "rectification")
            calendar = self.calendars.for_center(rectification.center_id)
            meta = meta_for("system:calendar", calendar.replanning_key(rectification.version),
                            now)
            today = judged_day(calendar.local_day(now), center_seen_on, ahead_until=ahead_until)
            moved["yes"] = covered(lambda: rectification.revise_deadline(
                calendar, today, meta, ahead_until))
            return rectification

        await self.path.committer.submit(run, [rectification_id])  # a replay moves nothing
        return moved.get("yes", False)
