"""Step 6, the resident's verdict: the Survey and Rectification aggregates. No I/O here.

A ``Survey`` asks one resident about one case once: it is requested, sent, and ends answered,
expired without an answer, or withdrawn. A bad answer opens a ``Rectification``, whose outcome
is recorded before a revisit survey asks the resident again. Its deadline is worked out on the
center's working-day calendar; one that rests on a provisional year (no published schedule
yet) is revised once that year's official schedule is known (``revise_deadline``).

What the resident agreed to (``Consent``, from intake's ``ConsentChanged`` and
``ResidentErased``) decides whether a survey may ask at all: a text or a call reaches the
resident where they are and needs their consent to surveys; the counter's tablet asks a
resident who is there in person, who answers or does not (no consent needed); an erased
resident is asked nothing. A survey that may not ask is withdrawn (``SurveyWithdrawn`` with
``because``), counted as *no consent*, never as *no answer*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import event

from shared.contracts.feedback import (
    AnsweredVia,
    AppealDecision,
    AppealGrounds,
    RatingLevel,
    RectificationTrack,
    StaffChannel,
    SurveyChannel,
    SurveyPurpose,
    WithdrawalCause,
)
from shared.contracts.vocabulary import Verdict
from shared.kernel.calendar import Basis, WorkingCalendar
from shared.kernel.errors import CommandError, InvalidCommand, RuleViolated
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.ids import uuid5
from shared.kernel.meta import Meta
from shared.kernel.serving import is_own_case

FEEDBACK_NAMESPACE = UUID("3b9d6f0e-8a41-4c7e-b2d5-91e0c4a7f6b3")


SUMMARY_LENGTH = 280


def survey_id_for_resolution(resolved_event_id: UUID) -> UUID:
    """One survey per resolution: the same CaseResolved event always asks the same survey."""
    return uuid5(FEEDBACK_NAMESPACE, f"survey:resolution:{resolved_event_id}")


def rectification_id_for(survey_id: UUID) -> UUID:
    """At most one rectification per answered survey."""
    return uuid5(FEEDBACK_NAMESPACE, f"rectification:{survey_id}")


def revisit_survey_id_for(rectification_id: UUID, attempt: int = 1) -> UUID:
    """One revisit survey per rectification and attempt (the first keeps its old id)."""
    if attempt == 1:
        return uuid5(FEEDBACK_NAMESPACE, f"survey:revisit:{rectification_id}")
    return uuid5(FEEDBACK_NAMESPACE, f"survey:revisit:{rectification_id}:{attempt}")


# -- what the resident agreed to --------------------------------------------------------------

#: Channels that reach the resident where they are: only with their consent to surveys.
REACHES_OUT = frozenset({SurveyChannel.SMS, SurveyChannel.PHONE_CALLBACK})


@dataclass(frozen=True)
class Consent:
    """What feedback knows of a resident: whether they may be asked, whether they are erased.

    A resident intake never said anything about (registered before consent was recorded, or
    whose ``ConsentChanged`` has not arrived yet) may be asked; a later refusal withdraws what
    is still open."""

    surveys: bool = True
    erased: bool = False

    def forbids(self, channel: str) -> WithdrawalCause | None:
        """Why a survey on ``channel`` may not ask this resident, or None when it may."""
        if self.erased:
            return WithdrawalCause.ERASED
        if not self.surveys and channel in REACHES_OUT:
            return WithdrawalCause.NO_CONSENT
        return None


WITHDRAWN_BECAUSE = {
    WithdrawalCause.NO_CONSENT: "the resident has not agreed to be asked for feedback this way",
    WithdrawalCause.ERASED: "the resident's personal data was erased",
}


# -- errors a resident or a clerk can meet ----------------------------------------------------


class SurveyAlreadyAnswered(CommandError):
    status = 409
    code = "survey_already_answered"


class StaffDeclineRefused(CommandError):
    """Staff recorded a decline for a survey the resident answers themselves."""

    status = 403
    code = "forbidden_role"


class SurveyDeclinedError(CommandError):
    """The resident declined to rate this survey: it takes no answer after that."""

    status = 409
    code = "survey_declined"


class SurveyWithdrawnError(CommandError):
    status = 409
    code = "survey_withdrawn"


class SelfRating(CommandError):
    """代评: staff may not record the answer on a case they opened or served."""

    status = 403
    code = "self_rating"


class SurveyClosed(CommandError):
    """The survey's deadline passed: its answer is recorded as no answer."""

    status = 410
    code = "survey_expired"


SELF_DECISION = {"appealed": "lodged this appeal", "reviewed": "is the clerk reviewed",
                 "served": "served the case"}
"""Why a supervisor may not decide an appeal, triage the bad review nor record its outcome
(``SelfDecision``'s ``because``)."""


class SelfDecision(CommandError):
    """An appeal is decided, a bad review triaged and its rectification's outcome recorded by a
    supervisor other than the clerk who appealed or was reviewed, and other than the staff
    who served the case (申诉复核)."""

    status = 403
    code = "self_decision"


class NotYourReview(CommandError):
    """A clerk appeals a bad review of their own service; a supervisor may for a clerk."""

    status = 403
    code = "forbidden_actor"


class AppealExists(CommandError):
    status = 409
    code = "appeal_exists"


class AppealWindowClosed(CommandError):
    """A bad review appealed after its window (申诉时限): it stands, and is put right."""

    status = 409
    code = "appeal_window_closed"


class NoAppealPending(CommandError):
    status = 409
    code = "no_appeal_pending"
