"""What counts as the same command under one Idempotency-Key (server-free): the validated
command, not its bytes; a key recorded before digests were kept still replays; and the digest
stays in the store, never in what crosses the bus."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from services.intake import commands as c
from services.intake.domain import Case, case_id_for
from shared.eventstore.command_path import CommandDigests, CommandPath
from shared.eventstore.outbox import encode, to_envelope
from shared.kernel.clock import ManualClock
from shared.kernel.errors import AlreadyDoneError, IdempotencyKeyReused
from shared.kernel.meta import COMMAND_DIGEST
from shared.kernel.privacy import KnownPerson
from shared.kernel.scrubbing import KNOWN_PERSON
from shared.settings import DEV_SURVEY_TOKEN_SECRET, command_digest_key

DIGESTS = CommandDigests(command_digest_key(DEV_SURVEY_TOKEN_SECRET))


def digest(body: str) -> str | None:
    return DIGESTS.of(c.RestateRequest.model_validate_json(body))


def test_a_command_spelled_another_way_is_the_same_command() -> None:
    first = digest('{"restatement": "要补材料", "confirmed": true}')
    assert first is not None and len(first) == 32
    assert digest('{\n  "confirmed" : true ,"restatement":"要补材料"  }') == first
    # A default sent or left out, and the trace's id (a header's, or one per attempt).
    assert digest('{"restatement": "要补材料", "confirmed": true, "correction": null,'
                  ' "correlation_id": "visit-42"}') == first


def test_other_words_another_answer_or_another_key_is_another_digest() -> None:
    first = digest('{"restatement": "要补材料", "confirmed": true}')
    assert digest('{"restatement": "要补户口本", "confirmed": true}') != first
    assert digest('{"restatement": "要补材料", "confirmed": false}') != first
    assert CommandDigests(b"another service secret").of(
        c.RestateRequest(restatement="要补材料", confirmed=True)) != first
    # Another command with the very same fields is not the same command.
    assert DIGESTS.of(c.HearRequest(words="x")) != DIGESTS.of(c.RestateRequest.model_construct(
        words="x"))


def case_heard(meta: dict[str, object]) -> Case:
    case = Case(id=case_id_for("c1", "open-1"), center_id="c1", counter_id="w1",
                clerk_id="k1", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                resident_id=uuid.uuid4(), meta={"causation_id": "open-1"})
    case.hear_request("我的临时救助还没批下来",
                      case.meta_for({"causation_id": "hear-1", **meta}))
    return case


def test_the_same_key_with_other_content_is_refused_and_the_same_command_replays() -> None:
    case = case_heard({COMMAND_DIGEST: "a" * 32})
    with pytest.raises(IdempotencyKeyReused):
        case.check_new_command("hear-1", "RequestHeard", digest="b" * 32)
    with pytest.raises(AlreadyDoneError):
        case.check_new_command("hear-1", "RequestHeard", digest="a" * 32)


def test_a_key_recorded_before_digests_were_kept_still_replays() -> None:
    case = case_heard({})
    with pytest.raises(AlreadyDoneError):
        case.check_new_command("hear-1", "RequestHeard", digest="b" * 32)


def test_the_digest_stays_in_the_store_and_never_crosses_the_bus() -> None:
    case = case_heard({COMMAND_DIGEST: "d1e5e7" * 5 + "ab"})
    heard = case.pending_events[-1]
    assert heard.meta[COMMAND_DIGEST] == "d1e5e7" * 5 + "ab"
    sent = encode(to_envelope("intake", 2, heard))
    assert b"d1e5e7" not in sent and COMMAND_DIGEST not in json.loads(sent)


def _heard_through_the_path(words: str, person: KnownPerson | None,
                            key: str = "hear-1") -> tuple[Case, CommandPath, dict[str, object]]:
    """A hear command as intake's use case runs it: the path's meta (and its digest), then
    the known person the case names, then the verb."""
    path = CommandPath(SimpleNamespace(command_digest_key=b"k" * 32),  # type: ignore[arg-type]
                       clock=ManualClock(datetime(2026, 12, 20, 10, tzinfo=UTC)))
    case = Case(id=case_id_for("c1", "open-1"), center_id="c1", counter_id="w1",
                clerk_id="k1", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                resident_id=uuid.uuid4(), meta={"causation_id": "open-1"})
    meta = path.meta("clerk-017", key, c.HearRequest(words=words))
    if person is not None:
        meta[KNOWN_PERSON] = person
    case.hear_request(words, case.meta_for(meta))
    return case, path, meta


def test_an_erased_residents_name_is_not_found_again_by_trying_names_against_the_digest() -> None:
    """The digest kept with the case's events is of what the events hold: over the raw words
    it gave a name typed alone back to whoever holds SURVEY_TOKEN_SECRET, after the erasure,
    by trying names (731,000 in 13 s found 王秀英 from "[姓名已隐去]来问临时救助")."""
    kept = []
    for name in ("王秀英", "李建国"):
        case, path, _ = _heard_through_the_path(f"{name}来问临时救助", KnownPerson(name=name))
        heard = case.pending_events[-1]
        assert heard.words == "[姓名已隐去]来问临时救助"  # type: ignore[attr-defined]
        assert isinstance(heard.meta[COMMAND_DIGEST], str)
        kept.append(heard.meta[COMMAND_DIGEST])
        # Nothing more than the event says: the digest of the words as kept.
        assert kept[-1] == path.digests.of(c.HearRequest(words=heard.words))  # type: ignore[attr-defined]
    assert kept[0] == kept[1]


def test_through_the_path_a_retry_replays_and_other_words_under_the_key_are_refused() -> None:
    person = KnownPerson(name="王秀英")
    case, path, _ = _heard_through_the_path("王秀英来问临时救助", person)
    retry = path.meta("clerk-017", "hear-1", c.HearRequest(words="王秀英来问临时救助"))
    retry[KNOWN_PERSON] = person
    with pytest.raises(AlreadyDoneError):
        case.check_new_command("hear-1", "RequestHeard", digest=retry[COMMAND_DIGEST])
    other = path.meta("clerk-017", "hear-1", c.HearRequest(words="王秀英来问医保报销"))
    other[KNOWN_PERSON] = person
    with pytest.raises(IdempotencyKeyReused):
        case.check_new_command("hear-1", "RequestHeard", digest=other[COMMAND_DIGEST])
