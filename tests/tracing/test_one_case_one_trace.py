"""Ops follow one resident's case across the services: the counter's resolution, the survey
feedback asks for and the check follow-up schedules are one trace, from the request to the
read models; and with tracing off, nothing is added to an event or a message."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Link, SpanKind

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared import tracing
from shared.contracts import Envelope
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_feedback_loop import START, fast, resolved_case
from tests.support import running, stream_messages, wait_until
from tests.tracing.memory import traced


def named(spans: list[ReadableSpan], name: str, case_id: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name
            and (s.attributes or {}).get("sixstep.case_id") == case_id]


def applied(spans: list[ReadableSpan], consumer: str, event_type: str,
            case_id: str) -> list[tuple[ReadableSpan, Link]]:
    """The batch spans of ``consumer`` linked to the case's message of ``event_type``."""
    return [(s, link) for s in spans if s.name == f"consume {consumer}" for link in s.links
            if (link.attributes or {}).get("sixstep.case_id") == case_id
            and (link.attributes or {}).get("sixstep.event_type") == event_type]


#: Who applies what of a resolution: each consumer's batch links to the message it applied.
APPLIED = (("intake-cases", "CaseResolved"), ("feedback-intake", "CaseResolved"),
           ("feedback-views", "SurveyRequested"), ("followup-rules", "CaseResolved"),
           ("followup-worklist", "FollowUpScheduled"))


async def test_a_resolution_its_survey_and_its_check_call_are_one_trace(
        settings: Settings) -> None:
    """Each consumer applies a batch in one span (OpenTelemetry's messaging conventions for
    a batch processed at once) linked to every message of a kept trace in it; the events a
    message causes go on in its trace, so the resolution, the survey and the check are one
    tree, and each consumer that applied one of them is a link away."""
    settings = fast(settings)
    intake_service = intake_app(settings)
    with traced() as exporter:
        async with (running(intake_service) as intake,
                    running(feedback_app(settings, sender=KeptSender(), clock=Clock(START))),
                    running(followup_app(settings, clock=ManualClock(START)))):
            case_id = await resolved_case(intake)

            async def downstream_applied() -> bool:
                spans = list(exporter.get_finished_spans())
                return all(applied(spans, consumer, event_type, case_id)
                           for consumer, event_type in APPLIED)

            await wait_until(downstream_applied, timeout=60.0,
                             what="the survey and the check in the views")
            spans = list(exporter.get_finished_spans())

            [resolve] = named(spans, "POST /cases/{case_id}/resolve", case_id)
            assert resolve.kind is SpanKind.SERVER and resolve.parent is None
            assert resolve.attributes["http.response.status_code"] == 200
            trace_id = resolve.context.trace_id
            in_trace = {s.context.span_id: s for s in spans if s.context.trace_id == trace_id}

            # Through intake, feedback (the survey asked and published) and follow-up (the
            # check planned and published): one tree, every span but the request's below
            # another span of the trace.
            for name in ("publish CaseResolved", "publish SurveyRequested",
                         "publish FollowUpScheduled"):
                assert any(s.name == name for s in in_trace.values()), name
            for s in in_trace.values():
                if s is not resolve:
                    assert s.parent is not None and s.parent.span_id in in_trace, s.name
            [survey] = [s for s in in_trace.values() if s.name == "publish SurveyRequested"]
            assert _ancestors(survey, in_trace)[-1] is resolve

            # No span per message: a batch applied whole makes one.
            assert not [s.name for s in spans if s.name.startswith("apply ")]
            # Each consumer's batch links to the very message it applied, in the trace.
            for consumer, event_type in APPLIED:
                [published] = [s for s in in_trace.values()
                               if s.name == f"publish {event_type}"]
                for batch, link in applied(spans, consumer, event_type, case_id):
                    assert batch.kind is SpanKind.CONSUMER
                    # a batch of one kept message is also its child (found in its trace)
                    assert (batch.parent is None or (
                        batch.parent.span_id == published.context.span_id
                        and len(batch.links) == 1)), batch
                    assert link.context.trace_id == trace_id
                    assert link.context.span_id == published.context.span_id

            # The group commit links to the traces it carried.
            commits = [s for s in spans if s.name == "group commit"
                       and any(link.context.span_id == resolve.context.span_id
                               for link in s.links)]
            assert commits, "the resolution's group commit links to its request"

            # In the store, the resolution keeps its request's span in its meta.
            stored = stored_events(intake_service, case_id)
            [resolution] = [e for e in stored if type(e).__name__ == "CaseResolved"]
            assert resolution.meta[tracing.TRACEPARENT] == tracing.traceparent_of(resolve)

        # On the stream: the survey's message carries the trace in its header; the envelope
        # is the one every consumer and export already reads.
        [message] = [m for m in await stream_messages(settings)
                     if (m.headers or {}).get("Sixstep-Type") == "SurveyRequested"]
        header = message.headers[tracing.TRACEPARENT]
        assert header.split("-")[1] == f"{trace_id:032x}"
        assert "traceparent" not in orjson.loads(message.data)
        Envelope.model_validate_json(message.data)


