"""Feedback's HTTP API: ratings, a case's feedback, the supervisor's rectifications, figures.

Same rules as intake: every write takes an Idempotency-Key and answers with the version and
the log position (through the command path, ``application.py``); every read comes from
``queries.py`` and takes ``?after=<position>`` to see that write.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from services.feedback import closing, queries
from services.feedback import commands as c
from services.feedback.application import Feedback
from services.feedback.domain import revisit_survey_id_for
from services.feedback.figures import (
    DIMENSIONS,
    FIGURES,
    Dimension,
    FigureQuery,
    Period,
    compute,
    people,
)
from services.feedback.figures.people import PeopleFigures
from services.feedback.queries import (
    CaseFeedbackPublic,
    FiguresPublic,
    RectificationBoard,
    RectificationPublic,
    RectificationStatus,
    SurveyPublic,
)
from services.feedback.tokens import TokenInvalid
from shared.http.auth import (
    Figures,
    OptionalPrincipal,
    Staff,
    Supervisor,
    center_filter,
    check_center,
    forbidden,
    not_found_elsewhere,
)
from shared.http.dependencies import (
    Actor,
    ExpectedVersion,
    IdempotencyKey,
    PoolDep,
    SettingsDep,
    WrittenPublic,
    position_query,
)
from shared.http.errors import ERRORS, ErrorResponse, error_responses, problem
from shared.http.limits import TokenBuckets
from shared.readmodels.positions import wait_for_write
from shared.readmodels.public import Elsewhere
from shared.security.principals import STAFF, Role
from shared.settings import ServiceName, Settings

ANSWERS = ERRORS | error_responses(410)  # a survey link past its time


async def _feedback(request: Request) -> Feedback:
    return request.app.state.feedback


async def _consumers(request: Request) -> dict[str, str]:
    return request.app.state.consumer_names


FeedbackDep = Annotated[Feedback, Depends(_feedback)]
ConsumersDep = Annotated[dict[str, str], Depends(_consumers)]
After = Annotated[int | None, position_query(
    "A feedback write's position: wait (bounded) until the read model has applied it.")]

surveys = APIRouter(prefix="/surveys", tags=["surveys"], responses=ANSWERS)
cases = APIRouter(prefix="/cases", tags=["cases"], responses=ANSWERS)
rectifications = APIRouter(prefix="/rectifications", tags=["rectifications"], responses=ANSWERS)
figures = APIRouter(prefix="/figures", tags=["figures"], responses=ANSWERS)


class RectificationWritten(WrittenPublic):
    revisit_survey_id: str


async def _wait(pool: asyncpg.Pool, settings: Settings, consumer: str,
                service: ServiceName, after: int | None) -> None:
    await wait_for_write(pool, settings, consumer, service, after)


def _today(settings: Settings, feedback: Feedback) -> date:
    return feedback.clock.now().astimezone(settings.tz).date()


def _as_it_goes(survey: queries.SurveyPublic, feedback: Feedback) -> queries.SurveyPublic:
    """A survey still to be sent shows when it really goes (``SurveyPolicy.goes_at``: a text
    held by the quiet hours, the morning), not the moment it was first due."""
    if survey.status != "requested":
        return survey
    goes_at = feedback.policy.goes_at(survey.channel, survey.send_at, feedback.clock.now())
    return survey if goes_at == survey.send_at else survey.model_copy(
        update={"send_at": goes_at})


# -- writes -----------------------------------------------------------------------------------


async def _limits(request: Request) -> TokenBuckets:
    return request.app.state.survey_limits


def _limit_link(feedback: Feedback, limits: TokenBuckets, token: str, survey_id: UUID) -> None:
    """A resident's answer with a link is rate limited per survey: keyed on the survey the
    link verifiably answers, never on the string sent (a link spelled another way is
    refused, and cannot open a fresh bucket). Links that do not verify share one bucket per
    survey asked about, apart from the genuine link's."""
    try:
        limits.check(f"survey:{feedback.tokens.read(token).survey_id}")
    except TokenInvalid:
        limits.check(f"invalid-link:{survey_id}")
        raise


def _token_missing(message: str) -> HTTPException:
    return HTTPException(401, {"code": "token_missing", "message": message, "details": {}},
                         headers={"WWW-Authenticate": 'Bearer realm="sixstep"'})


@surveys.post("/{survey_id}/rating", response_model=WrittenPublic,
              responses={429: {"model": ErrorResponse}},
              summary="Rate the service: the resident with the link's token, or a clerk")