# -- the answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a resident answered: the level, whether the matter was solved, reasons for a bad
    review (from ``allowed_tags``), a comment and aspect marks."""

    level: RatingLevel
    comment: str = ""
    aspects: dict[str, int] | None = None
    verdict: Verdict | None = None
    reason_tags: tuple[str, ...] = ()

    def check(self, allowed_tags: tuple[str, ...]) -> None:
        unknown = [t for t in self.reason_tags if t not in allowed_tags]
        if unknown:
            raise InvalidCommand("reason_tags are picked from the center's list",
                                 field="reason_tags", unknown=unknown,
                                 allowed=list(allowed_tags))
        if self.reason_tags and not self.level.is_bad_review:
            raise InvalidCommand("reasons are asked for a bad review (dissatisfied or very "
                                 "dissatisfied) only", field="reason_tags")
        if len(set(self.reason_tags)) != len(self.reason_tags):
            raise InvalidCommand("a reason is picked once", field="reason_tags")


@dataclass(frozen=True)
class Recorder:
    """Who records an answer for the resident (staff, ``via = clerk``): the authenticated
    ``actor``, the clerk it is attributed to, and how they came by it."""

    actor: str
    clerk_id: str
    channel: StaffChannel = StaffChannel.PHONE_CALLBACK


# -- the survey -------------------------------------------------------------------------------


class Survey(RemembersCommands):
    """One question to one resident about one case: how satisfied are you?"""

    @event("SurveyRequested")
    def __init__(self, id: UUID, survey_id: UUID, purpose: str, channel: str,
                 resident_id: UUID | None, counter_id: str, clerk_id: str, service_item: str,
                 send_at: datetime, expires_at: datetime, rectification_id: UUID | None,
                 meta: Meta, served_by: tuple[str, ...] = ()) -> None:
        """``served_by``: the staff who opened or acted on the case (kept in the store, not in
        the contract): none of them may record its answer (``SelfRating``). Surveys asked
        before it was kept have none; the case's clerk is always among them."""
        self.case_id: UUID = meta["case_id"]
        self.center_id: str = meta["center_id"]
        self.purpose = purpose
        self.channel = channel
        self.resident_id = resident_id
        self.counter_id = counter_id
        self.clerk_id = clerk_id
        self.service_item = service_item
        self.send_at = send_at
        self.expires_at = expires_at
        self.rectification_id = rectification_id
        self.served_by = tuple(served_by)
        self.status = "requested"
        self.level: str | None = None
        self.reason_tags: tuple[str, ...] = ()
        self.withdrawn_because: str | None = None
        #: Whether it was ever put before the resident (``SurveySent``): a survey withdrawn
        #: since says so no more by its status (``withdraw_unless_sent``).
        self.was_sent = False
        self._remember(meta, "SurveyRequested", created=True)

    @property
    def is_open(self) -> bool:
        return self.status in ("requested", "sent")

    def is_past_deadline(self, now: datetime) -> bool:
        return now >= self.expires_at

    # -- sending ----------------------------------------------------------------------------

    def send(self, now: datetime, meta: Meta) -> None:
        if self.status != "requested":
            raise RuleViolated("the survey is not waiting to be sent", status=self.status,
                               rule="survey_not_pending")
        if self.is_past_deadline(now):
            raise SurveyClosed("the survey's deadline passed before it was sent",
                               expires_at=self.expires_at.isoformat())
        self._sent(survey_id=self.id, channel=self.channel, expires_at=self.expires_at,
                   meta=self.meta_for(meta))

    @event("SurveySent")
    def _sent(self, survey_id: UUID, channel: str, expires_at: datetime, meta: Meta) -> None:
        self.status = "sent"
        self.was_sent = True
        self._remember(meta, "SurveySent")

    def redirect(self, channel: SurveyChannel, send_at: datetime, expires_at: datetime,
                 now: datetime, meta: Meta) -> None:
        """The window can no longer offer this tablet survey to its resident (``window_offer``):
        ask them where they are instead, on ``channel`` (SMS, or a clerk's call when nobody is
        on file), from ``send_at`` until ``expires_at``. Once: only a tablet survey sent and
        still waiting is redirected, and a redirected survey is no longer the tablet's."""
        if self.status != "sent" or self.channel != SurveyChannel.TABLET:
            raise RuleViolated("only a survey sent to the window's tablet and still waiting is "
                               "asked again elsewhere", status=self.status,
                               channel=self.channel, rule="survey_not_at_tablet")
        if channel == SurveyChannel.TABLET:
            raise RuleViolated("a survey is redirected away from the tablet", channel=channel,
                               rule="survey_redirect_to_tablet")
        if self.is_past_deadline(now):
            raise SurveyClosed("the survey's deadline passed before it was asked again",
                               expires_at=self.expires_at.isoformat())
        self._redirected(survey_id=self.id, from_channel=self.channel, channel=channel.value,
                         send_at=send_at, expires_at=expires_at, meta=self.meta_for(meta))

    @event("SurveyRedirected")
    def _redirected(self, survey_id: UUID, from_channel: str, channel: str, send_at: datetime,
                    expires_at: datetime, meta: Meta) -> None:
        self.channel = channel
        self.send_at = send_at
        self.expires_at = expires_at
        self.status = "requested"  # sent again, on its new channel, by the scheduler
        self._remember(meta, "SurveyRedirected")

    # -- answering --------------------------------------------------------------------------

    def check_answerable(self, now: datetime) -> None:
        if self.status == "answered":
            raise SurveyAlreadyAnswered("this survey was already answered; it takes one answer",
                                        survey_id=str(self.id))
        if self.status == "declined":
            raise SurveyDeclinedError("the resident declined to rate this survey",
                                      survey_id=str(self.id))
        if self.status == "withdrawn":
            why = WITHDRAWN_BECAUSE.get(self.withdrawn_because, "the case was reopened")
            raise SurveyWithdrawnError(f"this survey was withdrawn: {why}",
                                       survey_id=str(self.id))
        if self.status == "expired" or self.is_past_deadline(now):
            raise SurveyClosed("the survey's deadline has passed; it was recorded as no answer",
                               survey_id=str(self.id), expires_at=self.expires_at.isoformat())

    def check_not_own(self, recorder: Recorder, also: tuple[str, ...] = ()) -> None:
        """No 代评: nobody who opened or served the case records its answer, neither as the
        one recording nor as the clerk it is attributed to. ``also``: for a revisit, its
        rectification's ``served_by`` as it is now (a revisit asked before who recorded the
        outcome was kept there does not name them)."""
        own = {*getattr(self, "served_by", ()), *also}
        for who in dict.fromkeys((recorder.actor, recorder.clerk_id)):
            if is_own_case(who, self.clerk_id, own):
                raise SelfRating("staff cannot record the answer on a case they opened or "
                                 "served (代评): another colleague calls the resident back",
                                 staff=who, survey_id=str(self.id))

    def rate(self, answer: Answer, via: AnsweredVia, recorder: Recorder | None,
             now: datetime, meta: Meta, also_served: tuple[str, ...] = ()) -> None:
        self.check_answerable(now)
        if recorder is not None:
            self.check_not_own(recorder, also_served)
        self._rated(survey_id=self.id, purpose=self.purpose, level=answer.level.value,
                    comment=answer.comment, aspects=dict(answer.aspects or {}), via=via.value,
                    clerk_id=recorder.clerk_id if recorder else None,
                    rectification_id=self.rectification_id, meta=self.meta_for(meta),
                    verdict=answer.verdict.value if answer.verdict else None,
                    reason_tags=tuple(answer.reason_tags),
                    staff_channel=recorder.channel.value if recorder else None)

    @event("RatingGiven")
    def _rated(self, survey_id: UUID, purpose: str, level: str, comment: str,
               aspects: dict[str, int], via: str, clerk_id: str | None,
               rectification_id: UUID | None, meta: Meta, verdict: str | None = None,
               reason_tags: tuple[str, ...] = (), staff_channel: str | None = None
               ) -> None:
        self.status = "answered"
        self.level = level
        self.comment = comment
        self.aspects = aspects
        self.reason_tags = tuple(reason_tags or ())
        self._remember(meta, "RatingGiven")

    def decline(self, now: datetime, meta: Meta, *, by_staff: str | None = None,
                also_served: tuple[str, ...] = ()) -> None:
        """The resident would rather not rate: closes the survey as declined (the caller
        checks it is the resident: the link's token or a resident's bearer token).

        ``by_staff``: the staff member who records what the resident said on their call,
        only for a survey asked by phone (no link reaches the resident there: without it a
        named resident's revisit was called again every week for good); on the tablet or by
        text only the resident declines. Nobody who opened or served the case records it
        (代评, as for an answer: ``check_not_own``): the clerk a bad review is about would
        otherwise close its revisit as declined and the resident's verdict never came."""
        if by_staff is not None:
            if self.channel != SurveyChannel.PHONE_CALLBACK:
                raise StaffDeclineRefused(
                    "only the resident declines a survey on the tablet or by text; staff "
                    "record a decline only for a survey they ask by phone",
                    channel=self.channel)
            self.check_not_own(Recorder(by_staff, by_staff), also_served)
        self.check_answerable(now)
        self._declined(survey_id=self.id, purpose=self.purpose, meta=self.meta_for(meta))

    @event("SurveyDeclined")
    def _declined(self, survey_id: UUID, purpose: str, meta: Meta) -> None:
        self.status = "declined"
        self._remember(meta, "SurveyDeclined")

    @property
    def is_bad_review(self) -> bool:
        return self.level is not None and RatingLevel(self.level).is_bad_review

    # -- no answer, or no longer asked ------------------------------------------------------

    def expire(self, now: datetime, meta: Meta) -> None:
        if not self.is_open:
            raise RuleViolated("only a survey still waiting for an answer expires",
                               status=self.status, rule="survey_expires_waiting_only")
        if not self.is_past_deadline(now):
            raise RuleViolated("the survey's deadline has not passed yet",
                               expires_at=self.expires_at.isoformat(),
                               rule="survey_deadline_not_passed")
        # No answer came by the deadline: that is when it happened, whenever the scheduler
        # gets to it (a tick after midnight, workers restarted or behind). Dated on the
        # scheduler's clock, a survey whose week ended at 23:59 on 31 December counted its
        # no answer in January's response rate, and in no figure of December's.
        self._expired(survey_id=self.id, purpose=self.purpose,
                      was_sent=self.status == "sent",
                      meta={**self.meta_for(meta), "occurred_at": self.expires_at})

    @event("SurveyExpired")
    def _expired(self, survey_id: UUID, purpose: str, was_sent: bool, meta: Meta) -> None:
        self.status = "expired"
        self._remember(meta, "SurveyExpired")

    def withdraw(self, reason: str, meta: Meta,
                 because: WithdrawalCause = WithdrawalCause.REOPENED) -> None:
        if not self.is_open:
            raise RuleViolated("only a survey still waiting for an answer can be withdrawn",
                               status=self.status, rule="survey_withdraw_waiting_only")
        if self.is_past_deadline(meta["occurred_at"]):
            # No answer came by its deadline, before this: that is what happened, dated at
            # the deadline (``expire``), whatever reached the survey first. The scheduler a
            # minute behind, a reopening or a consent taken back at 00:00:40 on New Year's
            # Day withdrew December's no answer, which then counted nowhere.
            self.expire(meta["occurred_at"], meta)
            return
        self._withdrawn(survey_id=self.id, reason=reason, because=because.value,
                        meta=self.meta_for(meta))

    def respect(self, consent: Consent, meta: Meta) -> WithdrawalCause | None:
        """Withdraw the survey if the resident may not be asked this way (while it still
        asks); returns why, or None when it stands (may ask, or already closed)."""
        because = consent.forbids(self.channel)
        if because is None or not self.is_open:
            return None
        self.withdraw(WITHDRAWN_BECAUSE[because], meta, because)
        return because if self.status == "withdrawn" else None  # past its deadline: expired

    def withdraw_unless_sent(self, reason: str, meta: Meta) -> bool:
        """A staff reopening the day the survey was due to go: withdrawn if it is still
        waiting to be sent (the scheduler was down, or the send moment fell the next morning:
        the resident was asked nothing yet), else it stands (sent, answered, or closed).
        Whether the survey never was, and now never will be, put before the resident: withdrawn
        by a reopening now, or by one before (a repeated event), or, before it was sent, as
        the resident took back their consent (redteam52: it held the day, and a resolution
        that day once they agreed again asked nothing; a snapshot from before ``was_sent``
        was kept: as if sent). A tablet survey redirected (``redirect``: its resident left the
        window without rating) waits again, on its new channel, but was put before them on
        the tablet: it stands, as a sent one (withdrawn, a reopening and resolution that day
        put a fresh survey over the one they left unrated; a redirected survey rebuilt from a
        snapshot from before ``was_sent`` was kept: as waiting, as before)."""
        if self.status == "requested" and not self.__dict__.get("was_sent", False):
            self.withdraw(reason, meta)
            return self.status == "withdrawn"  # past its deadline: expired, the day's
        return self.status == "withdrawn" and (
            self.withdrawn_because == WithdrawalCause.REOPENED.value
            or not getattr(self, "was_sent", True))

    @event("SurveyWithdrawn")
    def _withdrawn(self, survey_id: UUID, reason: str, meta: Meta,
                   because: str = WithdrawalCause.REOPENED.value) -> None:
        self.status = "withdrawn"
        self.withdrawn_because = because
        self._remember(meta, "SurveyWithdrawn")


