"""What counts as the same command under one Idempotency-Key (server-free): the validated
command, not its bytes; a key recorded before digests were kept still replays; and the digest
stays in the store, never in what crosses the bus."""

from __future__ import annotations

import json
import uuid

import pytest

from services.intake import commands as c
from services.intake.domain import Case, case_id_for
from shared.eventstore.command_path import CommandDigests
from shared.eventstore.outbox import encode, to_envelope
from shared.kernel.errors import AlreadyDoneError, IdempotencyKeyReused
from shared.kernel.meta import COMMAND_DIGEST
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


def test_a_digest_kept_before_is_the_digest_made_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The digests in the store were HMAC-SHA256 under the key, cut to 128 bits: a retry
    after an upgrade must meet the same one. The key is set up once, not per command."""
    import hashlib
    import hmac

    key = command_digest_key(DEV_SURVEY_TOKEN_SECRET)
    digests = CommandDigests(key)
    monkeypatch.setattr(hmac, "new", lambda *a, **k: pytest.fail("keyed again per command"))
    for body in ('{"restatement": "要补材料", "confirmed": true}',
                 '{"restatement": "' + "长" * 3000 + '", "confirmed": false}'):
        command = c.RestateRequest.model_validate_json(body)
        fields = json.dumps(["RestateRequest", command.model_dump(
            mode="json", exclude={"correlation_id"})], sort_keys=True,
            ensure_ascii=False, separators=(",", ":")).encode()
        expected = hmac.HMAC(key, fields, hashlib.sha256).digest()[:16].hex()
        assert digests.of(command) == expected
