"""A dead letter is a pointer into the log, not an event. Every service's NATS user may
publish a letter for any consumer (the subject names the consumer, not the service), so a
compromised service could write another service's event as a letter, and an operator's
``sixstep dlq replay`` applied the letter's own bytes (redteam125). Now the replay applies the
log's event at the letter's stream sequence, refuses and keeps a letter that is not it (other
bytes, another subject, a sequence the log never had or no longer holds), and a refused letter
holds back none of its case's true letters; ``sixstep dlq list`` marks it. A letter's subject
names its consumer's service (``dlq.<prefix>.<service>.<consumer>``, which the shipped NATS
lets that service's user alone publish: ``tests/deploy/test_nats_auth.py``), and one on
another service's subject is refused, the log's true event though it is."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from shared.analytics.replay import Replay
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.deadletters import REPLAY_DDL, replay_dead_letters
from shared.bus.jetstream import dead_letter_subject, publish_dead_letter
from shared.cli.dlq import _list as dlq_list
from shared.http.ops import install_ops
from shared.runtime.lifecycle import Runtime
from shared.runtime.metrics import Metrics
from shared.settings import Settings
from tests.cli.in_process import invoke
from tests.faults.harness import service_env
from tests.faults.test_consumer_recovery import Recorder
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import (
    bus_connection,
    consumer_running,
    dead_letters,
    schema_pool,
    stream_messages,
    wait_until,
)

ANOTHER_CENTER = "SH-XH-TIANPING"


def seq(msg: Msg) -> int:
    return int(msg.metadata.sequence.stream)


async def test_a_letter_forged_beside_a_true_one_is_refused_and_the_true_one_applied(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 2)  # CaseOpened, RequestHeard of one case, then another's
        await run_relay(settings, side, 4)
    opened, heard, other_opened, other_heard = await stream_messages(settings)
    async with bus_connection(settings, "forger") as nc, \
            schema_pool(settings, "forged", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        js = nc.jetstream()
        # A compromised service writes the first case's opening as another center's, at its
        # true sequence and subject, a letter of the consumer "cases".
        forged = {**orjson.loads(opened.data), "center_id": ANOTHER_CENTER}
        await publish_dead_letter(js, settings, "cases", seq=seq(opened), subject=opened.subject,
                                  data=orjson.dumps(forged), reason="forged", tries=5)
        # A true event's bytes under another's sequence, and under one the log never had.
        await publish_dead_letter(js, settings, "cases", seq=seq(other_heard),
                                  subject=other_opened.subject, data=other_opened.data,
                                  reason="forged", tries=5)
        await publish_dead_letter(js, settings, "cases", seq=seq(other_opened) + 1000,
                                  subject=other_opened.subject, data=other_opened.data,
                                  reason="forged", tries=5)
        # The consumer's own letter of the first case's second event, true.
        await publish_dead_letter(js, settings, "cases", seq=seq(heard), subject=heard.subject,
                                  data=heard.data, reason="RuntimeError: a bug", tries=5)

        listed = await asyncio.to_thread(dlq_list, settings, "cases")  # sixstep dlq list
        marks = {x["stream_seq"]: (x["matches_log"], x["not_the_log_because"])
                 for x in listed if x["reason"] == "forged"}
        assert marks[seq(opened)][0] is False and "bytes are not the log's event" in str(
            marks[seq(opened)][1]), marks
        assert marks[seq(other_heard)][0] is False and "is on " in str(
            marks[seq(other_heard)][1]), marks
        assert "the log has no stream seq" in str(marks[seq(other_opened) + 1000][1]), marks
        assert [x["matches_log"] for x in listed if x["reason"] != "forged"] == [True]
        status = await asyncio.to_thread(invoke, ["ops", "status"], env=service_env(settings))
        assert "4 dead letter(s): cases 4; 3 not the log's event" in " ".join(
            status.output.split()), status.output  # said where the operator looks first

        recorder = Recorder()
        report = await replay_dead_letters(nc, pool, settings, "cases", recorder)
        assert recorder.applied == ["RequestHeard"], "only the log's event is applied"
        assert len(report.replayed) == 1 and report.failed == [], report
        assert len(report.refused) == 3 and all(
            "not the log's event" in str(r["reason"]) for r in report.refused), report
        # The refused letters stay for the operator to see and drop; the true one is gone.
        left = await dead_letters(settings)
        assert len(left) == 3 and {m.headers["Sixstep-Reason"] for m in left} == {"forged"}

        again = await replay_dead_letters(nc, pool, settings, "cases", Recorder())
        assert (again.replayed, len(again.refused)) == ([], 3), again


async def test_a_letter_whose_event_the_log_no_longer_holds_is_refused_not_trusted(
        settings: Settings) -> None:
    """The stream's limits dropped the event (a purge up to a sequence does what an age or
    size limit does): the letter cannot be checked against the log, so it is not applied,
    whoever wrote it; the event deleted from the log alone is said so."""
    async with write_side(settings) as side:
        await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
    opened, _, _, last = await stream_messages(settings)
    async with bus_connection(settings, "limits") as nc, \
            schema_pool(settings, "limits", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        js = nc.jetstream()
        for event in (opened, last):
            await publish_dead_letter(js, settings, "gone", seq=seq(event), subject=event.subject,
                                      data=event.data, reason="RuntimeError: a bug", tries=5)
        await js.purge_stream(settings.stream_name, seq=seq(opened) + 1)  # keeps from the 2nd
        await js.delete_msg(settings.stream_name, seq(last))

        recorder = Recorder()
        report = await replay_dead_letters(nc, pool, settings, "gone", recorder)
        assert recorder.applied == [], "a letter the log cannot vouch for is applied"
        reasons = " / ".join(str(r["reason"]) for r in report.refused)
        assert len(report.refused) == 2 and "its limits dropped the events before" in reasons \
            and "deleted from it" in reasons, reasons
        assert len(await dead_letters(settings)) == 2


async def test_a_true_events_letter_on_another_services_subject_is_refused(
        settings: Settings) -> None:
    """A copy of the log's own event, for intake's consumer, published on feedback's
    dead-letter subject (the one feedback's user may publish on): replayed, it would apply
    an event the consumer had applied already, late, over what its case did since."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    opened, _ = await stream_messages(settings)
    async with bus_connection(settings, "subjects") as nc, \
            schema_pool(settings, "subjects", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        js = nc.jetstream()
        await js.publish(dead_letter_subject(settings, "feedback-intake"), opened.data, headers={
            "Sixstep-Consumer": "intake-cases", "Sixstep-Reason": "forged",
            "Sixstep-Subject": opened.subject, "Sixstep-Stream-Seq": str(seq(opened)),
            "Sixstep-Delivered": "5"})
        [listed] = await asyncio.to_thread(dlq_list, settings, "intake-cases")
        assert listed["matches_log"] is False and "another service's user wrote it" in str(
            listed["not_the_log_because"]), listed
        recorder = Recorder()
        report = await replay_dead_letters(nc, pool, settings, "intake-cases", recorder)
        assert recorder.applied == [], "a letter another service wrote is applied"
        assert len(report.refused) == 1 and "another service's user wrote it" in str(
            report.refused[0]["reason"]), report
        assert len(await dead_letters(settings)) == 1, "kept, for the operator to drop"


async def forged_on_own_subject(settings: Settings, under: str = "CaseOpened"
                                ) -> tuple[Msg, Msg]:
    """Feedback's user publishes intake's ``CaseOpened`` (its envelope, its type) on its own
    log subject (``sixstep.feedback.<under>.p0``), which it may: the log stores it. Then
    its true ``RequestHeard``: an event the consumer's code reads."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    opened, heard = await stream_messages(settings)
    async with bus_connection(settings, "feedback-user") as nc:
        await nc.jetstream().publish(
            f"{settings.subject_prefix}.feedback.{under}.p0", opened.data)
    *_, copied = await stream_messages(settings)
    return copied, heard


async def letters_of(nc: NATS, settings: Settings, consumer: str, events: tuple[Msg, ...]
                     ) -> None:
    """Each event's letter, as ``consumer`` writes one when it gives up on it."""
    for event in events:
        await publish_dead_letter(nc.jetstream(), settings, consumer, seq=seq(event),
                                  subject=event.subject, data=event.data,
                                  reason="RuntimeError: a bug", tries=5)


async def test_a_letter_of_an_event_its_consumer_never_reads_is_refused(
        settings: Settings) -> None:
    """A compromised service writes another service's event type on its own log subject
    (``sixstep.feedback.CaseOpened``), then a letter of its own consumer, on its own
    dead-letter subject, at that true sequence with the log's bytes. The live consumer
    never reads it (its filter takes intake's subjects); its handler acts on the type
    alone, so the replay applied the forged event (redteam128). Refused now, kept; the
    true letter beside it is applied."""
    copied, heard = await forged_on_own_subject(settings)
    reads = [f"{settings.subject_prefix}.intake.*.*"]
    async with bus_connection(settings, "own-subject") as nc, \
            schema_pool(settings, "own_subject", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        await letters_of(nc, settings, "feedback-intake", (copied, heard))
        recorder = Recorder()
        report = await replay_dead_letters(nc, pool, settings, "feedback-intake", recorder,
                                           filters=reads)
        assert recorder.applied == ["RequestHeard"], "an event its consumer never reads"
        [refused] = report.refused
        assert "none of consumer feedback-intake's subjects take" in str(refused["reason"])
        assert len(await dead_letters(settings)) == 1, "kept, for the operator to drop"


async def test_the_ops_replay_route_checks_the_consumers_own_subjects(
        settings: Settings) -> None:
    """``sixstep dlq replay`` goes through ``POST /ops/dlq/replay``: the route gives the
    replay the subjects the service's code has its consumer read (every partition's), not
    none."""
    copied, heard = await forged_on_own_subject(settings)
    async with bus_connection(settings, "ops-route") as nc, \
            schema_pool(settings, "ops_route", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        await letters_of(nc, settings, "feedback-intake-p0_1", (copied, heard))
        recorder = Recorder()
        runtime = Runtime(settings=settings.model_copy(update={"roles": {"api"}}),
                          service="feedback", application=None,  # type: ignore[arg-type]
                          pool=pool, nc=nc, committer=None,  # type: ignore[arg-type]
                          metrics=Metrics("feedback"))
        runtime.add_consumer("feedback-intake", recorder,  # type: ignore[arg-type]
                             [f"{settings.subject_prefix}.intake.*.*"])
        app = FastAPI()
        app.state.settings = settings
        install_ops(app, lambda: runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(
                app=app, client=("127.0.0.1", 40000)), base_url="http://svc") as client:
            answer = await client.post("/ops/dlq/replay", json={"consumer": "feedback-intake"})
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert recorder.applied == ["RequestHeard"], report
        assert len(report["replayed"]) == 1 and len(report["refused"]) == 1, report


async def test_a_refused_letters_subject_is_said_without_the_personal_data_it_carries(
        settings: Settings) -> None:
    """The writer chooses its letter's subject (any tokens under its own): a phone number in
    it was printed in the refusal, the replay's log line and ``sixstep dlq list``."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    opened, _ = await stream_messages(settings)
    phone = "13812345678"
    async with bus_connection(settings, "pii") as nc, \
            schema_pool(settings, "pii", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        # and a log subject of its own choosing, named by a letter that says another
        logged = await nc.jetstream().publish(
            f"{settings.subject_prefix}.intake.{phone}.p0", opened.data)
        await publish_dead_letter(nc.jetstream(), settings, "intake-cases", seq=logged.seq,
                                  subject=opened.subject, data=opened.data, reason="forged",
                                  tries=5)
        await nc.jetstream().publish(
            f"dlq.{settings.subject_prefix}.feedback.{phone}", opened.data, headers={
                "Sixstep-Consumer": "intake-cases", "Sixstep-Reason": "forged",
                "Sixstep-Subject": opened.subject, "Sixstep-Stream-Seq": str(seq(opened)),
                "Sixstep-Delivered": "5"})
        listed = await asyncio.to_thread(dlq_list, settings, "intake-cases")
        report = await replay_dead_letters(nc, pool, settings, "intake-cases", Recorder(),
                                           filters=[f"{settings.subject_prefix}.intake.*.*"])
        said = f"{[x['not_the_log_because'] for x in listed]} {report.refused}"
        assert "another service's user wrote it" in said and "is on" in said, said
        assert len(report.refused) == 2, report
        assert phone not in said, said


async def test_another_services_event_under_a_services_own_subject_is_never_applied(
        settings: Settings) -> None:
    """Feedback's user may publish on ``sixstep.feedback.RectificationOpened.*``, which
    follow-up's rules read: an envelope there that says intake's ``CaseOpened`` was handed to
    the handler, which acts on the envelope's type (redteam128). The live consumer now
    dead-letters it, and its replay refuses it, the log's own bytes though they are; intake's
    true events are applied."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    opened, _ = await stream_messages(settings)
    prefix = settings.subject_prefix
    reads = [f"{prefix}.intake.*.*", f"{prefix}.feedback.RectificationOpened.*"]
    async with bus_connection(settings, "rules") as nc, \
            schema_pool(settings, "rules", [*TRACKING_DDL, *REPLAY_DDL]) as pool:
        await nc.jetstream().publish(f"{prefix}.feedback.RectificationOpened.p0", opened.data)
        recorder = Recorder()
        async with consumer_running(Consumer(settings=settings, nc=nc, pool=pool,
                                             name="followup-rules", handler=recorder,
                                             filter_subjects=reads, batch=10)):
            async def done() -> bool:
                return len(recorder.applied) >= 2 and len(await dead_letters(settings)) == 1
            await wait_until(done, timeout=10, what="the true events applied, the forged one "
                             "dead-lettered")
            [letter] = await dead_letters(settings)
            assert "its envelope says intake's CaseOpened" in letter.headers["Sixstep-Reason"]
        assert recorder.applied == ["CaseOpened", "RequestHeard"], recorder.applied
        again = Recorder()
        report = await replay_dead_letters(nc, pool, settings, "followup-rules", again,
                                           filters=reads)
        assert again.applied == [] and len(report.refused) == 1, report
        assert "its envelope says intake's CaseOpened" in str(report.refused[0]["reason"])


async def test_a_rebuild_reads_another_services_event_under_a_services_subject_as_unreadable(
        settings: Settings) -> None:
    """The same forgery in the log, read by a replay of history (``sixstep rebuild``,
    ``replay``, exports: ``shared.analytics.replay``): reported unreadable, never handed on
    as intake's event."""
    await forged_on_own_subject(settings, "RectificationOpened")
    read: list[str] = []
    async with Replay(settings) as replay:
        async for batch in replay:
            read.extend(e.type for e in batch.events)
    assert read == ["CaseOpened", "RequestHeard"], read
    assert replay.undecodable == 1 and "its envelope says intake's CaseOpened" in str(
        replay.unreadable[0].reason)
