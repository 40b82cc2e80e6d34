"""Follow-up's and feedback's free text about a case is built from intake's scrubbed copy (a
name typed alone, which only the vault can find), kept in memory only; the patterns still run
over it; the call is signed over the case and the body; intake down, the patterns alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from fastapi import FastAPI

from services.feedback.application import Feedback, SurveyPolicy
from services.feedback.commands import RateService
from services.feedback.tokens import SurveyTokens, TokenWrongCase
from services.followup import commands as c
from services.intake import case_texts as case_texts_route
from services.intake.application import Intake
from services.intake.commands import HearRequest
from services.intake.domain import Case, case_id_for
from services.intake.known_people import KnownPeople
from shared.eventstore.command_path import CommandPath
from shared.http.case_texts import IntakeCaseTexts, signature, signed
from shared.kernel.errors import Forbidden
from shared.kernel.privacy import KnownPerson
from shared.kernel.scrubbing import (
    SCRUBBED_BY_INTAKE,
    IntakeScrubbed,
    said_in,
    scrub_fields,
    scrubbing_by_intake,
)
from shared.security.principals import Principal, Role, acting_as
from shared.settings import Settings
from tests.support import scrubber_broken_on

REASON = "王秀英不在家，下周再访，电话13912345678"
SCRUBBED = "[姓名已隐去]不在家，下周再访，电话13912345678"  # as intake answers (phone: patterns)


def test_a_hand_back_is_recorded_as_intake_scrubbed_it_and_the_patterns_run_too() -> None:
    meta = {"actor": "clerk-018", SCRUBBED_BY_INTAKE: IntakeScrubbed([REASON], [SCRUBBED])}
    out = scrub_fields("HelpTaskHandedBack", {"reason": REASON, "meta": meta})
    assert out["reason"] == "[姓名已隐去]不在家，下周再访，电话[电话已隐去]"
    assert out["meta"] == {"actor": "clerk-018"}, "never recorded"
    assert SCRUBBED_BY_INTAKE in meta, "the command's meta is left as it was"
    # A text the domain wrapped (a note kept inside another) has intake's copy inside it.
    wrapped = scrub_fields("FollowUpCompleted", {"note": f"转述：{REASON}", "meta": meta})
    assert wrapped["note"].startswith("转述：[姓名已隐去]不在家")


def test_what_intake_answers_shows_nothing_and_keeps_only_what_it_changed() -> None:
    answer = IntakeScrubbed(["秀英", "王秀英说", "不变"],
                            ["[姓名已隐去]", "[姓名已隐去]说", "不变"])
    assert repr(answer) == "IntakeScrubbed(<hidden>)"
    assert [raw for raw, _ in answer.pairs] == ["王秀英说", "秀英"], "longest first"
    assert not IntakeScrubbed(["不变"], ["不变"])


def test_what_a_command_says_is_its_text_not_its_enums() -> None:
    cmd = c.CompleteFollowUp(outcome="done", channel="phone", note="王秀英不在家")
    assert said_in(cmd) == ["王秀英不在家"]


def test_the_call_is_signed_over_the_case_and_the_body() -> None:
    settings, case, body = Settings(), uuid4(), b'{"texts": ["x"]}'
    mac = signature(settings, case, body)
    assert signed(settings, case, body, mac)
    assert not signed(settings, uuid4(), body, mac), "another case"
    assert not signed(settings, case, b'{"texts": ["y"]}', mac), "another text"
    assert not signed(settings, case, body, None)
    other = Settings(survey_token_secret="another secret, long enough for it")
    assert not signed(other, case, body, mac), "another key"


async def test_intake_out_of_reach_leaves_the_text_to_the_patterns() -> None:
    texts = IntakeCaseTexts(Settings(intake_url="http://127.0.0.1:1"))  # nothing listens
    try:
        assert await texts.scrubbed(uuid4(), [REASON]) is None
        meta: dict[str, object] = {}
        await scrubbing_by_intake(texts, uuid4(), [REASON], meta)
        assert meta == {}
    finally:
        await texts.aclose()



async def test_an_answer_that_is_not_intakes_leaves_the_text_to_the_patterns() -> None:
    """A proxy's page or a truncated body with a 200 (not JSON): the write goes on with the
    patterns, as when intake is down, never a 500 on a clerk's note."""
    async def proxy_page(scope: dict, receive: object, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html>gateway</html>"})

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy_page),
                               base_url="http://intake")
    try:
        assert await IntakeCaseTexts(Settings(), client).scrubbed(uuid4(), [REASON]) is None
    finally:
        await client.aclose()


