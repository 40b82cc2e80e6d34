"""What intake does with the residents' verdicts: "not solved" reopens the case.

The resident answers "was your matter solved?" in the survey (feedback's ``RatingGiven``, any
channel: link, counter pad, or a colleague's phone call) and at the post-resolution check
(follow-up's ``FollowUpCompleted``). A ``not_solved`` reopens the case through intake's own
log: ``CaseReopened`` with the reason ``resident_says_unsolved`` and the actor
``system:verdicts``. The reopening then does what every reopening does downstream (feedback
withdraws the survey still waiting, follow-up cancels the checks, and puts the case on the
clerk's worklist with the reason ``resident_says_unsolved``).

Exactly once: the verdict's event id is the command's key, so a redelivered verdict finds the
reopening already recorded and records nothing (``Case.hear_unsolved`` also ignores a verdict
on a case already open, or one said before the case's latest resolution). A verdict reopens
only a case of the center that heard it (the envelope's ``center_id``): a follow-up of
another center naming the case is logged and skipped. A case's verdicts
are applied in stream order; different cases go together (one group commit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import structlog

from services.intake import helpers
from services.intake.application import Intake, Verdict
from shared.contracts import Envelope
from shared.contracts.vocabulary import Verdict as Said
from shared.kernel.errors import Forbidden, InvalidCommand, NotFound, RuleViolated
from shared.kernel.tasks import gather_all

log = structlog.get_logger("sixstep.intake.verdicts")

CONSUMER = "intake-verdicts"


def subjects(prefix: str) -> list[str]:
    """The answers that may carry a verdict, and the help tasks' work (``helpers``)."""
    return [f"{prefix}.feedback.RatingGiven.*", f"{prefix}.followup.FollowUpCompleted.*",
            *helpers.subjects(prefix)]


def not_solved(e: Envelope) -> bool:
    return (e.type in ("RatingGiven", "FollowUpCompleted") and e.case_id is not None
            and e.payload.get("verdict") == Said.NOT_SOLVED.value)


class Verdicts:
    """The consumer handler: one reopening per "not solved", in each case's order."""

    #: Batches of four times CONSUMER_BATCH: the commands of a batch go to group commit
    #: together, so a larger batch fills its rounds rather than adding rounds.
    batch_scale = 4

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        per_case: dict[UUID, list[Envelope]] = defaultdict(list)
        await helpers.keep(conn, events)  # who worked a help task of a case (帮办)
        for e in events:
            if not_solved(e):
                per_case[e.case_id].append(e)  # type: ignore[index]
        if per_case:
            await gather_all(*(self._in_order(case_id, said)
                                for case_id, said in per_case.items()))

    async def _in_order(self, case_id: UUID, said: list[Envelope]) -> None:
        for e in said:
            verdict = Verdict(e.event_id, e.occurred_at, e.correlation_id, e.center_id, e.actor,
                              e.recorded_at)
            try:
                reopened = await self.intake.hear_unsolved(case_id, verdict)
            except NotFound:  # a case of another intake (a hand-built history): nothing here
                log.warning("verdict.unknown_case", case_id=str(case_id),
                            event_id=str(e.event_id))
                continue
            except Forbidden:  # another center's follow-up or survey named this case
                log.warning("verdict.other_center", case_id=str(case_id),
                            event_id=str(e.event_id), center_id=e.center_id)
                continue
            except (RuleViolated, InvalidCommand) as exc:  # e.g. out of the moments' window
                log.warning("verdict.not_applied", case_id=str(case_id),
                            event_id=str(e.event_id), reason=exc.message)
                continue
            log.info("verdict.not_solved", case_id=str(case_id), event_id=str(e.event_id),
                     reopened=reopened)
