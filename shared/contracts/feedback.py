"""Contracts of the feedback service's events: step 6, the resident's verdict.

A survey is one question put to a resident about one case: after the case is resolved
(``purpose = resolution``) or after a rectification (``purpose = revisit``). It is requested,
sent through the resident's channel, and then either answered (``RatingGiven``), left without an
answer until its deadline (``SurveyExpired``: recorded as *no answer*, never as satisfied), or
withdrawn (``SurveyWithdrawn``): because the case was reopened before an answer came, because
the resident has not agreed to be asked by SMS or phone (*no consent*, never *no answer*), or
because the resident's data was erased.

A bad review (dissatisfied or very dissatisfied) opens a rectification with a deadline in working
days (``RectificationOpened``, consumed by the follow-up service), whose outcome is recorded
(``RectificationCompleted``) before a revisit survey is requested (``RevisitRequested``). A
supervisor triages it (``RectificationTriaged``: immediate / limited / explain, each with its
own limit); the clerk may appeal it (``RectificationAppealed``) and a supervisor other than the
clerk decides (``RectificationAppealDecided``). A
deadline worked out on a provisional year (``basis``) is revised once the year's official
schedule is known (``RectificationDeadlineRevised``).

No personal data: the resident is an opaque id; free text is scrubbed before it is stored
(``shared.contracts.fields``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.fields import Code, CodeList, Day, FreeText, Moment, OptionalCode
from shared.contracts.registry import REGISTRY, EventContract, Upcaster
from shared.contracts.vocabulary import Basis, Verdict, with_official_basis

SERVICE = "feedback"


class RatingLevel(StrEnum):
    """The five levels of China's government-service good/bad review practice (好差评)."""

    VERY_SATISFIED = "very_satisfied"  # 非常满意
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意
    VERY_DISSATISFIED = "very_dissatisfied"  # 非常不满意

    @property
    def is_satisfied(self) -> bool:
        """The three upper levels count as satisfied (a good review)."""
        return self in SATISFIED_LEVELS

    @property
    def is_bad_review(self) -> bool:
        """Dissatisfied and very dissatisfied are a bad review (差评): a rectification follows."""
        return not self.is_satisfied


SATISFIED_LEVELS = frozenset({RatingLevel.VERY_SATISFIED, RatingLevel.SATISFIED,
                              RatingLevel.BASICALLY_SATISFIED})

#: How a revisit survey that reached its resident closed (实名差评回访率, the figures' one
#: definition, in feedback's and in the analysts'): answered (``RatingGiven``), or declined
#: (``SurveyDeclined``: the resident would rather not rate, on the link or telling the clerk
#: who called). 12345 / 好差评 count a contacted resident as 回访 whatever they said; a
#: revisit that expired, was withdrawn or still waits did not reach them.
REVISIT_REACHED = ("answered", "declined")


class Aspect(StrEnum):
    """What the resident marks separately, one aspect per step of the method at the counter."""

    LISTENED = "listened"  # step 1: the clerk listened to me
    UNDERSTOOD = "understood"  # step 2: the clerk understood what worried me
    EXPLAINED_CLEARLY = "explained_clearly"  # step 3: the policy was explained clearly
    SERVED_WELL = "served_well"  # step 4: I was served well


class SurveyChannel(StrEnum):
    TABLET = "tablet"  # the counter's tablet, right away
    SMS = "sms"  # a link by text message, after a delay
    PHONE_CALLBACK = "phone_callback"  # a clerk calls back and records the answer


class SurveyPurpose(StrEnum):
    RESOLUTION = "resolution"  # the case was resolved
    REVISIT = "revisit"  # a rectification was done after a bad review


class AnsweredVia(StrEnum):
    TOKEN = "token"  # the resident, with the single-use link
    CLERK = "clerk"  # a clerk recorded the resident's answer (phone callback, counter)


DEFAULT_REASON_TAGS = ("态度不好", "等待太久", "多次跑腿", "材料要求不清", "没有解决")
"""The reasons a survey offers on a bad review unless a center configures its own
(``SURVEY_REASON_TAGS``): rude, waited too long, came many times, unclear documents, not solved."""


class StaffChannel(StrEnum):
    """How staff came by the answer they record for a resident (never the resident's own)."""

    PHONE_CALLBACK = "phone_callback"  # a clerk called the resident back
    PAPER_FORM = "paper_form"  # the resident filled in a paper form at the center