async def test_intake_hung_costs_one_write_the_timeout_not_every_write() -> None:
    """Intake accepts the connection and never answers (hung, a black-holed proxy): the
    first write waits the timeout, then the patterns scrub; the writes after it do not wait
    for intake again (nor pile up on the pool) until the back-off has passed."""
    connections: list[asyncio.StreamWriter] = []
    hung = asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await hung.wait()
        writer.close()

    server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    asked: list[httpx.Request] = []

    async def sent(request: httpx.Request) -> None:
        asked.append(request)

    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=0.3,
                               event_hooks={"request": [sent]})
    texts = IntakeCaseTexts(Settings(), client)
    try:
        # Asked, never answered: the call came back at the timeout, without intake's words.
        assert await texts.scrubbed(uuid4(), [REASON]) is None
        assert len(asked) == 1 and len(connections) == 1
        for _ in range(5):  # a clerk's next writes
            assert await texts.scrubbed(uuid4(), [REASON]) is None
        # Counted, not timed: a write that does not ask intake cannot wait for it.
        assert len(asked) == 1, "each write waited for intake again"
        assert len(connections) == 1
    finally:
        hung.set()
        await client.aclose()
        server.close()
        await server.wait_closed()


class _Noted(Aggregate):
    """An aggregate about a case, as a follow-up is (its first event names the case)."""

    @event("Noted")
    def __init__(self, case_id: UUID, center_id: str = "SH-PD-HUAMU") -> None:
        self.case_id = case_id
        self.center_id = center_id


def _asking_intake(noted: Aggregate, asked: list[str], known: object = None
                   ) -> tuple[CommandPath, IntakeCaseTexts, httpx.AsyncClient]:
    """A command path over a store holding ``noted``, and intake's own case-texts route in
    process (``known``: whom it knows; None, no vault: it answers by the patterns), each call
    it gets put in ``asked``."""
    intake = FastAPI()
    intake.include_router(case_texts_route.router)
    intake.state.settings = Settings()
    intake.state.intake = SimpleNamespace(known=known)

    async def seen(request: httpx.Request) -> None:
        asked.append(request.url.path)

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=intake),
                               base_url="http://intake", event_hooks={"request": [seen]})
    app = Application()
    app.save(noted)
    port = IntakeCaseTexts(Settings(), client)
    path = CommandPath(SimpleNamespace(command_digest_key=b"k" * 32, app=app),  # type: ignore[arg-type]
                       case_texts=port)
    return path, port, client


async def test_a_services_own_worker_does_not_ask_intake_only_a_caller_does() -> None:
    """follow-up's rules cancel a check "case reopened", complete a rectification follow-up,
    as they take intake's and feedback's events from the stream: words of the code (or copied
    from an event already scrubbed), asked of intake over HTTP for every event, so a replay of
    the stream, or intake hung, stalled each event on the timeout. A clerk's note still goes."""
    asked: list[str] = []
    noted = _Noted(uuid4())
    path, _, client = _asking_intake(noted, asked)
    try:
        for worker in ("system:rules", "system:feedback"):
            await path.scrubbing({"actor": worker}, noted.id, "case reopened")
        assert asked == []
        meta: dict[str, Any] = {"actor": "clerk-018"}
        await path.scrubbing(meta, noted.id, REASON)
        assert asked == [f"/internal/case-texts/{noted.case_id}"]
    finally:
        await client.aclose()


async def test_intake_reads_no_resident_for_a_caller_the_aggregate_is_out_of_reach_of() -> None:
    """A clerk of another center (or a resident's token bound to another case) who names a
    follow-up's id with a note gets the 403 as the command loads it; before, intake had read
    that case's resident from the vault for them first, on every such call."""
    asked: list[str] = []
    noted = _Noted(uuid4())
    path, _, client = _asking_intake(noted, asked)
    try:
        for outsider in (Principal("clerk-9", Role.CLERK, center_id="SH-XH-TIANPING"),
                         Principal("resident", Role.RESIDENT, center_id="SH-PD-HUAMU",
                                   case_id=uuid4())):
            with acting_as(outsider):
                await path.scrubbing({"actor": outsider.sub}, noted.id, REASON)
        assert asked == []
        with acting_as(Principal("clerk-018", Role.CLERK, center_id="SH-PD-HUAMU")):
            await path.scrubbing({"actor": "clerk-018"}, noted.id, REASON)
        assert asked == [f"/internal/case-texts/{noted.case_id}"]
    finally:
        await client.aclose()


