"""Apps retry and some expect tokens: one case per intended request, tokens that resolve."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from services.intake.main import create_app
from services.intake.projections import CONSUMER, CaseProjection
from shared.settings import Settings
from tests.open311.support import KEY, OTHER_KEY, both, spec_error, with_keys
from tests.support import running, stream_envelopes, wait_until

FORM = {"api_key": KEY, "service_code": "SA-HARDSHIP-SUBSIDY",
        "description": "老伴住院了，家里生活困难，想申请补助"}


async def resolved(client: httpx.AsyncClient, token: str) -> str:
    """Poll GET tokens/{token} as a batch-minded app does, until it names the request."""

    async def named() -> bool:
        r = await client.get(f"/open311/v2/tokens/{token}.json")
        assert r.status_code == 200, r.text
        [answer] = r.json()
        # GET service_request_id from a token, Response: service_request_id, token.
        # Until the case is readable, the token is known and the id still empty.
        assert list(answer) == ["service_request_id", "token"] and answer["token"] == token
        return answer["service_request_id"] is not None

    await wait_until(named, what=f"token {token} to resolve")
    [answer] = await both(client, "GET", f"tokens/{token}", "service_requests")
    return answer["service_request_id"]


async def test_batch_mode_answers_with_tokens_and_retries_open_one_case(
        settings: Settings) -> None:
    batch = with_keys(settings, open311_request_type="batch")
    async with running(create_app(batch)) as client:
        listed = await both(client, "GET", "services", "services")
        assert {s["type"] for s in listed} == {"batch"}

        r = await client.post("/open311/v2/requests.json", data=FORM)
        assert r.status_code == 200, r.text
        [answer] = r.json()
        # "token ... This should not be returned if service_request_id is returned"
        assert list(answer) == ["token", "service_notice", "account_id"]
        case_id = await resolved(client, answer["token"])
        [request] = await both(client, "GET", f"requests/{case_id}", "service_requests",
                               params={"api_key": KEY})
        assert request["description"] == FORM["description"]

        # Three copies of one POST at once (a flaky network, an impatient app): one case.
        copies = await asyncio.gather(*[
            client.post("/open311/v2/requests.json", data=FORM | {"description": "又来了"})
            for _ in range(3)])
        assert [r.status_code for r in copies] == [200] * 3, [r.text for r in copies]
        ids = {await resolved(client, r.json()[0]["token"]) for r in copies}
        assert len(ids) == 1 and case_id not in ids

        # An app that sends Idempotency-Key gets exactly that: the same key is the same
        # request, sent again; with another description it is refused (400, nothing
        # recorded), not answered as the first with the new words dropped; a new key is a
        # new request even with the same body.
        key = f"app-{uuid.uuid4().hex}"
        first = await client.post("/open311/v2/requests.xml", data=FORM,
                                  headers={"Idempotency-Key": key})
        retried = await client.post("/open311/v2/requests.json", data=FORM,
                                    headers={"Idempotency-Key": key})
        again = await client.post("/open311/v2/requests.json", data=FORM | {"description": "改"},
                                  headers={"Idempotency-Key": key})
        assert again.status_code == 400, again.text
        assert "already used" in again.json()[0]["description"], again.text
        fresh = await client.post("/open311/v2/requests.json", data=FORM,
                                  headers={"Idempotency-Key": f"app-{uuid.uuid4().hex}"})
        keyed = await resolved(client, retried.json()[0]["token"])
        assert f"<token>{retried.json()[0]['token']}</token>" in first.text
        assert keyed not in (case_id, await resolved(client, fresh.json()[0]["token"]))

    async def settled() -> bool:
        return len([e for e in await stream_envelopes(settings)
                    if e.type == "CaseOpened"]) == 4
    await wait_until(settled, what="four cases on the stream")
    envelopes = await stream_envelopes(settings)
    opened = [e for e in envelopes if e.type == "CaseOpened"]
    heard = [e for e in envelopes if e.type == "RequestHeard"]
    assert len(opened) == 4 and len(heard) == 4, "each intended request once, heard once"
    by_case = {str(e.case_id): e.payload["words"] for e in heard}
    assert by_case[keyed] == FORM["description"], "a refused Idempotency-Key records nothing"


class _ReadThenApplied:
    """The app's pool, except that once ``armed``, a read of ``cases`` returns only after
    the consumer was let go (``gate``) and has applied the token's ``position``: the
    consumer's commit falls between that read and whatever the route reads next."""

    def __init__(self, pool: asyncpg.Pool, gate: asyncio.Event, position: int) -> None:
        self._pool, self._gate, self._position = pool, gate, position
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def fetchrow(self, query: str, *args: Any, **kw: Any) -> Any:
        row = await self._pool.fetchrow(query, *args, **kw)
        if self.armed and "cases" in query.split():
            self.armed = False
            self._gate.set()

            async def applied() -> bool:
                got = await self._pool.fetchval(
                    "SELECT position FROM consumer_progress WHERE consumer = $1"
                    " AND service = 'intake'", CONSUMER)
                return got is not None and got >= self._position
            await wait_until(applied, what="the consumer to apply the token's case")
        return row