class WithdrawalCause(StrEnum):
    """Why a survey no longer asks anything."""

    REOPENED = "reopened"  # the case is being handled again; resolving it asks anew
    NO_CONSENT = "no_consent"  # the resident has not agreed to be asked (SMS, phone)
    ERASED = "erased"  # the resident's personal data was erased (PIPL art. 47)


class RectificationTrack(StrEnum):
    """How a supervisor triages a bad review (好差评 practice), each with its own limit in
    working days (settings ``RECTIFICATION_*_WORKING_DAYS``)."""

    IMMEDIATE = "immediate"  # 立行立改: put right at once
    LIMITED = "limited"  # 限期整改: put right within a limit
    EXPLAIN = "explain"  # 解释说明: nothing to change; the resident is given the reasons


class AppealDecision(StrEnum):
    UPHELD = "upheld"  # the review was malicious or mistaken: it no longer counts
    REJECTED = "rejected"  # the review stands


class AppealGrounds(StrEnum):
    """Why an upheld appeal takes a bad review out of the figures (申诉复核)."""

    MALICIOUS = "malicious"  # 恶意差评
    MISTAKEN = "mistaken"  # 误评 (the wrong case, a slip of the finger, not about the service)


class RectificationOutcome(StrEnum):
    RECTIFIED = "rectified"  # what was wrong was put right
    EXPLAINED = "explained"  # nothing could change; the resident was given the reasons again
    NOT_RECTIFIABLE = "not_rectifiable"  # it could not be put right (e.g. outside the law)


Mark = Annotated[int, Field(ge=1, le=5)]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SurveyRequested(_Payload):
    """A satisfaction survey is due on a case: after its resolution, or as a revisit."""

    survey_id: UUID
    purpose: SurveyPurpose
    channel: SurveyChannel
    resident_id: UUID | None = Field(None, description="Opaque id; contact details stay in intake.")
    counter_id: Code
    clerk_id: Code
    service_item: Code
    send_at: Moment = Field(description="When it goes out (tablet: right away).")
    expires_at: Moment = Field(description="No answer by then is recorded as no answer.")
    rectification_id: UUID | None = Field(None, description="The rectification a revisit follows.")


class SurveySent(_Payload):
    """The survey went out through its channel (the link carries a single-use token)."""

    survey_id: UUID
    channel: SurveyChannel
    expires_at: Moment


class SurveyRedirected(_Payload):
    """A survey sent to the window's tablet that the rating pad no longer offers its resident
    (someone else came to the window since: a case finished in the back office, a resident
    who left without rating; or shown its ten minutes unrated, at a window where nobody sat
    down since) is asked where the resident is: by SMS, or by a clerk's call when nobody is
    on file. The same survey (one per resolution), waiting to be
    sent again on ``channel`` from ``send_at`` (the resolution's moment plus the delay, out
    of the quiet hours), with its new deadline; the resident's consent is read again before
    it goes."""

    survey_id: UUID
    from_channel: SurveyChannel = Field(description="Where it was asked: the tablet.")
    channel: SurveyChannel = Field(description="Where it is asked now: sms or phone_callback.")
    send_at: Moment
    expires_at: Moment = Field(description="No answer by then is recorded as no answer.")


class RatingGiven(_Payload):
    """The resident's verdict on the five-level scale, with optional comment and aspect marks;
    since v2 also whether the matter was solved (``verdict``), the reasons picked for a bad
    review (``reason_tags``) and, for an answer staff recorded, how they came by it
    (``staff_channel``; the envelope's actor is who recorded it)."""

    survey_id: UUID
    purpose: SurveyPurpose
    level: RatingLevel
    comment: FreeText = ""
    aspects: dict[Aspect, Mark] = Field(
        default_factory=dict, description="Marks 1 (poor) to 5 (excellent) per aspect.")
    via: AnsweredVia
    clerk_id: OptionalCode = Field(None, description=(
        "The clerk an assisted answer is attributed to (who called back or stood at the "
        "counter). The envelope's actor recorded it: the same clerk, or a supervisor on the "
        "clerk's behalf."))
    rectification_id: UUID | None = None
    verdict: Verdict | None = Field(None, description=(
        "Was the matter solved (solved, partly, not_solved)? None: not asked (v1) or not "
        "answered. not_solved reopens the case (intake)."))
    reason_tags: CodeList = Field(default_factory=list, description=(
        "The reasons picked from the center's list (SURVEY_REASON_TAGS) for a bad review."))
    staff_channel: StaffChannel | None = Field(None, description=(
        "via = clerk: how staff came by the answer (phone_callback, paper_form); None for "
        "the resident's own answer, and for staff answers recorded before v2."))


