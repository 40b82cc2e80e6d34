"""A rating pad's pairing code can only be tried a few times a minute: the 10^8 codes cannot be
swept from one address, nor from many."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import asyncpg

from services.feedback import pads
from shared.security import base64url
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_feedback_loop import CENTER, START, center, fast, resolved_case
from tests.support import wait_until


async def test_pairing_codes_cannot_be_swept(settings: Settings) -> None:
    settings = fast(settings)
    async with center(settings, Clock(START), KeptSender()) as (_intake, feedback):
        # The minute held still: slow requests on a loaded machine would refill a token.
        limits = feedback._transport.app.state.pad_pair_limits  # type: ignore[attr-defined]
        still = time.monotonic()
        limits.per_address.clock = limits.overall.clock = lambda: still
        tries = [await feedback.post("/pads/pair", json={"code": f"{n:08d}"}) for n in range(5)]
        assert [r.status_code for r in tries] == [404] * 5
        assert tries[0].json()["error"]["code"] == "pairing_code_unknown"
        refused = await feedback.post("/pads/pair", json={"code": "00000005"})
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1

        # Many addresses together meet the replica's ceiling: each try below comes as if from a
        # fresh address (its per-address budget emptied), and the 61st of the minute is refused.
        limits.overall._buckets.clear()
        seen = []
        for n in range(70):
            limits.per_address._buckets.clear()
            r = await feedback.post("/pads/pair", json={"code": f"{n + 10:08d}"})
            seen.append(r.status_code)
        assert seen.count(404) == 60 and seen[60:] == [429] * 10

        # A real code still pairs once the minute is over.
        limits.per_address._buckets.clear()
        limits.overall._buckets.clear()
        limits.per_address.clock = limits.overall.clock = time.monotonic
        made = await feedback.post("/pads/pairings", json={"counter_id": "W7"})
        assert made.status_code == 201, made.text
        paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
        assert paired.status_code == 200, paired.text


async def test_the_pad_and_the_qr_code_look_on_the_services_clock(settings: Settings) -> None:
    """The survey waiting at a window is found by the moments the service wrote (its clock),
    compared with the service's clock, not PostgreSQL's ``now()``: a center run on a clock
    days behind the database (START is a past Wednesday) pairs its pad and shows the survey,
    on the pad and as the QR code. The old queries compared with ``now()`` and found none."""
    settings = fast(settings)
    async with center(settings, Clock(START), KeptSender()) as (intake, feedback):
        case_id = await resolved_case(intake)  # at window-3, so its survey waits at the tablet
        made = await feedback.post("/pads/pairings", json={"counter_id": "window-3"})
        assert made.status_code == 201, made.text
        paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
        assert paired.status_code == 200, paired.text
        pad = {"X-Pad-Token": paired.json()["pad_token"]}

        async def shown() -> bool:
            r = await feedback.get("/pads/next", headers=pad)
            assert r.status_code == 200, r.text
            return r.json()["survey"] is not None
        await wait_until(shown, what="the survey on the paired pad")
        qr = await feedback.get(f"/cases/{case_id}/survey/qr")
        assert qr.status_code == 200, qr.text


async def test_a_pad_paired_at_its_window_ends_the_token_of_the_pad_before(
        settings: Settings) -> None:
    """A window has one pad. The supervisor pairs a new one (the old was replaced, lost, or
    its token copied off the tablet): the old token is refused from then on. Before, a pad
    token was good for ever, from anywhere: whoever kept one took every survey offered at
    that window and could answer it in the resident's place."""
    settings = fast(settings)
    async with center(settings, Clock(START), KeptSender()) as (_intake, feedback):
        async def paired(window: str) -> dict[str, str]:
            made = await feedback.post("/pads/pairings", json={"counter_id": window})
            assert made.status_code == 201, made.text
            r = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
            assert r.status_code == 200, r.text
            return {"X-Pad-Token": r.json()["pad_token"]}

        old, elsewhere = await paired("W8"), await paired("W9")
        assert (await feedback.get("/pads/next", headers=old)).status_code == 200
        new = await paired("W8")
        refused = await feedback.get("/pads/next", headers=old)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "pad_token_invalid"
        assert (await feedback.get("/pads/next", headers=new)).status_code == 200
        assert (await feedback.get("/pads/next", headers=elsewhere)).status_code == 200
        # A token of the release before pad ids is the window's pad until one is paired there.
        secret = settings.survey_token_secret.get_secret_value()
        body = json.dumps({"c": CENTER, "w": "W10"}, separators=(",", ":")).encode()
        mac = hmac.new(pads._key(secret), body, hashlib.sha256).digest()
        legacy = {"X-Pad-Token": f"{base64url.encode(body)}.{base64url.encode(mac)}"}
        assert (await feedback.get("/pads/next", headers=legacy)).status_code == 200
        await paired("W10")
        assert (await feedback.get("/pads/next", headers=legacy)).status_code == 401


async def test_two_pads_paired_at_once_leave_one_at_the_window(settings: Settings) -> None:
    """Two codes for one window traded at the same moment (two supervisors, or a code typed
    on two tablets): each pairing ended the pads it could see, and neither saw the other's,
    not committed yet, so both tokens stayed good: two pads at a window, and the one to be
    retired kept taking its surveys. Pairings at a window now go one after the other, and
    the later ends the earlier."""
    settings = fast(settings)
    async with center(settings, Clock(START), KeptSender()) as (_intake, feedback):
        async def code() -> str:
            made = await feedback.post("/pads/pairings", json={"counter_id": "W11"})
            assert made.status_code == 201, made.text
            return str(made.json()["code"])

        first = await feedback.post("/pads/pair", json={"code": await code()})
        codes = [await code(), await code()]
        # The pad there before is held (a row lock, as a slow statement's): both pairings
        # are under way together, each past its own code, when it lets go.
        holder = await asyncpg.connect(settings.database_url)
        tx = holder.transaction()
        await tx.start()
        await holder.execute(f'SET search_path TO "{settings.schema_for("feedback")}"')
        await holder.execute("SELECT 1 FROM pad_pairings WHERE counter_id = 'W11'"
                             " AND pad_id IS NOT NULL FOR UPDATE")
        try:
            both = asyncio.gather(*(feedback.post("/pads/pair", json={"code": c})
                                    for c in codes))

            async def both_waiting() -> bool:
                # The chain behind the holder: a pairing waits on its row, the other on that
                # pairing's window lock (any other session waiting on a lock is not theirs).
                # pg_stat_activity is read once per transaction and kept to its end: the
                # holder's stays open, so each look first drops the last one's snapshot (or
                # a first look before the second pairing came would be all it ever saw).
                await holder.execute("SELECT pg_stat_clear_snapshot()")
                return await holder.fetchval(
                    "WITH first AS (SELECT pid FROM pg_stat_activity"
                    "  WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)))"
                    " SELECT count(*) FROM pg_stat_activity a WHERE a.pid IN (SELECT pid FROM"
                    " first) OR EXISTS (SELECT 1 FROM first f"
                    "  WHERE f.pid = ANY(pg_blocking_pids(a.pid)))") == 2

            await wait_until(both_waiting, timeout=60, what="both pairings under way")
        finally:
            await tx.rollback()
            await holder.close()
        pairs = await both
        assert [r.status_code for r in pairs] == [200, 200], [r.text for r in pairs]
        tokens = [first.json()["pad_token"], *(r.json()["pad_token"] for r in pairs)]
        answers = [(await feedback.get("/pads/next", headers={"X-Pad-Token": t})).status_code
                   for t in tokens]
        assert answers[0] == 401 and sorted(answers[1:]) == [200, 401], answers