async def test_a_token_read_while_its_case_is_applied_is_pending_not_unknown(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The route tells "not yet in the read model" from "not there" by the consumer's
    progress: a row read before the consumer's commit and a progress read after it would
    call a case that exists unknown (a 404 an app takes as final)."""
    gate = asyncio.Event()
    apply = CaseProjection.apply

    async def held(self: CaseProjection, conn: Any, events: Any, prepared: Any = None) -> None:
        await gate.wait()
        await apply(self, conn, events, prepared)

    monkeypatch.setattr(CaseProjection, "apply", held)
    app = create_app(with_keys(settings, open311_request_type="batch"))
    async with running(app) as client:
        r = await client.post("/open311/v2/requests.json", data=FORM)
        assert r.status_code == 200, r.text
        token = r.json()[0]["token"]
        position = int(token.split(".")[2])
        pool = app.state.pool  # the routes' (the workers hold their own reference)
        proxy = _ReadThenApplied(pool, gate, position)
        proxy.armed, app.state.pool = True, proxy
        try:
            r = await client.get(f"/open311/v2/tokens/{token}.json")
        finally:
            app.state.pool = pool
        assert gate.is_set(), "the route read the case"
        assert r.status_code == 200, r.text
        [answer] = r.json()
        assert answer["token"] == token
        case_id = await resolved(client, token)
        assert uuid.UUID(case_id).hex == token.split(".")[0]


async def test_a_token_whose_case_is_being_retried_is_pending_not_unknown(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumer's progress is the last position it applied: while one case's opening
    fails and is retried (a lock timeout), the later cases go on and the progress passes it.
    That case is behind, not unknown: its token is pending, then resolves."""
    failing = asyncio.Event()
    failing.set()
    first: set[uuid.UUID] = set()  # the first case opened on the stream: the first POST's
    apply = CaseProjection.apply

    async def flaky(self: CaseProjection, conn: Any, events: Any, prepared: Any = None) -> None:
        opened = [e.case_id for e in events if e.type == "CaseOpened"]
        if not first and opened:
            first.add(opened[0])
        if failing.is_set() and any(e.case_id in first for e in events):
            raise RuntimeError("a lock timeout")
        await apply(self, conn, events, prepared)

    monkeypatch.setattr(CaseProjection, "apply", flaky)
    app = create_app(with_keys(settings, open311_request_type="batch",
                               consumer_max_deliver=1000))
    async with running(app) as client:
        r = await client.post("/open311/v2/requests.json", data=FORM)
        token = r.json()[0]["token"]
        r = await client.post("/open311/v2/requests.json", data=FORM | {"description": "二"})
        later = int(r.json()[0]["token"].split(".")[2])
        assert later > int(token.split(".")[2])

        async def passed() -> bool:  # the later case applied: the progress is past the first
            got = await app.state.pool.fetchval(
                "SELECT position FROM consumer_progress WHERE consumer = $1", CONSUMER)
            return got is not None and got >= later
        await wait_until(passed, what="the later case applied")
        r = await client.get(f"/open311/v2/tokens/{token}.json")
        assert r.status_code == 200, r.text
        assert r.json()[0]["service_request_id"] is None
        failing.clear()
        assert first == {uuid.UUID(await resolved(client, token))}


async def test_a_token_confirms_a_case_only_to_the_app_that_posted_it(
        settings: Settings) -> None:
    batch = with_keys(settings, open311_request_type="batch")
    async with running(create_app(batch)) as client:
        r = await client.post("/open311/v2/requests.json", data=FORM)
        token = r.json()[0]["token"]
        case_id = await resolved(client, token)  # its own token: no key needed
        # A token made up from a case id (another center's case, say) confirms nothing:
        # without a key it is not found, with another center's key it is pending, as one
        # made up from an id nobody has (position 0: a copy's, not confirmed yet).
        forged = f"{uuid.UUID(case_id).hex}.1.0"
        assert await spec_error(client, "GET", f"tokens/{forged}", 404)
        [pending] = await both(client, "GET", f"tokens/{forged}", "service_requests",
                               params={"api_key": OTHER_KEY})
        assert pending["service_request_id"] is None
        assert await spec_error(client, "GET", f"tokens/{token}", 404,
                                params={"api_key": OTHER_KEY}), "nor to another center's key"
        [own] = await both(client, "GET", f"tokens/{forged}", "service_requests",
                           params={"api_key": KEY})
        assert own["service_request_id"] == case_id, "the key's own center reads its cases"


async def test_another_centers_key_cannot_tell_our_cases_from_none_by_a_made_up_token(
        settings: Settings) -> None:
    """With an api_key the token's MAC is not asked for: the key's app makes up tokens from
    case ids it guesses. Our case answered 404 to another center's key, where a case nobody
    has answered "pending" (no service_request_id yet): which guessed ids are cases here.
    Now ours is answered as none, pending alike."""
    async with running(create_app(with_keys(settings, open311_request_type="batch"))) as client:
        r = await client.post("/open311/v2/requests.json", data=FORM)
        case_id = await resolved(client, r.json()[0]["token"])
        for position in (0, 10**9):
            ours = f"{uuid.UUID(case_id).hex}.1.{position}"
            nobodys = f"{uuid.uuid4().hex}.1.{position}"
            answers = [await client.get(f"/open311/v2/tokens/{t}.json",
                                        params={"api_key": OTHER_KEY}) for t in (ours, nobodys)]
            assert [a.status_code for a in answers] == [200, 200], answers[0].text
            assert [a.json()[0]["service_request_id"] for a in answers] == [None, None]


async def test_one_idempotency_key_is_one_request_with_or_without_a_description(
        settings: Settings) -> None:
    """An app's key sent first without a description and then with one (or the other way
    round) is two requests under one key: refused (400, nothing recorded), as another
    description under the key is, not the second one's words added to the first case or
    its missing words answered as the first case."""
    bare = {k: v for k, v in FORM.items() if k != "description"}
    async with running(create_app(with_keys(settings))) as client:
        for first, second in ((bare, FORM), (FORM, bare)):
            key = f"app-{uuid.uuid4().hex}"
            r = await client.post("/open311/v2/requests.json", data=first,
                                  headers={"Idempotency-Key": key})
            assert r.status_code in (200, 201), r.text
            again = await client.post("/open311/v2/requests.json", data=first,
                                      headers={"Idempotency-Key": key})
            assert again.status_code in (200, 201), again.text
            assert again.json() == r.json(), "the same request again answers as the first"
            other = await client.post("/open311/v2/requests.json", data=second,
                                      headers={"Idempotency-Key": key})
            assert other.status_code == 400, other.text
            assert "already used" in other.json()[0]["description"], other.text

    async def settled() -> bool:  # the last write (the second case heard) is on the stream
        types = [e.type for e in await stream_envelopes(settings)]
        return types.count("CaseOpened") == 2 and "RequestHeard" in types
    await wait_until(settled, what="two cases on the stream, the second heard")
    envelopes = await stream_envelopes(settings)
    assert [e.payload["words"] for e in envelopes if e.type == "RequestHeard"] == [
        FORM["description"]], "only the request that had words was heard"
