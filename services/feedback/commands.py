"""What the survey page, a clerk and a supervisor can ask of feedback (also the HTTP bodies)."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.contracts.feedback import (
    AppealDecision,
    AppealGrounds,
    Aspect,
    Mark,
    RatingLevel,
    RectificationOutcome,
    RectificationTrack,
    StaffChannel,
)
from shared.contracts.fields import CODE_PATTERN
from shared.contracts.vocabulary import Verdict
from shared.kernel.typed import Command


class DeclineRating(Command):
    """The resident would rather not rate: with the survey link's token (the pad's or the
    text's), or a resident's bearer token bound to the case. Staff cannot send it."""

    token: str | None = Field(None, max_length=200,
                              description="The token of the survey link (the resident).")


class RateService(Command):
    """A rating: by the resident with the survey link's token, or recorded by a clerk."""

    token: str | None = Field(None, max_length=200,
                              description="The token of the survey link (the resident answers).")
    clerk_id: str | None = Field(None, pattern=CODE_PATTERN, description=(
        "The clerk recording the resident's answer (phone callback, counter), when there is "
        "no token: the caller's own id; a supervisor may name the clerk they record for."))
    level: RatingLevel
    comment: str = Field("", max_length=2000)
    aspects: dict[Aspect, Mark] = Field(default_factory=dict, description=(
        "Optional marks 1 (poor) to 5 (excellent): listened, understood, explained_clearly, "
        "served_well."))
    verdict: Verdict | None = Field(None, description=(
        "Was the matter solved? solved, partly or not_solved (this reopens the case); "
        "leave out when the resident did not say."))
    reason_tags: list[str] = Field(default_factory=list, max_length=10, description=(
        "On a bad review: reasons picked from the center's list (SURVEY_REASON_TAGS)."))
    channel: StaffChannel | None = Field(None, description=(
        "Staff only (with clerk_id): how the answer came, phone_callback (default) or "
        "paper_form."))

    @model_validator(mode="after")
    def _one_way(self) -> RateService:
        if self.channel is not None and self.clerk_id is None:
            raise ValueError("channel says how staff came by an answer: give it with clerk_id")
        if self.token is not None and self.clerk_id is not None:
            raise ValueError("give the survey link's token (the resident answers) or clerk_id "
                             "(a clerk records the answer), not both; neither when a "
                             "resident's bearer token answers")
        return self


class CompleteRectification(Command):
    """The outcome of a rectification; a revisit survey follows."""

    outcome: RectificationOutcome
    actions: str = Field(min_length=1, max_length=4000, description="What was done.")


class TriageRectification(Command):
    """A supervisor's triage of a bad review: which track, and so which deadline."""

    track: RectificationTrack = Field(description=(
        "immediate (立行立改), limited (限期整改) or explain (解释说明)."))


class LodgeAppeal(Command):
    """The clerk's appeal of a bad review: malicious or mistaken, and why (申诉)."""

    reasons: str = Field(min_length=1, max_length=2000, description=(
        "Why the review is malicious or mistaken (personal data is redacted)."))


class DecideAppeal(Command):
    """A supervisor other than the clerk decides the appeal (复核)."""

    decision: AppealDecision
    grounds: AppealGrounds | None = Field(None, description=(
        "Required when upheld: malicious or mistaken."))
    reasons: str = Field(min_length=1, max_length=2000, description="Why so decided.")

    @model_validator(mode="after")
    def _grounds(self) -> DecideAppeal:
        if self.decision is AppealDecision.UPHELD and self.grounds is None:
            raise ValueError("an upheld appeal says its grounds: malicious or mistaken")
        if self.decision is AppealDecision.REJECTED and self.grounds is not None:
            raise ValueError("grounds go with an upheld appeal only")
        return self
