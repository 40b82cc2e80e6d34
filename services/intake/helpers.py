"""Who worked a case's help tasks (帮办), as intake has read follow-up's ``HELP_WORK``.

A help task of the supervisor team names nobody (any supervisor works it), so the case's own
steps do not say who served it that way; the one who accepted, started, did or handed back
its task did (``shared.kernel.serving``), and may not lower its urgency nor approve its
extension. The ``intake-verdicts`` consumer keeps them here (:func:`keep`), the use cases
read them before they decide (``Intake._helped``). A task worked a moment ago may not be
read yet (follow-up's events come on their own path)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from shared.contracts import Envelope
from shared.kernel.meta import by_a_worker
from shared.kernel.serving import HELP_WORK

DDL = [
    "CREATE TABLE IF NOT EXISTS case_helpers ("
    " case_id uuid NOT NULL, actor text NOT NULL, PRIMARY KEY (case_id, actor))",
]

KEEP = ("INSERT INTO case_helpers (case_id, actor) SELECT * FROM"
        " unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING")


def subjects(prefix: str) -> list[str]:
    return [f"{prefix}.followup.{t}.*" for t in HELP_WORK]


async def keep(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """The staff who moved one of a case's help tasks along, in the batch's transaction."""
    worked = {(e.case_id, e.actor) for e in events
              if e.service == "followup" and e.type in HELP_WORK and e.case_id is not None
              and e.actor and not by_a_worker(e.actor)}
    if worked:
        await conn.execute(KEEP, [w[0] for w in worked], [w[1] for w in worked])


async def of_case(pool: asyncpg.Pool, case_id: UUID) -> tuple[str, ...]:
    """The staff who worked the case's help tasks, as read so far."""
    return tuple(await pool.fetchval(
        "SELECT coalesce(array_agg(actor ORDER BY actor), '{}') FROM case_helpers"
        " WHERE case_id = $1", case_id))


async def backfill(conn: asyncpg.Connection, events: Sequence[Envelope],
                   seqs: Sequence[int]) -> None:
    """Follow-up's help-task work of the whole log (``sixstep ops backfill``): the
    ``intake-verdicts`` durable read it only from the upgrade that taught it to on."""
    await keep(conn, events)
