"""The center's words, shared by every service: channels, emotions, outcomes."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    COUNTER = "counter"
    PHONE = "phone"
    HOME_VISIT = "home_visit"
    OPEN311 = "open311"


class Emotion(StrEnum):
    CALM = "calm"
    ANXIOUS = "anxious"
    UPSET = "upset"
    ANGRY = "angry"
    DISTRESSED = "distressed"

    @property
    def needs_defusing(self) -> bool:
        """Upset, angry and distressed arrivals count in the emotion-defused rate."""
        return self in (Emotion.UPSET, Emotion.ANGRY, Emotion.DISTRESSED)


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Eligibility(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    MORE_DOCUMENTS = "more_documents"


class ActionKind(StrEnum):
    DONE_ON_THE_SPOT = "done_on_the_spot"
    REFERRED = "referred"
    ESCALATED = "escalated"
    DOCUMENTS_COLLECTED = "documents_collected"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    PARTLY_RESOLVED = "partly_resolved"
    CANNOT_BE_RESOLVED = "cannot_be_resolved"


class Verdict(StrEnum):
    """The resident's own answer to "was your matter solved?" (问题是否解决), asked with the
    rating and at the post-resolution check. ``not_solved`` reopens the case."""

    SOLVED = "solved"  # 已解决
    PARTLY = "partly"  # 部分解决
    NOT_SOLVED = "not_solved"  # 未解决


#: The reason intake records on a case reopened because its resident said it was not solved.
RESIDENT_SAYS_UNSOLVED = "resident_says_unsolved"


class Cadence(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class DueSource(StrEnum):
    """Where a case's due date (办结时限) comes from; the earliest of them wins."""

    ITEM_DAYS = "item_days"  # the service item's usual working days, counted from guidance
    PROMISED = "promised"  # the date the clerk promised the resident
    DEADLINE = "deadline"  # a deadline noted on the case (an application window closing)


class DueCause(StrEnum):
    """Why a case's due date was set or moved."""

    GUIDANCE = "guidance"  # the item was named at guidance: its usual working days apply
    PROMISED = "promised"  # a date was promised to the resident
    DEADLINE_NOTED = "deadline_noted"  # an earlier deadline was noted
    CALENDAR_PUBLISHED = "calendar_published"  # the official schedule replaced a provisional one
    EXTENDED = "extended"  # a supervisor extended it, with a reason


class Basis(StrEnum):
    """On what a date worked out on the working-day calendar rests: a published schedule
    (``official``), or for a year whose schedule is not published yet the statutory holidays
    alone, without make-up days (``provisional``: re-planned when the schedule arrives)."""

    OFFICIAL = "official"
    PROVISIONAL = "provisional"


def with_official_basis(payload: dict[str, object]) -> dict[str, object]:
    """Upcaster for events recorded before dates said their basis: every calendar then was
    the official one (a year without a schedule was refused, never guessed)."""
    return {**payload, "basis": Basis.OFFICIAL.value}
