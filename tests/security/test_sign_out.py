"""A clerk's sign-out ends her token on the server: every service refuses it from then on
(``POST /auth/sign-out``, ``shared.bus.revocations``), exactly as an expired one, until the
token's own expiry; a service started later refuses it too. A copy of the browser's profile
(tests/pages/test_tablet_profile.py) then holds a dead token."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from nats.js.client import JetStreamContext

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.bus.jetstream import connect
from shared.bus.revocations import load_and_watch, revoke
from shared.kernel.tasks import cancel_and_wait
from shared.security.principals import Role
from shared.security.revocations import RevokedTokens, revocation_key
from shared.security.tokens import LEEWAY_S
from shared.settings import Settings
from tests.support import running, token_for, wait_until
from tools.devservers import NatsServer


def _jti(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


async def _seen(client: httpx.AsyncClient, jti: str) -> bool:
    """The barrier: the service's set of revoked tokens holds this one."""
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    return bool(runtime.revoked.revoked(jti))


async def test_a_token_signed_out_on_intake_is_refused_by_every_service(settings: Settings
                                                                       ) -> None:
    clerk = token_for(settings, Role.CLERK, sub="clerk-017")
    other = token_for(settings, Role.CLERK, sub="clerk-018")
    expired = token_for(settings, Role.CLERK, sub="clerk-017", ttl=timedelta(minutes=-5))
    mine = {"Authorization": f"Bearer {clerk}"}
    async with running(intake_app(settings), token=clerk) as intake, \
            running(followup_app(settings), token=clerk) as followup, \
            running(feedback_app(settings), token=clerk) as feedback:
        for client in (intake, followup, feedback):
            assert (await client.get("/auth/me")).status_code == 200
        refused_expired = await followup.get(
            "/auth/me", headers={"Authorization": f"Bearer {expired}"})
        assert refused_expired.status_code == 401

        out = await intake.post("/auth/sign-out")
        assert out.status_code == 204, out.text
        assert (await intake.post("/auth/sign-out")).status_code == 204  # idempotent
        # only POST: another method is the route's 405, as for a live token (it was a 204)
        live = {"Authorization": f"Bearer {other}"}
        for method in ("GET", "DELETE", "PUT"):
            wrong = await intake.request(method, "/auth/sign-out", headers=mine)
            as_live = await intake.request(method, "/auth/sign-out", headers=live)
            assert wrong.status_code == as_live.status_code == 405, wrong.text
            assert wrong.json() == as_live.json()
            assert wrong.headers.get("allow") == as_live.headers.get("allow")

        for client in (followup, feedback):
            await wait_until(lambda c=client: _seen(c, _jti(clerk)))
        for client in (intake, followup, feedback):
            refused = await client.get("/auth/me", headers=mine)
            # the very answer an expired token gets: nothing tells a revoked one apart
            assert refused.status_code == 401
            assert refused.json() == refused_expired.json()
            assert refused.headers["www-authenticate"] == \
                refused_expired.headers["www-authenticate"]
            # another clerk's token is untouched
            assert (await client.get("/auth/me", headers={
                "Authorization": f"Bearer {other}"})).status_code == 200

    # A service started after the sign-out has read it before its first answer.
    async with running(followup_app(settings), token=clerk) as later:
        assert (await later.get("/auth/me")).status_code == 401
        ready = await later.get("/ready")
        assert ready.json()["checks"]["revoked_tokens"] == 1, ready.text


async def test_a_sign_out_the_bus_does_not_take_is_said(settings: Settings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """NATS away at sign-out: 503 ``auth_unavailable`` (the page forgets the token anyway and
    the token is refused at once by the replica that was asked)."""
    async def no_bus(*_: object, **__: object) -> None:
        raise ConnectionError("nats down")

    monkeypatch.setattr("shared.http.auth.revoke", no_bus)
    clerk = token_for(settings, Role.CLERK, sub="clerk-017")
    async with running(intake_app(settings), token=clerk) as intake:
        out = await intake.post("/auth/sign-out")
        assert out.status_code == 503
        assert out.json()["error"]["code"] == "auth_unavailable"
        assert (await intake.get("/auth/me")).status_code == 401
        # Asked again (Retry-After), the bus still away: 503 again, not the idempotent 204
        # that said the token was ended everywhere while only this replica refused it.
        assert (await intake.post("/auth/sign-out")).status_code == 503
        monkeypatch.undo()  # the bus back: the retry puts it there
        assert (await intake.post("/auth/sign-out")).status_code == 204
        await wait_until(lambda: _seen(intake, _jti(clerk)))
        assert (await intake.post("/auth/sign-out")).status_code == 204  # idempotent again


async def test_a_sign_out_just_after_a_nats_restart_is_seen_by_a_replica_that_watched_before(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A NATS server restarts under a replica: its watch of the bucket (an ordered consumer)
    died with the server, and nats-py made it again only once two idle heartbeats were missed
    (10-20 s; 19.9 s measured, stop 51 saw 16 s), while /ready said ready and a token signed
    out on another replica meanwhile was still let in. The watch is now made again as soon as
    the connection is back. nats-py's own heartbeat check is switched off here, so the old
    watch never sees the sign-out: only the new one made on the reconnect can."""
    async def no_heartbeat_check(self: object) -> None:
        return None

    monkeypatch.setattr(JetStreamContext._JSI, "activity_check", no_heartbeat_check)
    with NatsServer(tmp_path / "nats") as nats:
        own = settings.model_copy(update={"nats_url": nats.url})
        replica = await connect(own, "sixstep-followup")
        revoked = RevokedTokens()
        watch = await load_and_watch(replica, own, revoked)
        try:
            await asyncio.to_thread(nats.stop)
            await asyncio.to_thread(nats.start)
            signer = await connect(own, "sixstep-intake")  # the replica a clerk signed out on
            try:
                await revoke(signer, own, "jti-after-the-restart", time.time() + 3600)
            finally:
                await signer.close()

            async def seen() -> bool:
                return revoked.revoked(revocation_key("jti-after-the-restart"))
            await wait_until(seen, what="the sign-out seen by the replica that watched before")
        finally:
            await cancel_and_wait(watch)
            await replica.close()


def test_a_revocation_ends_at_the_tokens_expiry() -> None:
    now = [1_000.0]
    revoked = RevokedTokens(now=lambda: now[0])
    revoked.add("a1b2", 1_060.0)
    revoked.add("gone", 1_000.0 - LEEWAY_S)  # refused as expired already: nothing to keep
    assert revoked.revoked("a1b2") and not revoked.revoked("gone")
    assert len(revoked) == 1
    now[0] = 1_060.0 + LEEWAY_S - 1  # still verified (the leeway): still revoked
    assert revoked.revoked("a1b2")
    now[0] = 1_060.0 + LEEWAY_S
    assert not revoked.revoked("a1b2")
    assert len(revoked) == 0
