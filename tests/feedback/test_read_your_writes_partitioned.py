"""Read your writes on a feedback replica that owns some partitions (``CONSUMER_PARTITIONS``
with the API role, as ``tests/faults/test_scale_out.py`` runs feedback-a).

``?after=`` waited on the progress of the replica's own partitioned durable
(``feedback-views-p0_1``): the last position *it* applied, which passes a write of another
replica's partitions as soon as it applies any later event of its own. The read answered
without the write (here: 404 for the survey just requested). It now waits on the consumer's
own name, as intake and follow-up do: until progress is kept per partition, such a replica
answers 504 ``read_model_behind`` (deploy/README, "Read your writes"), never without the
write."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.feedback.domain import survey_id_for_resolution
from services.feedback.main import create_app
from shared.bus.jetstream import partition_of
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.test_feedback_loop import CENTER, fast
from tests.support import running, wait_until


def resolved_in(history: History, settings: Settings, owned: set[int], n: int) -> uuid.UUID:
    """A case of a partition in ``owned``, opened and resolved; its survey's id."""
    case_id = next(c for c in (uuid.uuid5(uuid.NAMESPACE_URL, f"partitioned-{n}-{i}")
                               for i in range(200))
                   if partition_of(c, settings.partitions) in owned)
    history.add("intake", "CaseOpened", "2026-11-25T09:00:00+08:00", {
        "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
        "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": str(uuid.uuid4())}, case_id=case_id, actor="clerk-017")
    resolution = history.resolved(case_id, "2026-11-25T09:20:00+08:00")
    return survey_id_for_resolution(resolution.event_id)


async def test_a_replica_of_some_partitions_never_reads_another_partitions_write_as_applied(
        settings: Settings) -> None:
    quick = fast(settings).model_copy(update={"read_wait_timeout_s": 1.0})
    half = settings.partitions // 2
    mine, theirs = set(range(half)), set(range(half, settings.partitions))
    # Replica a serves the API and owns the first half; replica b, a worker of the other
    # half, requests its cases' surveys but its views are not running (stopped, behind).
    a = create_app(quick.model_copy(update={"consumer_partitions": f"0-{half - 1}"}),
                   sender=KeptSender(), clock=Clock(datetime.fromisoformat(
                       "2026-11-25T09:30:00+08:00")))
    b = create_app(quick.model_copy(update={
        "consumer_partitions": f"{half}-{settings.partitions - 1}", "roles": {"workers"},
        "consumers": {"feedback-intake"}}), sender=KeptSender(),
        clock=Clock(datetime.fromisoformat("2026-11-25T09:30:00+08:00")))
    history = History(CENTER)
    table = f'"{settings.schema_for("feedback")}".feedback_events'
    async with running(a) as api, running(b):
        conn = await asyncpg.connect(settings.database_url)
        try:
            async def stored(survey: uuid.UUID) -> int | None:
                return await conn.fetchval(
                    f"SELECT min(notification_id) FROM {table} WHERE originator_id = $1",
                    survey)

            theirs_survey = resolved_in(history, settings, theirs, 1)
            await history.take().publish(settings)
            await wait_until(lambda: stored(theirs_survey), what="b's survey requested")
            position = await stored(theirs_survey)
            assert position is not None
            mine_survey = resolved_in(history, settings, mine, 2)
            await history.take().publish(settings)

            async def a_read_its_own() -> bool:
                return (await api.get(f"/surveys/{mine_survey}")).status_code == 200

            await wait_until(a_read_its_own, what="a's views past b's write")
            r = await api.get(f"/surveys/{theirs_survey}", params={"after": position})
            assert r.status_code == 504, r.text
            assert r.json()["error"]["code"] == "read_model_behind"
        finally:
            await conn.close()