async def rate(survey_id: UUID, body: c.RateService, request: Request, feedback: FeedbackDep,
               key: IdempotencyKey, actor: Actor, expected: ExpectedVersion,
               principal: OptionalPrincipal,
               limits: Annotated[TokenBuckets, Depends(_limits)]) -> WrittenPublic:
    """Five levels; an optional comment (personal data is redacted) and aspect marks.

    Who answers: the resident with the link's ``token`` in the body (no bearer needed); the
    resident with a bearer token of role ``resident`` bound to the survey's case (neither
    ``token`` nor ``clerk_id``); or a clerk or supervisor of the survey's center with
    ``clerk_id``. The event's actor is always the token's subject: a clerk's ``clerk_id`` is
    their own (else 403 ``forbidden_actor``); a supervisor may record an answer on a clerk's
    behalf, and both are kept (actor and ``clerk_id``). A resident's answers are rate
    limited per survey (429 with Retry-After). A resident's answer is dated by the
    service's clock: its ``occurred_at`` and ``sent_at`` (a phone's clock, often minutes
    wrong) are not read, and never refused.

    With ``token``: 403 ``token_invalid`` / ``token_wrong_case``, 410 ``token_expired``;
    403 ``self_rating`` when a staff bearer token comes with it whose subject opened or served
    the case (代评: the QR code on the serving clerk's screen, answered while signed in);
    409 ``survey_already_answered`` for a second answer. A dissatisfied or very dissatisfied
    answer opens a rectification in the same commit.
    """
    resident = False
    if body.token is not None:
        _limit_link(feedback, limits, body.token, survey_id)
    elif principal is None:
        raise _token_missing("answer with the survey link's token, or Authorization: Bearer "
                             "<token>")
    elif principal.role is Role.RESIDENT:
        if body.clerk_id is not None:
            raise forbidden("forbidden_role", "a resident's token cannot record a clerk's answer")
        limits.check(f"case:{principal.case_id}")  # the case the token is bound to
        resident = True
    elif principal.role not in STAFF:
        raise forbidden("forbidden_role", "a clerk or supervisor records an answer; a "
                        "resident answers with the link's token", role=principal.role.value)
    elif body.clerk_id is None:
        raise problem(422, "invalid_command", "give the survey link's token (the resident "
                      "answers) or clerk_id (a clerk records the answer)", field="clerk_id")
    signed_in = principal.sub if (body.token is not None and principal is not None
                                  and principal.role in STAFF) else None
    return WrittenPublic.of(await feedback.rate(
        survey_id, body, actor, key, expected, resident=resident,
        on_behalf=principal is not None and principal.role is Role.SUPERVISOR,
        signed_in=signed_in))


@surveys.post("/{survey_id}/decline", response_model=WrittenPublic,
              responses={429: {"model": ErrorResponse}},
              summary="The resident would rather not rate: recorded as declined")
async def decline(survey_id: UUID, body: c.DeclineRating, feedback: FeedbackDep,
                  key: IdempotencyKey, expected: ExpectedVersion,
                  principal: OptionalPrincipal,
                  limits: Annotated[TokenBuckets, Depends(_limits)]) -> WrittenPublic:
    """好差评: a resident may decline to rate. Recorded as declined (``SurveyDeclined``),
    never as an answer nor as no answer, never as satisfied nor as a bad review (no default
    good rating).

    Only the resident declines (actor ``resident``): with the link's ``token`` in the body
    (the pad's or the text's), or a bearer token of role ``resident`` bound to the survey's
    case. Staff are refused (403 ``forbidden_role``): a clerk never declines on a resident's
    behalf, except for a survey the clerk asks by phone (``phone_callback``: no link reaches
    the resident there), where a clerk of the survey's center records what the resident
    said on the call (no ``token``; the event's actor is the clerk), never staff who opened
    or served the case (403 ``self_rating``, 代评). Then as a rating: 403
    ``token_invalid`` / ``token_wrong_case``, 410 ``token_expired``, 409
    ``survey_already_answered`` / ``survey_declined``; rate limited per survey (429); the
    resident's ``occurred_at`` and ``sent_at`` not read (dated by the service's clock, never
    refused for the phone's). A staff token sent with the link's token is refused too: the
    clerk's screen shows the survey's QR code, and a decline from there would be the
    clerk's, not the resident's."""
    if principal is not None and principal.role in STAFF and body.token is None:
        # The resident said so on the clerk's call: only a survey asked by phone (403 else).
        return WrittenPublic.of(await feedback.decline(survey_id, body, key, expected,
                                                       clerk=principal.sub))
    if principal is not None and principal.role is not Role.RESIDENT:
        raise forbidden("forbidden_role", "only the resident declines to rate: staff cannot "
                        "record it on their behalf", role=principal.role.value,
                        allowed=[Role.RESIDENT.value])
    if body.token is not None:
        _limit_link(feedback, limits, body.token, survey_id)
    elif principal is None:
        raise _token_missing("decline with the survey link's token, or a resident's "
                             "Authorization: Bearer <token>")
    else:
        limits.check(f"case:{principal.case_id}")
    return WrittenPublic.of(await feedback.decline(survey_id, body, key, expected))