# -- the rectification ------------------------------------------------------------------------


def judged_day(today: date, *seen_on: date | None, ahead_until: date | None = None) -> date:
    """The day a bad review's appeal window, a triage's missed deadline and the grace of its
    outcome's day (``Feedback.complete_rectification``) are judged on: the service's
    ``today``, or the latest of ``seen_on`` (days the service recorded anything on: of the
    review, ``Rectification.seen_day``; at its center, ``center_seen_on``; None: none) when
    later, so a clock set back reopens nothing; but not a day of
    ``seen_on`` up to ``ahead_until`` (``CLOCK_AHEAD_UNTIL``): the operator says the clock once
    ran ahead and recorded days up to it that the center had not reached. Without it, a clock
    set a day ahead that recorded one survey's close, then put right, closed every appeal
    window of that center a day early (and a clock a year ahead, every window for a year),
    and nothing an operator could do undid it: the days are the log's (redteam109)."""
    return max((today, *(day for day in seen_on if day is not None
                          and (ahead_until is None or day > ahead_until))))


@dataclass(frozen=True)
class AppealWindow:
    """How long a bad review may be appealed (申诉时限): until the end of the
    ``working_days``-th working day after the review's day (``deadline_day``: a review on a day
    off counts from the next working day), judged on ``today``, the service's day (not a day
    the caller gives: a backdated post does not open a closed window). It bounds the lodging
    only: an appeal lodged in time is decided whenever the supervisor decides it, after the
    window too (it waits on the board's ``appeals_waiting``)."""

    calendar: WorkingCalendar
    today: date
    working_days: int
    #: ``CLOCK_AHEAD_UNTIL``: recorded days up to it are not judged on (``judged_day``).
    ahead_until: date | None = None

    def closes_on(self, reviewed_on: date) -> date:
        return self.calendar.deadline_day(reviewed_on, self.working_days)

    def check(self, reviewed_on: date | None, seen_on: date | None = None) -> None:
        """``seen_on``: the latest day the service has recorded anything of the review on
        (``Rectification.seen_day``): the window is judged on it when the service's day is
        earlier, so a clock set back (an operator's slip, a VM restored from an image) does
        not reopen a window closed before it went back (unless ``ahead_until`` says the
        clock ran ahead up to it: ``judged_day``)."""
        if reviewed_on is None:
            return  # a rectification from before its day was kept: nothing to count from
        today = judged_day(self.today, seen_on, ahead_until=self.ahead_until)
        # Closed when more than ``working_days`` working days lie in [reviewed_on, today),
        # i.e. today is after ``closes_on``: counted on the days up to today only, so an
        # appeal in time on the calendar's last days is not a 422 for the days after them
        # (the window's last day, only told once passed, is then known too).
        if self.calendar.working_days_between(reviewed_on, today) > self.working_days:
            closes_on = self.closes_on(reviewed_on)
            raise AppealWindowClosed(
                f"a bad review is appealed within {self.working_days} working days of the "
                f"review (RECTIFICATION_APPEAL_WORKING_DAYS): this one's window closed on "
                f"{closes_on}; the review stands and is put right",
                reviewed_on=reviewed_on.isoformat(), closed_on=closes_on.isoformat(),
                working_days=self.working_days)