def rating_given_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 asked no verdict and no reasons, and did not say how staff came by an answer."""
    return {**payload, "verdict": None, "reason_tags": [], "staff_channel": None}


class SurveyExpired(_Payload):
    """No answer came by the deadline: recorded as no answer, never counted as satisfied."""

    survey_id: UUID
    purpose: SurveyPurpose
    was_sent: bool


class SurveyDeclined(_Payload):
    """The resident said they would rather not rate (on the window's pad, the link's page, or
    to the clerk who called them): recorded as declined, never as an answer, never as no
    answer, never as satisfied or as a bad review; a declined revisit counts as revisited
    (the resident was reached, ``REVISIT_REACHED``). The resident declines with the link's
    token or a resident's token bound to the case (actor ``resident``); for a survey asked by
    phone, a clerk of its center who neither opened nor served the case records what the
    resident said on the call (actor that clerk)."""

    survey_id: UUID
    purpose: SurveyPurpose


class SurveyWithdrawn(_Payload):
    """This survey no longer asks anything: the case was reopened before an answer came, the
    resident has not agreed to be asked this way, or their data was erased (``because``)."""

    survey_id: UUID
    reason: Code = Field(description=(
        "The system's words for ``because`` (e.g. 'the case was reopened'), never typed by a "
        "person."))
    because: WithdrawalCause = Field(
        WithdrawalCause.REOPENED, description=(
            "reopened (counts nowhere), no_consent (counted as no consent, never as no "
            "answer) or erased (counts nowhere)."))


def survey_withdrawn_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 knew one reason to withdraw a survey: the case was reopened."""
    return {**payload, "because": WithdrawalCause.REOPENED.value}


BASIS = Field(Basis.OFFICIAL, description=(
    "official: the deadline was worked out on published holiday schedules; provisional: on a "
    "year planned from the statutory holidays alone, revised when its schedule is published."))


class RectificationOpened(_Payload):
    """A bad review opened a rectification; the follow-up service schedules the revisit."""

    rectification_id: UUID
    resident_id: UUID | None
    rating: Code
    deadline_on: Day
    summary: FreeText = ""
    survey_id: UUID | None = Field(None, description="The survey whose answer was the bad review.")
    basis: Basis = BASIS
    counted_from: Day | None = Field(None, description=(
        "The day the working days are counted from (center's zone): the bad review's day, "
        "or the day feedback recorded it when later (a paper form typed in weeks after its "
        "date; since calendar53, before which it was always the review's day)."))
    working_days: int | None = Field(None, ge=0, description="The working days allowed.")
    reason_tags: CodeList = Field(default_factory=list, description=(
        "The reasons the resident picked for the bad review (v3)."))


def rectification_opened_v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """Before v3 a bad review carried no reasons picked from a list."""
    return {**payload, "reason_tags": []}


class RectificationDeadlineRevised(_Payload):
    """The official holiday schedule of the year a provisional deadline fell in was published:
    the same working days counted again on it (never moved to a day before the revision; a
    deadline already missed, its day in force past, keeps its day whatever the new count:
    only its basis is confirmed, or the published day said, ``published_deadline_on``)."""

    rectification_id: UUID
    deadline_on: Day
    previous_deadline_on: Day
    basis: Basis = BASIS
    reason: Code = Field("calendar_published", description=(
        "Why the deadline moved: a code, 'calendar_published'."))
    published_deadline_on: Day | None = Field(
        None, description="Kept, not confirmed: the deadline was missed on its provisional "
                          "day and the published schedule gives this other (also past) day. "
                          "It keeps deadline_on (= previous_deadline_on) and its basis "
                          "(provisional), said once, so no reload reads it again (nor its "
                          "follow-up: FollowUpDueConfirmed with published_due_at). None: "
                          "moved or confirmed.")