@rectifications.post("/{rectification_id}/outcome", response_model=RectificationWritten,
                     summary="Record what was done about a bad review; a revisit follows")
async def complete_rectification(rectification_id: UUID, body: c.CompleteRectification,
                                 feedback: FeedbackDep, key: IdempotencyKey, actor: Actor,
                                 expected: ExpectedVersion,
                                 supervisor: Supervisor) -> RectificationWritten:
    """Not by the reviewed clerk, an appellant or the staff who served the case (403
    ``self_decision``, as the triage and the appeal's decision): the outcome closes the
    rectification, and nobody closes the one about their own work."""
    written = await feedback.complete_rectification(rectification_id, body, actor, key,
                                                    expected)
    return RectificationWritten(**WrittenPublic.of(written).model_dump(),
                                revisit_survey_id=str(revisit_survey_id_for(rectification_id)))


@rectifications.post("/{rectification_id}/triage", response_model=WrittenPublic,
                     summary="Triage a bad review: immediate, limited or explain (好差评)")
async def triage_rectification(rectification_id: UUID, body: c.TriageRectification,
                               feedback: FeedbackDep, key: IdempotencyKey, actor: Actor,
                               expected: ExpectedVersion,
                               supervisor: Supervisor) -> WrittenPublic:
    """The supervisor puts the bad review on a track: 立行立改 ``immediate``, 限期整改
    ``limited`` or 解释说明 ``explain``, each due its own working days after the day of the
    triage (``RECTIFICATION_*_WORKING_DAYS``, 1 / 5 / 15); the rectification follow-up moves
    with the deadline. Again while open to change the track (its days counted from the first
    triage); 409 once the outcome is in. Not by the reviewed clerk, an appellant or the
    staff who served the case (403 ``self_decision``, as the appeal's decision)."""
    return WrittenPublic.of(await feedback.triage(rectification_id, body, actor, key,
                                                  expected))


@rectifications.post("/{rectification_id}/appeal", response_model=WrittenPublic,
                     summary="The clerk appeals a bad review as malicious or mistaken (申诉)")
async def appeal_rectification(rectification_id: UUID, body: c.LodgeAppeal,
                               feedback: FeedbackDep, key: IdempotencyKey, actor: Actor,
                               expected: ExpectedVersion, staff: Staff) -> WrittenPublic:
    """By the clerk the review is about (another clerk: 403 ``forbidden_actor``), or a
    supervisor for them. One appeal per bad review (409 ``appeal_exists``), with reasons
    (personal data is redacted); a supervisor other than the clerk decides it."""
    return WrittenPublic.of(await feedback.lodge_appeal(
        rectification_id, body, actor, key, expected,
        on_behalf=staff.role is Role.SUPERVISOR))


@rectifications.post("/{rectification_id}/appeal/decision", response_model=WrittenPublic,
                     summary="Decide a clerk's appeal (复核): upheld or rejected")
async def decide_appeal(rectification_id: UUID, body: c.DecideAppeal, feedback: FeedbackDep,
                        key: IdempotencyKey, actor: Actor, expected: ExpectedVersion,
                        supervisor: Supervisor) -> WrittenPublic:
    """By a supervisor who neither appealed nor was the reviewed clerk nor served the case
    (403 ``self_decision``). Upheld (``grounds`` malicious or mistaken): the review leaves
    ``bad_reviews`` and the satisfaction figures and is counted in ``appeals_upheld``; an
    open rectification is closed (``void``). 409 ``no_appeal_pending`` without an appeal."""
    return WrittenPublic.of(await feedback.decide_appeal(rectification_id, body, actor, key,
                                                         expected))


# -- reads ------------------------------------------------------------------------------------

@surveys.get("/{survey_id}", response_model=SurveyPublic,
             summary="One survey: where it stands, and the answer if any")