async def test_a_resolution_whose_trace_is_not_sampled_keeps_its_trace_id_downstream(
        settings: Settings) -> None:
    """As deployed, most traces are not sampled: no span of theirs is made past the request,
    and still the survey the resolution causes goes on in the resolution's trace id."""
    settings = fast(settings)
    intake_service = intake_app(settings)
    with traced(ParentBased(ALWAYS_OFF)) as exporter:
        async with (running(intake_service) as intake,
                    running(feedback_app(settings, sender=KeptSender(), clock=Clock(START)))):
            case_id = await resolved_case(intake)

            async def survey_published() -> bool:
                return any((m.headers or {}).get("Sixstep-Type") == "SurveyRequested"
                           for m in await stream_messages(settings))

            await wait_until(survey_published, timeout=60.0, what="the survey on the stream")
            [resolution] = [e for e in stored_events(intake_service, case_id)
                            if type(e).__name__ == "CaseResolved"]
            stamped = resolution.meta[tracing.TRACEPARENT]
            assert not int(stamped.split("-")[3], 16) & 1  # the request's trace, not sampled
        assert not exporter.get_finished_spans()
        messages = await stream_messages(settings)
        [resolved] = [m for m in messages
                      if (m.headers or {}).get("Sixstep-Type") == "CaseResolved"]
        assert resolved.headers[tracing.TRACEPARENT] == stamped
        [survey] = [m for m in messages
                    if (m.headers or {}).get("Sixstep-Type") == "SurveyRequested"]
        assert survey.headers[tracing.TRACEPARENT].split("-")[1] == stamped.split("-")[1]


def _ancestors(span: ReadableSpan, spans: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = [span]
    while chain[-1].parent is not None:
        chain.append(spans[chain[-1].parent.span_id])
    return chain


async def test_with_tracing_off_events_and_messages_carry_no_trace(settings: Settings) -> None:
    assert not tracing.enabled()
    service = intake_app(settings)
    async with running(service) as intake:
        case_id = await resolved_case(intake, resident=False)

        async def published() -> bool:
            return any((m.headers or {}).get("Sixstep-Type") == "CaseResolved"
                       for m in await stream_messages(settings))

        await wait_until(published, what="the resolution on the stream")
        stored = stored_events(service, case_id)
        assert len(stored) >= 3
        assert all(tracing.TRACEPARENT not in e.meta for e in stored)
    for m in await stream_messages(settings):
        assert tracing.TRACEPARENT not in (m.headers or {})


def stored_events(service: FastAPI, case_id: str) -> list[Any]:
    """The case's events as intake's store holds them (domain events, with their meta)."""
    return list(service.state.runtime.application.events.get(UUID(case_id)))
