"""A rating pad's pairing code can only be tried a few times a minute: the 10^8 codes cannot be
swept from one address, nor from many."""

from __future__ import annotations

import time

from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_feedback_loop import START, center, fast


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