async def test_intakes_own_steps_read_no_resident_for_another_centers_clerk() -> None:
    """The same on intake's own path: a clerk of another center posting a step to a case (a
    note, a restatement) gets the 403 as the command loads the case; before, intake read the
    case's resident (and the applicant acting for them) from the vault for them first, to
    scrub the text of a command it was about to refuse, on every such call."""
    resident = uuid4()
    case = Case(id=case_id_for("SH-PD-HUAMU", "open-1"), center_id="SH-PD-HUAMU",
                counter_id="window-3", clerk_id="clerk-017", channel="counter",
                service_item="SA-HARDSHIP-SUBSIDY", resident_id=resident,
                meta={"causation_id": "open-1"})
    app = Application()
    app.save(case)
    read: list[UUID] = []

    class Vault:
        async def identity_terms(self, resident_id: UUID) -> None:
            read.append(resident_id)

    async def submit(command: Any, ids: list[UUID]) -> None:
        raise Forbidden("another center's case")  # as the unit answers the outsider

    committer = SimpleNamespace(command_digest_key=b"k" * 32, app=app, submit=submit)
    intake = Intake(committer, None, known=KnownPeople(app, Vault()))  # type: ignore[arg-type]
    step = HearRequest(words="王秀英想申请补助")
    with acting_as(Principal("clerk-9", Role.CLERK, center_id="SH-XH-TIANPING")), \
            pytest.raises(Forbidden):
        await intake.hear_request(case.id, step, "clerk-9", "k-1")
    assert read == []
    with acting_as(Principal("clerk-017", Role.CLERK, center_id="SH-PD-HUAMU")), \
            pytest.raises(Forbidden):  # (this test's committer refuses everyone)
        await intake.hear_request(case.id, step, "clerk-017", "k-2")
    assert read == [resident]


async def test_a_survey_link_asks_intake_about_its_own_surveys_resident_only() -> None:
    """A resident holding their own survey's link (or the pad's) who posts a comment to
    another survey gets 403 token_wrong_case; before, intake read that other survey's
    resident from the vault for the comment first (the link was bound only as the survey was
    loaded, after the call), for anyone with any genuine link."""
    secret = "a survey token secret, long enough"
    tokens = SurveyTokens(secret)
    theirs = tokens.issue(uuid4(), datetime(2027, 1, 20, tzinfo=UTC))
    asked: list[str] = []
    other = _Noted(uuid4())  # another resident's survey, about their case
    path, port, client = _asking_intake(other, asked)
    feedback = Feedback(path.committer, SurveyPolicy(), tokens, None,  # type: ignore[arg-type]
                        case_texts=port)
    try:
        with pytest.raises(TokenWrongCase):
            await feedback.rate(other.id, RateService(token=theirs, level="very_dissatisfied",
                                                      comment=REASON), "resident", "k-1")
        assert asked == []
    finally:
        await client.aclose()


class _Planned(Aggregate):
    """An aggregate about a resident and no case, as a follow-up planned by hand for them is
    (a home visit), or a policy's outreach to one who was only shown a hint."""

    @event("Planned")
    def __init__(self, resident_id: UUID, center_id: str = "SH-PD-HUAMU") -> None:
        self.resident_id = resident_id
        self.case_id = None
        self.center_id = center_id


async def test_a_note_on_a_follow_up_of_a_resident_with_no_case_is_scrubbed_of_that_resident(
        ) -> None:
    """A follow-up planned by hand for a resident (no case) is completed "王秀英不在家": the
    name typed alone, which only the vault can find. Before, no case meant nothing was asked
    of intake and the name stayed in the event, on the stream, after the erasure too."""
    resident = uuid4()
    read: list[UUID] = []

    class Known:
        async def of_resident(self, resident_id: UUID) -> KnownPerson | None:
            read.append(resident_id)
            return KnownPerson(name="王秀英") if resident_id == resident else None

    asked: list[str] = []
    planned = _Planned(resident)
    path, _, client = _asking_intake(planned, asked, Known())
    try:
        with acting_as(Principal("clerk-9", Role.CLERK, center_id="SH-XH-TIANPING")):
            await path.scrubbing({"actor": "clerk-9"}, planned.id, REASON)
        assert asked == [] and read == [], "another center's clerk: the 403, no vault read"
        meta: dict[str, Any] = {"actor": "clerk-018"}
        with acting_as(Principal("clerk-018", Role.CLERK, center_id="SH-PD-HUAMU")):
            await path.scrubbing(meta, planned.id, REASON)
        assert asked == [f"/internal/resident-texts/{resident}"] and read == [resident]
        note = scrub_fields("FollowUpCompleted", {"note": REASON, "meta": meta})["note"]
        assert note == "[姓名已隐去]不在家，下周再访，电话[电话已隐去]"
    finally:
        await client.aclose()