async def get_survey(survey_id: UUID, pool: PoolDep, settings: SettingsDep,
                     feedback: FeedbackDep, consumers: ConsumersDep, staff: Staff,
                     after: After = None) -> SurveyPublic:
    await _wait(pool, settings, consumers["views"], "feedback", after)
    survey = await queries.survey(pool, survey_id, staff.center_id)
    if survey is None:
        raise problem(404, "not_found", f"survey {survey_id} not found", id=str(survey_id))
    not_found_elsewhere(staff, survey.center_id, "survey", survey_id)
    return _as_it_goes(survey, feedback)


@cases.get("/{case_id}/feedback", response_model=CaseFeedbackPublic,
           summary="A case's surveys, answers and rectifications")
async def case_feedback(case_id: UUID, pool: PoolDep, settings: SettingsDep,
                        feedback: FeedbackDep, consumers: ConsumersDep, staff: Staff,
                        after: After = None) -> CaseFeedbackPublic:
    await _wait(pool, settings, consumers["views"], "feedback", after)
    found = await queries.case_feedback(pool, case_id, _today(settings, feedback),
                                        staff.center_id)
    if found is None:
        raise problem(404, "not_found", f"no feedback on case {case_id} yet", id=str(case_id))
    center_id = found.center_id if isinstance(found, Elsewhere) else found.surveys[0].center_id
    not_found_elsewhere(staff, center_id, "case", case_id,
                        f"no feedback on case {case_id} yet")
    if isinstance(found, CaseFeedbackPublic) and found.rectifications:  # overdue as the
        # triage judges it, on the center's day (``Feedback.judged_today``)
        today = await feedback.judged_today(center_id)
        found.rectifications = [r.judged_on(today) for r in found.rectifications]
    found.surveys = [_as_it_goes(s, feedback) for s in found.surveys]
    return found


@rectifications.get("", response_model=RectificationBoard,
                    summary="The supervisor's board: open rectifications, overdue first")
async def list_rectifications(
    pool: PoolDep, settings: SettingsDep, feedback: FeedbackDep, consumers: ConsumersDep,
    supervisor: Supervisor,
    center_id: Annotated[str | None, Query(max_length=64)] = None,
    status: RectificationStatus = "open",
    as_of: Annotated[date | None, Query(description="Today, in the center's zone, by default")]
        = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    after: After = None,
) -> RectificationBoard:
    await _wait(pool, settings, consumers["views"], "feedback", after)
    center = center_filter(supervisor, center_id)  # a supervisor's token names one
    # Overdue on the day a triage judges a missed deadline on (``Feedback.judged_today``):
    # the clock's, or the day the center reached when later (a clock set back read "not
    # overdue" of what the triage refused as missed, until calendar54); ``as_of`` as given.
    if as_of is None:
        as_of = (_today(settings, feedback) if center is None
                 else await feedback.judged_today(center))
    return await queries.rectification_board(pool, center, status, as_of, limit)


@rectifications.get("/{rectification_id}", response_model=RectificationPublic,
                    summary="One rectification")
async def get_rectification(rectification_id: UUID, pool: PoolDep, settings: SettingsDep,
                            feedback: FeedbackDep, consumers: ConsumersDep,
                            supervisor: Supervisor, after: After = None) -> RectificationPublic:
    await _wait(pool, settings, consumers["views"], "feedback", after)
    found = await queries.rectification(pool, rectification_id, _today(settings, feedback),
                                        supervisor.center_id)
    if found is None:
        raise problem(404, "not_found", f"rectification {rectification_id} not found",
                      id=str(rectification_id))
    not_found_elsewhere(supervisor, found.center_id, "rectification", rectification_id)
    if isinstance(found, RectificationPublic):  # another center's: the 404 above
        found.judged_on(await feedback.judged_today(found.center_id))
    return found


@figures.get("", response_model=FiguresPublic,
             summary="The center's figures by period and by center, counter, clerk, item")