class Rectification(RemembersCommands):
    """A bad review taken seriously: put right by a deadline, then the resident asked again."""

    @event("RectificationOpened")
    def __init__(self, id: UUID, rectification_id: UUID, resident_id: UUID | None, rating: str,
                 deadline_on: date, summary: str, survey_id: UUID, channel: str,
                 counter_id: str, clerk_id: str, service_item: str, meta: Meta,
                 basis: str = Basis.OFFICIAL.value, counted_from: date | None = None,
                 working_days: int | None = None, reason_tags: tuple[str, ...] = (),
                 served_by: tuple[str, ...] = (), recorded_on: date | None = None) -> None:
        # channel, counter, clerk and service item stay in the store for the revisit survey;
        # they are not part of the RectificationOpened contract.
        self.case_id: UUID = meta["case_id"]
        self.center_id: str = meta["center_id"]
        self.resident_id = resident_id
        self.rating = rating
        self.deadline_on = deadline_on
        self.survey_id = survey_id
        self.channel = channel
        self.counter_id = counter_id
        self.clerk_id = clerk_id
        self.service_item = service_item
        self.basis = basis
        self.counted_from = counted_from
        # The review's day, which the appeal window counts from (the triage moves
        # ``counted_from`` on; an event from before the count was kept gives none: its moment),
        # or the day the service recorded it when later (``recorded_on``, kept in the store
        # only: a paper form typed in with an old date, a review backdated by whoever records
        # it, was born with its window closed; None before redteam104). Since calendar53 the
        # deadline counts from that later day too, so ``counted_from`` is it already; before,
        # ``counted_from`` was the review's own day (its deadline stays counted from it).
        self.reviewed_on = (counted_from if recorded_on is None or counted_from is None
                            else max(counted_from, recorded_on))
        self.reviewed_at = meta.get("occurred_at")
        self.working_days = working_days
        self.reason_tags = tuple(reason_tags)
        self.served_by = tuple(served_by)  # the revisit is not theirs to record either
        self.status = "open"
        self.track: str | None = None  # untriaged: the deadline of the default track
        self.appeal: str | None = None  # pending | upheld | rejected
        self.appealed_by: str | None = None
        self.revisit_attempt = 0
        self._remember(meta, "RectificationOpened", created=True)

    def _remember(self, meta: Meta, kind: str, created: bool = False) -> None:
        """Every event of the rectification passes here: beside its key, the latest moment
        it was recorded at (``seen_at``: its ``occurred_at``, never ahead of the service's
        clock as it was recorded, ``Moments.recorded``), the high-water mark its appeal
        window, a triage's missed deadline and its outcome's grace are judged on when the
        clock is behind it (``seen_day``, ``judged_day``). Kept from the
        events' meta already in the store: a rectification of before it has one too."""
        super()._remember(meta, kind, created)
        at = meta.get("occurred_at")
        if isinstance(at, datetime):
            seen = self.__dict__.get("seen_at")
            if seen is None or at > seen:
                self.seen_at = at

    def seen_day(self, calendar: WorkingCalendar) -> date | None:
        """The latest day, in the center's zone, the service recorded anything of this
        rectification on (its opening's ``recorded_on`` included); None: nothing kept (a
        snapshot from before)."""
        days = [day for day in (self.__dict__.get("reviewed_on"),) if day is not None]
        seen = self.__dict__.get("seen_at")
        if isinstance(seen, datetime):
            days.append(calendar.local_day(seen))
        return max(days, default=None)

    @classmethod
    def open_for(cls, survey: Survey, calendar: WorkingCalendar, working_days: int,
                 meta: Meta, recorded_on: date | None = None) -> Rectification:
        """Open the rectification a bad review calls for (the survey was just answered): due
        ``working_days`` working days after the day of the answer, on the center's calendar
        (``CalendarOutOfRange`` past the years it covers), or after ``recorded_on``, the
        service's day as the answer came, when later: a paper form typed in three weeks
        after the date it gives was overdue the moment it was opened (until calendar53; the
        appeal window counted from ``recorded_on`` already). The day counted from is the
        event's ``counted_from``: a rectification opened before keeps the review's day there,
        and a re-planning counts its deadline again from it, so it never moves for this
        rule's change (as ``counted_as`` keeps a help task's)."""
        answered_on = calendar.local_day(meta["occurred_at"])
        counted_from = answered_on if recorded_on is None else max(answered_on, recorded_on)
        deadline_on = calendar.deadline_day(counted_from, working_days)
        if not survey.is_bad_review:
            raise RuleViolated("only a bad review opens a rectification", level=survey.level,
                               rule="bad_review_only")
        rectification_id = rectification_id_for(survey.id)
        summary = survey.comment[:SUMMARY_LENGTH]
        low = sorted(a for a, mark in survey.aspects.items() if mark <= 2)
        if low:
            summary = (summary + " " if summary else "") + "[low marks: " + ", ".join(low) + "]"
        return cls(id=rectification_id, rectification_id=rectification_id,
                   resident_id=survey.resident_id, rating=survey.level or "",
                   deadline_on=deadline_on, summary=summary, survey_id=survey.id,
                   channel=survey.channel, counter_id=survey.counter_id,
                   clerk_id=survey.clerk_id, service_item=survey.service_item,
                   meta=survey.meta_for(meta),
                   basis=calendar.basis_of(counted_from, deadline_on).value,
                   counted_from=counted_from, working_days=working_days,
                   reason_tags=tuple(getattr(survey, "reason_tags", ())),
                   served_by=tuple(getattr(survey, "served_by", ())), recorded_on=recorded_on)

    def revise_deadline(self, calendar: WorkingCalendar, today: date, meta: Meta,
                        ahead_until: date | None = None) -> bool:
        """Count the working days again on the calendar in force; True when the deadline moved.

        Only an open rectification whose deadline rests on a provisional year that now has its
        official schedule, or on official days since changed (a published day corrected, a
        year taken out of the holidays file); the new deadline says its basis: one still in a
        provisional year moves too when official days it counted over changed, and a
        withdrawn year's is the law's again, provisional. Never earlier than ``today`` (a
        deadline already past, the one in force, stays, provisional or not: it was missed). A
        deadline that stays while its basis changes (its year published with the same days) is
        recorded once, confirmed with the new basis, so the board and the resident stop reading
        "provisional"; an unchanged deadline and basis record nothing. Missed on its day (past
        by ``today``), it did its work and keeps that day, whatever the new count says, later
        or earlier: on a provisional day the published schedule moves, it keeps its day and
        basis and says so once (``published_deadline_on``), so no reload reads it again, but
        one that changes an official day up to it (a notice that corrects the first): giving
        its day after all, its basis is confirmed official; another day than the one said,
        that one.

        ``today`` is judged as a triage judges it (``judged_day``): the service's day, or the
        latest day it recorded anything of this rectification (``seen_day``) when later, but
        not a day up to ``ahead_until`` (``CLOCK_AHEAD_UNTIL``). A clock set back past a
        missed provisional deadline, a schedule published meanwhile: re-planned on the clock
        alone, the missed deadline moved to a later published day and came out on time
        (until calendar54), though the triage refused it as missed.
        """
        self.check_new_command(meta.get("causation_id"), "RectificationDeadlineRevised")
        if (self.status != "open" or self.counted_from is None
                or self.working_days is None):
            return False
        today = judged_day(today, self.seen_day(calendar), ahead_until=ahead_until)
        said = self.__dict__.get("published_deadline_on")
        deadline_on = calendar.deadline_day(self.counted_from, self.working_days)
        basis = calendar.basis_of(self.counted_from, deadline_on)
        if self.deadline_on < today:
            # Missed on the day in force, whatever its basis and whatever the new count: a
            # provisional one too, as a follow-up missed or a task escalated keeps its day
            # (docs/calendar.md, "What keeps its day"). Re-planning runs at every start and
            # reload; moved to today or to a later published day, a missed deadline came out
            # on time, though the triage already refused it as missed (deadline_missed) and
            # its follow-up, missed too, stayed on the old day. Missed on the same
            # day by both counts, only its basis is news: confirmed official, once (its
            # follow-up with it: ``FollowUp.follow_deadline``), or it said "provisional" for
            # ever, and so did its missed follow-up, which has no rule of its own to count.
            # Missed by the law's count on another day than the published schedule's: kept,
            # judged on the day it had, said once (``published_deadline_on``), or every
            # reload read it again, for ever, and its follow-up with it.
            if deadline_on == self.deadline_on and basis.value != self.basis:
                self._deadline_revised(rectification_id=self.id, deadline_on=self.deadline_on,
                                       previous_deadline_on=self.deadline_on,
                                       basis=basis.value, reason="calendar_published",
                                       meta=self.meta_for(meta))
                return True
            if (deadline_on != self.deadline_on and basis is Basis.OFFICIAL
                    and self.basis == Basis.PROVISIONAL.value and deadline_on != said):
                self._deadline_revised(rectification_id=self.id, deadline_on=self.deadline_on,
                                       previous_deadline_on=self.deadline_on,
                                       basis=self.basis, reason="calendar_published",
                                       meta=self.meta_for(meta),
                                       published_deadline_on=deadline_on)
                return True
            return False
        deadline_on = max(deadline_on, today)
        if deadline_on == self.deadline_on and basis.value == self.basis:
            return False
        self._deadline_revised(rectification_id=self.id, deadline_on=deadline_on,
                               previous_deadline_on=self.deadline_on,
                               basis=basis.value, reason="calendar_published",
                               meta=self.meta_for(meta))
        return True

    @event("RectificationDeadlineRevised")
    def _deadline_revised(self, rectification_id: UUID, deadline_on: date,
                          previous_deadline_on: date, basis: str, reason: str,
                          meta: Meta, published_deadline_on: date | None = None) -> None:
        self.deadline_on = deadline_on
        self.basis = basis
        self.published_deadline_on = published_deadline_on
        self._remember(meta, "RectificationDeadlineRevised")

    # -- who may judge the bad review: not whose work it is (申诉复核) -----------------------

    def check_not_own_work(self, supervisor: str | None, what: str,
                           also: tuple[str, ...] = ()) -> None:
        """403 ``self_decision`` for the clerk who appealed or was reviewed, or the staff who
        served the case (``served_by``: opened it, acted on it, had it handed to them; and
        ``also``, who served it since the survey was asked, as feedback has read it): the
        bad review is of their work. Both judgements of it bar them: deciding its appeal
        (upheld, the review leaves the figures) and triaging it (the track sets how long the
        work has, 解释说明 the most lenient): a supervisor who resolved the case put their
        own bad review on the explain track."""
        because = ("appealed" if self.appealed_by is not None and supervisor == self.appealed_by
                   else "reviewed" if supervisor == self.clerk_id
                   else "served" if supervisor in (*getattr(self, "served_by", ()), *also)
                   else None)
        if because is not None:
            # Which of the three: a supervisor told only the rule could not tell whether
            # another could decide (one who handed the case on, say, or one who resolved it).
            raise SelfDecision(
                f"{what} by a supervisor other than the clerk who appealed or was reviewed, "
                f"and other than those who served the case (opened it, acted on it, had it "
                f"handed to them); {supervisor} {SELF_DECISION[because]}: another supervisor "
                f"of the center does it", actor=supervisor, because=because)

    # -- triage: which track, and so which deadline (好差评) ----------------------------

    def triage(self, track: RectificationTrack, working_days: int, calendar: WorkingCalendar,
               today: date, meta: Meta, as_of: date | None = None,
               also_served: tuple[str, ...] = (), ahead_until: date | None = None) -> None:
        """Put the bad review on ``track``: due ``working_days`` working days after ``today``
        (the day of the triage). Again while it is open: the supervisor may change the track,
        not once its deadline has passed on ``as_of`` (the service's day, or the center's last
        closed survey's when later, not the command's ``occurred_at``, which may be given
        earlier): a missed deadline stays missed, as at
        re-planning. Counted again from the day of a triage, a rectification put right late
        was judged on time (rectification_on_time_rate). Nor on a day before the latest the
        service recorded anything of it on (``seen_day``): a clock set back past a missed
        deadline (an appeal decided after it, then the clock back) moved it on. A change of
        track counts the new track's days from the first triage, not from the change:
        triaged again on each deadline day, the deadline moved on for ever and was never
        missed. ``ahead_until`` (``CLOCK_AHEAD_UNTIL``): a recorded day up to it is not
        judged on, the clock ran ahead then (``judged_day``). The first triage counts from
        the day it is judged on, the later of ``today`` (its ``occurred_at``'s) and that day,
        as a review counts from the later of its own day and the day it was recorded: a
        triage posted with yesterday's ``occurred_at`` got a deadline a working day earlier
        than the same triage posted now, and one posted on a clock set back, a deadline
        counted from a day the center had passed (until calendar54)."""
        if self.status != "open":
            raise RuleViolated("only an open rectification is triaged", status=self.status,
                               rule="rectification_not_open")
        self.check_not_own_work(meta.get("actor"), "a bad review is triaged", also_served)
        judged_on = max(today, judged_day(as_of or today, self.seen_day(calendar),
                                          ahead_until=ahead_until))
        if self.deadline_on < judged_on:
            raise RuleViolated("the rectification's deadline has passed: it stays missed; "
                               "record its outcome", rule="deadline_missed",
                               deadline_on=self.deadline_on.isoformat())
        start = judged_on if self.track is None else self.counted_from  # the first triage's day
        deadline_on = calendar.deadline_day(start, working_days)
        self._triaged(rectification_id=self.id, track=track.value, working_days=working_days,
                      counted_from=start, deadline_on=deadline_on,
                      previous_deadline_on=self.deadline_on,
                      basis=calendar.basis_of(start, deadline_on).value,
                      meta=self.meta_for(meta))

    @event("RectificationTriaged")
    def _triaged(self, rectification_id: UUID, track: str, working_days: int,
                 counted_from: date, deadline_on: date, previous_deadline_on: date, basis: str,
                 meta: Meta) -> None:
        self.track = track
        self.working_days = working_days
        self.counted_from = counted_from
        self.deadline_on = deadline_on
        self.basis = basis
        self._remember(meta, "RectificationTriaged")

    # -- the clerk's appeal, decided by another supervisor (申诉复核) ----------------------

    def lodge_appeal(self, reasons: str, meta: Meta, on_behalf: bool = False,
                     window: AppealWindow | None = None) -> None:
        """The reviewed clerk appeals (or, ``on_behalf``, a supervisor for them): once, and
        within ``window`` (409 ``appeal_window_closed`` after it; None: no window, a test's)."""
        if not on_behalf and meta.get("actor") != self.clerk_id:
            raise NotYourReview("a clerk appeals a bad review of their own service; a "
                                "supervisor may appeal for them", actor=meta.get("actor"))
        if self.appeal is not None:
            raise AppealExists("this bad review was appealed already; it takes one appeal",
                               appeal=self.appeal)
        if window is not None:
            window.check(self.reviewed_day(window.calendar), self.seen_day(window.calendar))
        self._appealed(rectification_id=self.id, survey_id=self.survey_id, reasons=reasons,
                       meta=self.meta_for(meta))

    def reviewed_day(self, calendar: WorkingCalendar) -> date | None:
        """The day of the bad review in the center's zone (None: an event that kept neither)."""
        reviewed_on = self.__dict__.get("reviewed_on")
        if reviewed_on is not None:
            return reviewed_on
        at = self.__dict__.get("reviewed_at")
        return calendar.local_day(at) if isinstance(at, datetime) else None

    @event("RectificationAppealed")
    def _appealed(self, rectification_id: UUID, survey_id: UUID | None, reasons: str,
                  meta: Meta) -> None:
        self.appeal = "pending"
        self.appealed_by = meta.get("actor")
        self._remember(meta, "RectificationAppealed")

    def decide_appeal(self, decision: AppealDecision, grounds: AppealGrounds | None,
                      reasons: str, decider: str, meta: Meta,
                      also_served: tuple[str, ...] = ()) -> None:
        """By a supervisor who neither appealed nor was reviewed (403 ``self_decision``):
        nor served the case (``served_by``: opened it, acted on it, had it handed to them),
        whose work the bad review is of as much as the clerk's (首问负责制 names the first
        clerk; the case handed to a supervisor who resolved it is theirs too)."""
        if self.appeal != "pending":
            raise NoAppealPending("there is no appeal waiting on this bad review",
                                  appeal=self.appeal)
        self.check_not_own_work(decider, "an appeal is decided", also_served)
        if decision is AppealDecision.UPHELD and grounds is None:
            raise RuleViolated("an upheld appeal says its grounds: malicious or mistaken",
                               rule="appeal_grounds_needed")
        self._appeal_decided(rectification_id=self.id, survey_id=self.survey_id,
                             decision=decision.value,
                             grounds=grounds.value if grounds is not None else None,
                             reasons=reasons, appealed_by=self.appealed_by or "",
                             meta=self.meta_for(meta))

    @event("RectificationAppealDecided")
    def _appeal_decided(self, rectification_id: UUID, survey_id: UUID | None, decision: str,
                        grounds: str | None, reasons: str, appealed_by: str,
                        meta: Meta) -> None:
        self.appeal = decision
        if decision == AppealDecision.UPHELD and self.status == "open":
            self.status = "void"  # nothing to put right: the review no longer counts
        self._remember(meta, "RectificationAppealDecided")

    def complete(self, outcome: str, actions: str, completed_on: date, meta: Meta,
                 also_served: tuple[str, ...] = ()) -> None:
        """The outcome (整改结果), by a supervisor whose work the bad review is not of (403
        ``self_decision``, as its triage and its appeal's decision): recording it closes the
        rectification, on time or late, and who served the case closed the one about their
        own work (好差评: another supervisor of the center does it)."""
        if self.status != "open":
            raise RuleViolated("the rectification's outcome is already recorded",
                               status=self.status, rule="outcome_recorded_once")
        self.check_not_own_work(meta.get("actor"), "a rectification's outcome is recorded",
                                also_served)
        self._completed(rectification_id=self.id, outcome=outcome, actions=actions,
                        deadline_on=self.deadline_on, completed_on=completed_on,
                        on_time=completed_on <= self.deadline_on, meta=self.meta_for(meta),
                        basis=self.basis)

    @event("RectificationCompleted")
    def _completed(self, rectification_id: UUID, outcome: str, actions: str, deadline_on: date,
                   completed_on: date, on_time: bool, meta: Meta,
                   basis: str = Basis.OFFICIAL.value) -> None:
        self.status = "completed"
        self.completed_on = completed_on
        # 回访 is not the 承办人's: who recorded what was done neither answers nor declines
        # its revisit (``Survey.check_not_own``), as the staff who served the case.
        actor = meta.get("actor")
        if actor:
            self.served_by = tuple(dict.fromkeys([*getattr(self, "served_by", ()), actor]))
        self._remember(meta, "RectificationCompleted")

    @property
    def is_named(self) -> bool:
        """实名: the resident is known, so the revisit is a task until it is done."""
        return self.resident_id is not None

    def revisit_channel_for(self, configured: str) -> str:
        """The configured channel (phone by default); a text needs a resident to reach."""
        if configured == SurveyChannel.SMS and self.resident_id is None:
            return SurveyChannel.PHONE_CALLBACK.value
        return configured

    def request_revisit(self, send_at: datetime, expires_at: datetime, meta: Meta,
                        channel: str = SurveyChannel.PHONE_CALLBACK.value) -> Survey:
        """Ask the resident again: the revisit survey, created beside this event."""
        if self.status != "completed":
            raise RuleViolated("a revisit follows the rectification's outcome",
                               status=self.status, rule="revisit_after_outcome")
        return self._revisit(1, channel, send_at, expires_at, meta)

    def ask_again(self, expired_survey_id: UUID, send_at: datetime, expires_at: datetime,
                  meta: Meta) -> Survey | None:
        """A named resident's revisit went unanswered (an SMS expired, a call got no answer):
        the revisit stays a task, asked again by phone. None when there is nothing to ask
        again (an anonymous review, an upheld appeal, an older attempt)."""
        if (not self.is_named or self.status != "revisit_requested" or self.appeal == "upheld"
                or expired_survey_id != self.revisit_survey_id):
            return None
        return self._revisit(self.revisit_attempt + 1, SurveyChannel.PHONE_CALLBACK.value,
                             send_at, expires_at, meta)

    def _revisit(self, attempt: int, channel: str, send_at: datetime, expires_at: datetime,
                 meta: Meta) -> Survey:
        survey_id = revisit_survey_id_for(self.id, attempt)
        self._revisit_requested(rectification_id=self.id, survey_id=survey_id,
                                attempt=attempt, channel=channel, meta=self.meta_for(meta))
        return Survey(id=survey_id, survey_id=survey_id, purpose=SurveyPurpose.REVISIT.value,
                      channel=channel, resident_id=self.resident_id,
                      counter_id=self.counter_id, clerk_id=self.clerk_id,
                      service_item=self.service_item, send_at=send_at, expires_at=expires_at,
                      rectification_id=self.id, meta=self.meta_for(meta),
                      served_by=tuple(getattr(self, "served_by", ())))

    @event("RevisitRequested")
    def _revisit_requested(self, rectification_id: UUID, survey_id: UUID, meta: Meta,
                           attempt: int = 1, channel: str | None = None) -> None:
        self.status = "revisit_requested"
        self.revisit_survey_id = survey_id
        self.revisit_attempt = attempt
        self._remember(meta, "RevisitRequested")