def test_a_residents_call_is_signed_apart_from_a_cases() -> None:
    settings, some_id, body = Settings(), uuid4(), b'{"texts": ["x"]}'
    mac = signature(settings, some_id, body, "resident")
    assert signed(settings, some_id, body, mac, "resident")
    assert not signed(settings, some_id, body, mac), "a resident's call is no case's"
    assert not signed(settings, some_id, body, signature(settings, some_id, body), "resident")


def test_a_note_a_clerk_typed_that_the_scrubber_cannot_read_is_refused_not_blanked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """scrub54 left a failed rule blanking the whole note (``[文字已隐去]``) on the write path
    too: the clerk's note was stored blank and lost. Now the command is refused naming the
    field, nothing of the text in the refusal, and the clerk says it otherwise."""
    from shared.kernel.errors import FreeTextUnscrubbable
    from shared.kernel.privacy.redaction import RedactionFailed

    scrubber_broken_on("锟斤拷", monkeypatch)
    note = "王秀英锟斤拷，电话13912345678"
    for fields in ({"words": note, "meta": {"actor": "clerk-018"}},
                   {"words": note, "meta": {"actor": "clerk-018",
                                            SCRUBBED_BY_INTAKE: IntakeScrubbed(["x"], ["y"])}}):
        with pytest.warns(RedactionFailed, match="refused"), \
                pytest.raises(FreeTextUnscrubbable) as refused:
            scrub_fields("RequestHeard", fields)
        assert refused.value.status == 422 and refused.value.code == "free_text_unscrubbable"
        assert refused.value.details == {"field": "words"}
        assert "王秀英" not in refused.value.message and "139" not in refused.value.message
    # Said otherwise, it is recorded.
    out = scrub_fields("RequestHeard", {"words": "王秀英来电，电话13912345678",
                                        "meta": {"actor": "clerk-018"}})
    assert out["words"] == "[姓名已隐去]来电，电话[电话已隐去]"


def test_a_text_a_worker_copies_or_intake_blanked_still_fails_closed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the services' own workers copy was recorded already: there is no one to ask, so the
    blank stands (as in a log line, a dead letter or an export). A caller's text that intake
    could not scrub for follow-up or feedback (its answer is the blank) refuses the caller."""
    from shared.kernel.errors import FreeTextUnscrubbable
    from shared.kernel.privacy.markers import REDACTED_TEXT
    from shared.kernel.privacy.redaction import RedactionFailed

    scrubber_broken_on("锟斤拷", monkeypatch)
    with pytest.warns(RedactionFailed, match="replaced whole"):
        out = scrub_fields("RequestHeard", {"words": "锟斤拷", "meta": {"actor": "system:rules"}})
    assert out["words"] == REDACTED_TEXT
    reason = "王秀英不在家锟斤拷"
    blanked = IntakeScrubbed([reason], [REDACTED_TEXT])
    with pytest.raises(FreeTextUnscrubbable) as refused:
        scrub_fields("HelpTaskHandedBack", {"reason": reason, "meta": {
            "actor": "clerk-018", SCRUBBED_BY_INTAKE: blanked}})
    assert refused.value.details == {"field": "reason"}
    out = scrub_fields("HelpTaskHandedBack", {"reason": reason, "meta": {
        "actor": "system:rules", SCRUBBED_BY_INTAKE: blanked}})
    assert out["reason"] == REDACTED_TEXT
    # A clerk who types the blank itself is not refused for it.
    assert scrub_fields("HelpTaskHandedBack", {"reason": REDACTED_TEXT, "meta": {
        "actor": "clerk-018", SCRUBBED_BY_INTAKE: blanked}})["reason"] == REDACTED_TEXT
