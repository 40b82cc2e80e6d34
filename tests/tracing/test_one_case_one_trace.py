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
from opentelemetry.trace import SpanKind

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


async def test_a_resolution_its_survey_and_its_check_call_are_one_trace(
        settings: Settings) -> None:
    settings = fast(settings)
    intake_service = intake_app(settings)
    with traced() as exporter:
        async with (running(intake_service) as intake,
                    running(feedback_app(settings, sender=KeptSender(), clock=Clock(START))),
                    running(followup_app(settings, clock=ManualClock(START)))):
            case_id = await resolved_case(intake)
            needed = ("apply feedback-views SurveyRequested",
                      "apply followup-worklist FollowUpScheduled")

            async def downstream_applied() -> bool:
                spans = list(exporter.get_finished_spans())
                return all(named(spans, name, case_id) for name in needed)

            await wait_until(downstream_applied, timeout=60.0,
                             what="the survey and the check in the views")
            spans = list(exporter.get_finished_spans())

            [resolve] = named(spans, "POST /cases/{case_id}/resolve", case_id)
            assert resolve.kind is SpanKind.SERVER and resolve.parent is None
            assert resolve.attributes["http.response.status_code"] == 200
            trace_id = resolve.context.trace_id
            in_trace = {s.context.span_id: s for s in spans if s.context.trace_id == trace_id}

            # Through intake (its read model), feedback (the survey asked, published and
            # shown) and follow-up (the check planned, published and on the worklist).
            for name in ("publish CaseResolved", "apply intake-cases CaseResolved",
                         "apply feedback-intake CaseResolved", "publish SurveyRequested",
                         "apply feedback-views SurveyRequested",
                         "apply followup-rules CaseResolved", "publish FollowUpScheduled",
                         "apply followup-worklist FollowUpScheduled"):
                assert any(s.name == name for s in in_trace.values()), name
            # One tree: every span but the request's hangs below another span of the trace.
            for s in in_trace.values():
                if s is not resolve:
                    assert s.parent is not None and s.parent.span_id in in_trace, s.name
            survey_applied = named(spans, "apply feedback-views SurveyRequested", case_id)[0]
            assert _ancestors(survey_applied, in_trace)[-1] is resolve

            # The batches: group commit and the relay link to the traces they carried.
            commits = [s for s in spans if s.name == "group commit"
                       and any(link.context.span_id == resolve.context.span_id
                               for link in s.links)]
            assert commits, "the resolution's group commit links to its request"
            assert any(s.name == "consume feedback-intake" and any(
                link.context.trace_id == trace_id for link in s.links) for s in spans)

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
