"""What counts as the same command under one Idempotency-Key (server-free): the validated
command, not its bytes; a key recorded before digests were kept still replays; and the digest
stays in the store, never in what crosses the bus."""

from __future__ import annotations

import json
import uuid

import pytest

from services.intake import commands as c
from services.intake.domain import Case, case_id_for
from shared.eventstore.command_path import CommandDigests, shape_of
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


def test_an_erased_residents_name_or_number_is_not_found_again_by_trying_them() -> None:
    """The digest stays with the case's events after the resident is erased: over the raw
    words, keyed, it gave a name typed alone back to whoever holds SURVEY_TOKEN_SECRET by
    trying names (731,000 in 13 s found 王秀英 from "[姓名已隐去]来问临时救助"). Only a text's
    shape is in it now: every name of three characters (and every mobile number) gives the
    same digest, so trying them tells nothing."""
    names = {digest(json.dumps({"restatement": f"{name}来问临时救助", "confirmed": True}))
             for name in ("王秀英", "李建国", "张三丰")}
    phones = {digest(json.dumps({"restatement": f"电话{phone}", "confirmed": True}))
              for phone in ("13812345678", "13998765432")}
    assert len(names) == 1 and len(phones) == 1
    # Still told apart: another length, another script, another code or id.
    assert digest(json.dumps({"restatement": "王秀来问临时救助", "confirmed": True})) not in names


def test_a_code_stays_exact_and_a_text_of_another_shape_is_another_command() -> None:
    assert shape_of("王秀英 tel 138-1234-5678。") == "字字字 aaa 000-0000-0000。"
    def opened(item: str) -> str | None:
        return DIGESTS.of(c.OpenCase(center_id="SH-PD-HUAMU", counter_id="window-3",
                                     service_item=item))

    # Same shape, other codes: a code is kept as it is (no personal data in a code).
    assert opened("SA-HARDSHIP-SUBSIDY") != opened("SA-PENSIONS-SUBSIDY")


def test_a_number_written_in_groups_is_a_number_not_a_code() -> None:
    """A text alone in its field, all ASCII without a space, was kept exact as a code unless
    it had six digits in a row: a mobile number written as it is read out (138-1234-5678,
    138.1234.5678) or an ID number in groups passed as a code, and 10^8 guesses found it
    from the digest. Digits in groups count as one run."""
    for numbers in (("138-1234-5678", "139-8765-4321"), ("138.1234.5678", "139.8765.4321"),
                    ("310101-1990-0101-123X", "110105-1985-0707-456X")):
        said = {digest(json.dumps({"restatement": n, "confirmed": True})) for n in numbers}
        assert len(said) == 1, numbers
    # Codes with a few digits stay exact.
    assert digest(json.dumps({"restatement": "clerk-017", "confirmed": True})) != digest(
        json.dumps({"restatement": "clerk-018", "confirmed": True}))


def test_a_digest_kept_before_is_the_digest_made_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest is HMAC-SHA256 under the key, cut to 128 bits, of the command's fields
    (each text but a code by its shape): a retry after an upgrade of this code meets the same
    one. The key is set up once, not per command."""
    import hashlib
    import hmac

    # The service's key, and keys about SHA-256's block (64 bytes: a longer one is hashed)
    keys = [command_digest_key(DEV_SURVEY_TOKEN_SECRET), b"", b"k", b"\x00\xff" * 32,
            bytes(range(65)), b"s" * 200]
    made = {key: CommandDigests(key) for key in keys}
    monkeypatch.setattr(hmac, "new", lambda *a, **k: pytest.fail("keyed again per command"))
    for key, digests in made.items():
        for body in ('{"restatement": "要补材料", "confirmed": true}',
                     '{"restatement": "' + "长" * 3000 + '", "confirmed": false}'):
            command = c.RestateRequest.model_validate_json(body)
            dumped = command.model_dump(mode="json", exclude={"correlation_id", "sent_at"})
            dumped["restatement"] = shape_of(dumped["restatement"])
            fields = json.dumps(["RestateRequest", dumped], sort_keys=True,
                ensure_ascii=False, separators=(",", ":")).encode()
            expected = hmac.HMAC(key, fields, hashlib.sha256).digest()[:16].hex()
            assert digests.of(command) == expected, key