async def get_figures(
    pool: PoolDep, settings: SettingsDep, feedback: FeedbackDep, consumers: ConsumersDep,
    reader: Figures,
    period: Period = "month",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    group_by: Annotated[list[str] | None, Query(description=(
        "Repeat or comma-separate: center_id, counter_id, clerk_id (the first responder), "
        "owner_clerk (who has the case now), service_item"))] = None,
    center_id: Annotated[str | None, Query(max_length=64)] = None,
    counter_id: Annotated[str | None, Query(max_length=64)] = None,
    clerk_id: Annotated[str | None, Query(max_length=64)] = None,
    owner_clerk: Annotated[str | None, Query(max_length=64)] = None,
    service_item: Annotated[str | None, Query(max_length=64)] = None,
    as_of: Annotated[date | None, Query(description=(
        "The day a deadline is judged on (past deadline = before it); default today"))] = None,
    after: After = None,
    after_intake: Annotated[int | None, position_query(
        "An intake write's position: wait until the figures have applied it.")] = None,
    live: Annotated[bool, Query(description=(
        "Count closed months again now, instead of answering what was reported"))] = False,
) -> FiguresPublic:
    """Every figure has a numerator, a denominator and their rate (null when nothing counts);
    ``visits``, ``no_consent``, ``bad_reviews``, ``staff_recorded_answers`` and
    ``rectifications_opened`` are counts. ``resolution_rate`` is the residents' own word
    (was it solved?), ``declared_resolution_rate`` the clerks'; ``satisfaction_rate`` counts
    the residents' own answers, ``staff_recorded_satisfaction_rate`` those staff recorded.
    Days are the center's calendar days; weeks start on Monday. Definitions: README, "The center's
    figures"."""
    await _wait(pool, settings, consumers["figures"], "feedback", after)
    await _wait(pool, settings, consumers["figures"], "intake", after_intake)
    center_id = center_filter(reader, center_id)
    if date_from and date_to and date_from > date_to:
        raise problem(400, "period_invalid", "'from' is after 'to'")
    dims: list[Dimension] = []
    for value in group_by or ["center_id"]:
        for part in (p.strip() for p in value.split(",") if p.strip()):
            if part not in DIMENSIONS:
                raise problem(400, "group_by_invalid", f"cannot group by {part!r}",
                              allowed=list(DIMENSIONS))
            if part not in dims:
                dims.append(part)  # type: ignore[arg-type]
    given = {"center_id": center_id, "counter_id": counter_id, "clerk_id": clerk_id,
             "owner_clerk": owner_clerk, "service_item": service_item}
    filters = tuple((d, v) for d, v in given.items() if v is not None)
    today = as_of or _today(settings, feedback)
    query = FigureQuery(period=period, date_from=date_from, date_to=date_to, as_of=today,
                        group_by=tuple(dims), filters=filters,  # type: ignore[arg-type]
                        arrivals=settings.emotion_defusing_arrivals)
    rows = await compute(pool, query)
    if not live:
        rows = await closing.with_reported(pool, rows, query)
    return FiguresPublic(period=period, date_from=date_from, date_to=date_to, as_of=today,
                         group_by=dims, filters=dict(filters),
                         time_zone=settings.center_timezone,
                         figures={f.name: f.meaning for f in FIGURES}, rows=rows, live=live)


@figures.get("/people", response_model=PeopleFigures,
             summary="Beneficiaries, and employment aid's guidance visits and people placed "
                     "per studio or counter")
async def get_people_figures(
    pool: PoolDep, settings: SettingsDep, reader: Figures,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    center_id: Annotated[str | None, Query(max_length=64)] = None,
    after_intake: Annotated[int | None, position_query(
        "An intake write's position: wait until these figures have applied it.")] = None,
) -> PeopleFigures:
    """Definitions: docs/figures.md, "People: beneficiaries and employment aid"."""
    await _wait(pool, settings, people.CONSUMER, "intake", after_intake)
    if date_from and date_to and date_from > date_to:
        raise problem(400, "period_invalid", "'from' is after 'to'")
    return await people.people_figures(pool, people.PeopleQuery(
        center_filter(reader, center_id), date_from, date_to))


# -- issue 18: reported months --------------------------------------------------------------

periods = APIRouter(prefix="/periods", tags=["figures"], responses=ANSWERS)
MONTH = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"


@periods.post("/{center_id}/{month}/close", response_model=WrittenPublic,
              summary="Close a center's month: its figures as reported, revised only openly")
async def close_period(
    center_id: Annotated[str, Path(max_length=64)],
    month: Annotated[str, Path(pattern=MONTH, examples=["2026-03"])],
    request: Request, key: IdempotencyKey, actor: Actor, supervisor: Supervisor,
    settings: SettingsDep,
) -> WrittenPublic:
    """A supervisor of the center closes a month that has ended (409 ``rule_violated``,
    ``period_not_ended`` before). Closing a closed month answers the first close
    (``replayed``). Months also close by themselves ``PERIOD_CLOSE_AFTER_DAYS`` after they
    end."""
    check_center(supervisor, center_id)
    first = date.fromisoformat(f"{month}-01")
    periods_ = request.app.state.periods
    return WrittenPublic.of(await periods_.close(center_id, first, "supervisor", actor, key,
                                                 counted_within_s=settings.read_wait_timeout_s))