# -- the 好差评 handling of a bad review: triage, appeal (issue 18) --------------------------


class RectificationTriaged(_Payload):
    """A supervisor put the bad review on a track: the deadline is the track's working days
    counted from the day of the triage (the follow-up moves with it)."""

    rectification_id: UUID
    track: RectificationTrack
    working_days: int = Field(ge=0, description="The track's limit in working days.")
    counted_from: Day = Field(description="The day of the triage, center's zone.")
    deadline_on: Day
    previous_deadline_on: Day
    basis: Basis = BASIS


class RectificationAppealed(_Payload):
    """The clerk appeals a bad review (申诉): malicious or mistaken, with reasons."""

    rectification_id: UUID
    survey_id: UUID | None = Field(None, description="The survey whose answer is appealed.")
    reasons: FreeText


class RectificationAppealDecided(_Payload):
    """A supervisor other than the clerk decided the appeal (复核). Upheld: the bad review
    leaves ``bad_reviews`` and the satisfaction figures and is counted on its own."""

    rectification_id: UUID
    survey_id: UUID | None = None
    decision: AppealDecision
    grounds: AppealGrounds | None = Field(None, description="Why it was upheld.")
    reasons: FreeText
    appealed_by: Code = Field(description="Who appealed (the appeal's actor).")


class RectificationCompleted(_Payload):
    """What was done about a bad review, and whether it was done by the deadline."""

    rectification_id: UUID
    outcome: RectificationOutcome
    actions: FreeText
    deadline_on: Day
    completed_on: Day = Field(description=(
        "The day in the center's time zone the deadline judges: of occurred_at, or, when "
        "occurred_at lies more than OCCURRED_AT_GRACE_S before feedback's clock (a "
        "backdated post), of that clock less the grace."))
    on_time: bool = Field(description="completed_on <= deadline_on")
    basis: Basis = BASIS


class RevisitRequested(_Payload):
    """After the rectification, the resident is asked again (a revisit survey); a named
    resident's revisit that went unanswered is asked again by phone (``attempt`` 2, 3...)."""

    rectification_id: UUID
    survey_id: UUID = Field(description="The revisit survey.")
    attempt: int = Field(1, ge=1, description="1 for the first revisit, then one more each "
                         "time an unanswered one is asked again.")
    channel: SurveyChannel | None = Field(None, description="The revisit survey's channel "
                                          "(None in v1 events).")


def revisit_requested_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1: one revisit per rectification, its channel on its SurveyRequested."""
    return {**payload, "attempt": 1, "channel": None}


def _add(model: type[_Payload], summary: str = "",
         upcaster: Upcaster | None = None) -> EventContract:
    """Register a v1 contract, or a v2 one read from v1 through ``upcaster``: the dated events
    say the basis of their deadline since v2 (a v1 event's deadline was official);
    SurveyWithdrawn says ``because`` since v2; RevisitRequested its ``attempt`` and
    ``channel``."""
    versions: dict[str, Any] = {} if upcaster is None else {
        "version": 2, "upcasters": {1: upcaster}}
    return REGISTRY.add(EventContract(model.__name__, SERVICE, model,
                                      summary=summary or (model.__doc__ or ""), **versions))


CONTRACTS = [
    _add(SurveyRequested),
    _add(SurveySent),
    _add(SurveyRedirected),
    REGISTRY.add(EventContract("RatingGiven", SERVICE, RatingGiven, version=2,
                               upcasters={1: rating_given_v1_to_v2},
                               summary=RatingGiven.__doc__ or "")),
    _add(SurveyExpired),
    _add(SurveyDeclined),
    _add(SurveyWithdrawn, upcaster=survey_withdrawn_v1_to_v2),
    REGISTRY.add(EventContract("RectificationOpened", SERVICE, RectificationOpened, version=3,
                               upcasters={1: with_official_basis,
                                          2: rectification_opened_v2_to_v3},
                               summary=RectificationOpened.__doc__ or "")),
    _add(RectificationDeadlineRevised),
    _add(RectificationCompleted, upcaster=with_official_basis),
    _add(RevisitRequested, upcaster=revisit_requested_v1_to_v2),
    _add(RectificationTriaged),
    _add(RectificationAppealed),
    _add(RectificationAppealDecided),
]
