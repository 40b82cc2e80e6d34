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


class ReferralKind(StrEnum):
    """Where a referral (派单) went: another window of the center, a street office, the social
    insurance bureau, an employer, or another unit."""

    WINDOW = "window"
    STREET_OFFICE = "street_office"
    SOCIAL_INSURANCE_BUREAU = "social_insurance_bureau"
    EMPLOYER = "employer"
    OTHER = "other"


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
    MOVED = "moved"  # set by hand: a supervisor or the case's clerk moved it, with a reason


class DueCause(StrEnum):
    """Why a case's due date was set or moved."""

    GUIDANCE = "guidance"  # the item was named at guidance: its usual working days apply
    PROMISED = "promised"  # a date was promised to the resident
    DEADLINE_NOTED = "deadline_noted"  # an earlier deadline was noted
    CALENDAR_PUBLISHED = "calendar_published"  # the official schedule replaced a provisional one
    MOVED = "moved"  # a supervisor or the case's clerk moved it, with a reason (``note``)
    #: The case was reopened: the item's usual working days again, from the reopening day,
    #: when its due date was earlier (not overdue the moment it is taken up again).
    REOPENED = "reopened"


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


class Relation(StrEnum):
    """How the applicant of a case is related to its beneficiary (代办 / 帮办代办)."""

    SELF = "self"
    SPOUSE = "spouse"
    CHILD = "child"  # the applicant is the beneficiary's child
    PARENT = "parent"  # the applicant is the beneficiary's parent
    GUARDIAN = "guardian"
    OTHER = "other"


class ProofSeen(StrEnum):
    """The document the clerk saw that shows the applicant may act for the beneficiary."""

    NONE = "none"  # only for ``self``
    HOUSEHOLD_REGISTER = "household_register"  # 户口簿
    MARRIAGE_CERTIFICATE = "marriage_certificate"  # 结婚证
    BIRTH_CERTIFICATE = "birth_certificate"  # 出生医学证明
    GUARDIANSHIP_PAPER = "guardianship_paper"  # 监护证明 / 法院文书
    POWER_OF_ATTORNEY = "power_of_attorney"  # 授权委托书
    COMMUNITY_CERTIFICATE = "community_certificate"  # 居委会证明


class StepTiming(StrEnum):
    """Whether a plan step takes effect on a day, or in a month (its first day stands for it)."""

    DAY = "day"
    MONTH = "month"


class GuidanceTopic(StrEnum):
    """What an employment-aid guidance session (职业指导) was about."""

    CAREER_GUIDANCE = "career_guidance"
    JOB_REFERRAL = "job_referral"
    TRAINING_REFERRAL = "training_referral"
    ENTREPRENEURSHIP = "entrepreneurship"
    POLICY_ADVICE = "policy_advice"


class EmployerType(StrEnum):
    """The kind of employer a resident was placed with: never the employer's name."""

    ENTERPRISE = "enterprise"  # 企业
    PUBLIC_INSTITUTION = "public_institution"  # 机关事业单位
    PUBLIC_WELFARE_JOB = "public_welfare_job"  # 公益性岗位
    FLEXIBLE = "flexible"  # 灵活就业
    SELF_EMPLOYED = "self_employed"  # 自主创业
    OTHER = "other"
