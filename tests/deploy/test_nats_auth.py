"""NATS as shipped admits sixstep's own users only: a real nats-server started with the
authorization block of deploy/nats/nats.conf (one node: the cluster block left out), the three
services each signed in as its own user, a case flowing through them; an anonymous client
refused; feedback's user unable to forge intake's events or to purge or delete the log, nor to
bring a signed-out token back by writing the tokens bucket; the operators' user running
``sixstep ops status`` and ``sixstep dlq list``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
import pytest_asyncio
import yaml
from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig, RePublish, StorageType, SubjectTransform
from nats.js.errors import KeyNotFoundError, NotFoundError
from pydantic import SecretStr
from structlog.testing import capture_logs

from shared.analytics.replay import Replay
from shared.bus.jetstream import connect, ensure_streams_when_ready, stream_config
from shared.bus.revocations import (
    RevocationsUnread,
    bucket_name,
    bucket_stream_config,
    ensure_bucket,
    keep_s,
    load_and_watch,
    remake_bucket,
    revoke,
)
from shared.kernel.tasks import cancel_and_wait
from shared.security.revocations import RevokedTokens
from shared.security.tokens import LEEWAY_S, issue_token
from shared.settings import Settings
from tests.cli.system import sixstep
from tests.pages.center import resolved_case, running_center
from tests.support import wait_until
from tools.devservers import NatsServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
USERS = ("intake", "followup", "feedback", "ops")
STREAM, PREFIX = "SIXSTEP", "sixstep"


def authorization_block(conf: str) -> str:
    """The ``authorization { ... }`` block of a nats.conf, braces balanced."""
    start = conf.index("\nauthorization {") + 1
    depth = 0
    for i, char in enumerate(conf[start:], start):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "}" and depth == 0:
            return conf[start:i + 1]
    raise AssertionError("the authorization block is not closed")


def test_compose_and_kubernetes_ship_the_same_users_for_the_shipped_stream_and_subjects() -> None:
    shipped = authorization_block((DEPLOY / "nats" / "nats.conf").read_text())
    config_map = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "nats.yaml").read_text())
                      if d and d["kind"] == "ConfigMap")
    assert authorization_block("\n" + config_map["data"]["nats.conf"]) == shipped
    config = yaml.safe_load_all((DEPLOY / "k8s" / "config.yaml").read_text())
    data = next(d for d in config if d["kind"] == "ConfigMap")["data"]
    assert (data["STREAM_NAME"], data["SUBJECT_PREFIX"]) == (STREAM, PREFIX)
    assert Settings().stream_name == STREAM and Settings().subject_prefix == PREFIX
    assert "password" in shipped and not re.search(r"password:\s*[^$\s]", shipped), \
        "every password comes from the environment"


class _AuthorizedNats(NatsServer):
    """The pinned nats-server with the shipped authorization block (passwords given)."""

    def __init__(self, data_dir: Path, passwords: dict[str, str]) -> None:
        super().__init__(data_dir)
        self.conf = data_dir.parent / "auth.conf"
        given = "".join(f'NATS_{user.upper()}_PASSWORD: "{pw}"\n'
                        for user, pw in passwords.items())
        self.conf.write_text(given + authorization_block(
            (DEPLOY / "nats" / "nats.conf").read_text()) + "\n")

    def args(self) -> list[str]:
        return [*super().args(), "-c", str(self.conf)]


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    return {user: secrets.token_hex(16) for user in USERS}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, passwords: dict[str, str]
           ) -> Iterator[NatsServer]:
    nats_server = _AuthorizedNats(tmp_path_factory.mktemp("nats-auth") / "data", passwords)
    nats_server.start()
    try:
        yield nats_server
    finally:
        nats_server.stop()


def as_user(settings: Settings, server: NatsServer, passwords: dict[str, str],
            user: str) -> Settings:
    return settings.model_copy(update={
        "nats_url": server.url, "stream_name": STREAM, "subject_prefix": PREFIX,
        "nats_user": user, "nats_password": SecretStr(passwords[user])})


@pytest_asyncio.fixture
async def ops_js(settings: Settings, server: NatsServer, passwords: dict[str, str]
                 ) -> AsyncIterator[Any]:
    nc = await connect(as_user(settings, server, passwords, "ops"), "test-ops")
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


class _Refusals:
    """The permissions violations a user's attempts draw: the server drops the request (no
    answer) and tells the client."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.heard = asyncio.Event()

    async def error_cb(self, error: Exception) -> None:
        self.said.append(str(error))
        self.heard.set()

    async def refused(self, attempt: Callable[[], Awaitable[Any]]) -> None:
        self.heard.clear()
        with pytest.raises(NatsError):  # no answer: the server dropped the request
            await attempt()
        await asyncio.wait_for(self.heard.wait(), 10)
        assert "permissions violation" in self.said[-1].lower()


async def test_an_anonymous_client_is_refused(server: NatsServer) -> None:
    with pytest.raises(NatsError, match=r"(?i)authorization"):
        await nats.connect(server.url, allow_reconnect=False, connect_timeout=5,
                           max_reconnect_attempts=0)


async def test_feedback_cannot_forge_intake_events_nor_purge_or_delete_the_log(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    await ops_js.add_stream(name=STREAM, subjects=[f"{PREFIX}.>"])
    await ops_js.purge_stream(STREAM)
    refusals = _Refusals()
    nc = await connect(as_user(settings, server, passwords, "feedback"), "test-feedback",
                       error_cb=refusals.error_cb)
    js = nc.jetstream(timeout=2.0)
    try:
        # Its own events go in (so the refusals below are of what it asks, not of it).
        ack = await js.publish(f"{PREFIX}.feedback.SurveyAnswered.p1", b"{}")
        assert ack.stream == STREAM
        forged = f"{PREFIX}.intake.CaseResolved.p3"
        for attempt in (lambda: js.publish(forged, b"{}"),
                        lambda: js.purge_stream(STREAM),
                        lambda: js.delete_stream(STREAM),
                        lambda: js.delete_msg(STREAM, ack.seq)):
            await refusals.refused(attempt)
    finally:
        await nc.close()
    info = await ops_js.stream_info(STREAM, subjects_filter=f"{PREFIX}.>")
    assert info.state.messages == 1 and info.state.subjects == {
        f"{PREFIX}.feedback.SurveyAnswered.p1": 1}
    await ops_js.delete_stream(STREAM)  # the operators' user may; the next test starts anew


async def test_the_three_services_each_as_its_own_user_carry_a_case_and_ops_reads_the_log(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    with_users = as_user(settings, server, passwords, "ops").model_copy(
        update={"feedback_tick_s": 0.05})
    own = {svc: {"nats_user": svc, "nats_password": SecretStr(passwords[svc])}
           for svc in ("intake", "followup", "feedback")}
    async with running_center(with_users, own=own) as center:
        mine = center.own()
        intake = center.client("intake", mine.clerk(), "clerk", mine.center_id)
        case_id = await resolved_case(intake, mine.center_id, at=datetime.now(UTC))
        # Intake's relay published it, feedback's consumer applied it: the survey went out.
        await center.survey_for(case_id, timeout=30.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        subjects: dict[str, int] = {}
        while loop.time() < deadline:
            info = await ops_js.stream_info(STREAM, subjects_filter=f"{PREFIX}.>")
            subjects = info.state.subjects or {}
            if {s.split(".")[1] for s in subjects} >= {"intake", "followup", "feedback"}:
                break
            await asyncio.sleep(0.1)
        assert {s.split(".")[1] for s in subjects} >= {"intake", "followup", "feedback"}, \
            subjects
        env = {"NATS_URL": server.url, "NATS_USER": "ops", "NATS_PASSWORD": passwords["ops"],
               "STREAM_NAME": STREAM, "SUBJECT_PREFIX": PREFIX,
               "DATABASE_URL": settings.database_url, "SCHEMA_PREFIX": settings.schema_prefix,
               "SIXSTEP_INTAKE_URL": center.urls["intake"],
               "SIXSTEP_FOLLOWUP_URL": center.urls["followup"],
               "SIXSTEP_FEEDBACK_URL": center.urls["feedback"]}
        # The commands are processes of their own, waited for in a thread.
        status = await asyncio.to_thread(sixstep, ROOT, "ops", "status", env=env)
        assert status.code == 0, status.err
        assert passwords["ops"] not in status.out + status.err
        letters = await asyncio.to_thread(sixstep, ROOT, "dlq", "list", env=env)
        assert letters.code == 0, letters.err
        replay = await asyncio.to_thread(sixstep, ROOT, "replay", env=env)
        assert replay.code == 0, replay.err
        assert "CaseResolved" in replay.err and passwords["ops"] not in replay.out + replay.err
        await forged_letters_are_refused(with_users, server, passwords, ops_js, {
            **env, "SIXSTEP_TOKEN": issue_token(center.settings, "test-ops", "ops")})
        # A long replay's reader, a process of its own, signs in as its parent does.
        async with Replay(with_users, reader="process") as read:
            assert read.in_child
            types = [e.type for batch in [b async for b in read] for e in batch.events]
        assert "CaseResolved" in types
        # Anyone else is refused at once, in one line, the password it gave not repeated.
        wrong = secrets.token_hex(8)
        for who in ({"NATS_USER": "", "NATS_PASSWORD": ""},
                    {"NATS_USER": "", "NATS_PASSWORD": "",
                     "NATS_URL": server.url.replace("//", f"//ops:{wrong}@")}):
            refused = await asyncio.to_thread(sixstep, ROOT, "ops", "status", env={**env, **who})
            assert refused.code == 2, refused.err
            assert "refused the sign-in" in refused.err and "Traceback" not in refused.err
            assert wrong not in refused.out + refused.err


async def forged_letters_are_refused(settings: Settings, server: NatsServer,
                                     passwords: dict[str, str], ops_js: Any,
                                     env: dict[str, str]) -> None:
    """A compromised feedback writes a dead letter for followup's consumer (redteam125): on
    followup's dead-letter subject (or the older one) NATS refuses it; on its own, a copy of
    the log's ``CaseResolved`` under followup's consumer, it is stored, listed as not the log's
    event, and the operator's replay refuses it (exit 1) and keeps it. Until dlq59 the older
    subject took it and the replay applied the letter's bytes through followup's handler."""
    subjects = (await ops_js.stream_info(STREAM, subjects_filter=f"{PREFIX}.>")).state.subjects
    resolved = await ops_js.get_last_msg(
        STREAM, next(s for s in subjects if s.startswith(f"{PREFIX}.intake.CaseResolved.")))
    forged = {**json.loads(resolved.data), "center_id": "SH-XH-TIANPING"}
    letter = {"Sixstep-Consumer": "followup-rules", "Sixstep-Reason": "forged",
              "Sixstep-Subject": resolved.subject, "Sixstep-Stream-Seq": str(resolved.seq),
              "Sixstep-Delivered": "5"}
    nc = await connect(as_user(settings, server, passwords, "feedback"), "test-forger",
                       error_cb=_ignore)
    try:
        js = nc.jetstream(timeout=2.0)
        # followup's subject, and the one every consumer's letters had before dlq59
        for subject in (f"dlq.{PREFIX}.followup.followup-rules", f"dlq.{PREFIX}.followup-rules"):
            with pytest.raises(NatsError):  # no answer: the server dropped it
                await js.publish(subject, json.dumps(forged).encode(), headers=letter)
        await js.publish(f"dlq.{PREFIX}.feedback.feedback-intake", resolved.data,
                         headers={**letter, "Nats-Msg-Id": "forged-copy"})
    finally:
        await nc.close()
    async def listed() -> list[tuple[str, bool]]:
        letters = await asyncio.to_thread(sixstep, ROOT, "dlq", "list", "--json", env=env)
        assert letters.code == 0, letters.err
        said = [json.loads(line) for line in letters.out.splitlines() if line.startswith("{")]
        return [(x["consumer"], x["matches_log"]) for x in said if x["reason"] == "forged"]

    assert await listed() == [("followup-rules", False)]
    replay = await asyncio.to_thread(sixstep, ROOT, "dlq", "replay", "--consumer",
                                     "followup-rules", "--service", "followup", env=env)
    said = " ".join(replay.out.split())
    assert replay.code == 1 and "replayed 0" in said and "refused 1" in said, said + replay.err
    assert "another service's user wrote it" in said, said
    assert await listed() == [("followup-rules", False)], "kept, for the operator to drop"


def test_a_service_whose_password_nats_refuses_stops_at_once_saying_so(
        settings: Settings, server: NatsServer) -> None:
    """Not nats-py's retries for ever, a pod never ready and no reason given: exit 2, one line,
    the password not in it."""
    wrong = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(
        ("SURVEY_", "AUTH_", "VAULT_", "ENVIRONMENT", "NATS_"))}
    env.update({
        "ENVIRONMENT": "production", "LOG_JSON": "false", "NATS_URL": server.url,
        "NATS_USER": "feedback", "NATS_PASSWORD": wrong, "STREAM_NAME": STREAM,
        "SUBJECT_PREFIX": PREFIX, "DATABASE_URL": settings.database_url,
        "SCHEMA_PREFIX": settings.schema_prefix, "FEEDBACK_PORT": str(free_port()),
        "AUTH_KEYS": f'["{secrets.token_hex(20)}"]', "VAULT_MASTER_KEY": secrets.token_hex(20),
        "VAULT_LOOKUP_KEY": secrets.token_hex(20), "SURVEY_TOKEN_SECRET": secrets.token_hex(20)})
    done = subprocess.run([sys.executable, "-m", "services.feedback.main"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "refusing to start" in done.stderr and "refused the sign-in" in done.stderr
    assert wrong not in done.stdout + done.stderr and "Traceback" not in done.stderr


async def test_feedback_cannot_reconfigure_the_log_nor_make_a_stream_that_writes_into_it(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    """The side doors to the same forgery and purge (redteam125): a stream update that stores
    feedback's own subject as intake's (subject_transform), a stream of its own republishing
    what it takes into intake's subjects, and an update letting feedback's own publish roll
    the whole log up (allow_rollup_hdrs, then ``Nats-Rollup: all``: a purge without the purge
    API)."""
    with contextlib.suppress(NotFoundError):  # the services' test leaves its log
        await ops_js.delete_stream(STREAM)
    await ops_js.add_stream(name=STREAM, subjects=[f"{PREFIX}.>"])
    nc = await connect(as_user(settings, server, passwords, "feedback"), "test-feedback",
                       error_cb=_ignore)
    js = nc.jetstream(timeout=2.0)
    forged = f"{PREFIX}.intake.CaseResolved.p3"
    try:
        kept = await js.publish(f"{PREFIX}.feedback.SurveyAnswered.p1", b"{}")
        assert kept.stream == STREAM
        shipped = (await js.stream_info(STREAM)).config
        with contextlib.suppress(NatsError):
            await js.update_stream(dataclasses.replace(shipped, subject_transform=SubjectTransform(
                src=f"{PREFIX}.feedback.Forged.>", dest=f"{PREFIX}.intake.CaseResolved.>")))
        with contextlib.suppress(NatsError):
            await js.add_stream(name="FEEDBACK_SIDE", subjects=[f"dlq.{PREFIX}.side"],
                                republish=RePublish(src=f"dlq.{PREFIX}.side", dest=forged))
        for subject in (f"{PREFIX}.feedback.Forged.p3", f"dlq.{PREFIX}.side"):
            with contextlib.suppress(NatsError):
                await js.publish(subject, b"{}")
        await nc.flush()  # a barrier: the server has handled all feedback sent before
        info = await ops_js.stream_info(STREAM, subjects_filter=f"{PREFIX}.>")
        assert forged not in (info.state.subjects or {}), info.state.subjects
        assert "FEEDBACK_SIDE" not in [s.config.name for s in await ops_js.streams_info()]
        rollup = dataclasses.replace(shipped, allow_rollup_hdrs=True)
        for change in (js.update_stream, js.add_stream):  # a create of the log it may ask
            with contextlib.suppress(NatsError):
                await change(rollup)
        with contextlib.suppress(NatsError):
            await js.publish(f"{PREFIX}.feedback.SurveyAnswered.p2", b"{}",
                             headers={"Nats-Rollup": "all"})
        await nc.flush()
    finally:
        await nc.close()
    info = await ops_js.stream_info(STREAM, subjects_filter=f"{PREFIX}.>")
    assert info.state.first_seq == kept.seq, "feedback's own publish rolled the log up"
    assert info.config.subject_transform is None and not info.config.allow_rollup_hdrs
    await ops_js.delete_stream(STREAM)


async def _ignore(error: Exception) -> None:
    """The permissions violations the attempts draw (the test reads their effect instead)."""


async def test_a_service_starting_on_a_log_that_differs_leaves_it_to_ops_apply(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    """A service's user may not update a stream (above): its start finds the log made with
    another age limit, says so and goes on; it neither waits for an answer the server will
    never send nor changes the log. ``sixstep ops apply`` (the operators' user) aligns it."""
    with contextlib.suppress(NotFoundError):
        await ops_js.delete_stream(STREAM)
    feedback = as_user(settings, server, passwords, "feedback")
    aged = dataclasses.replace(stream_config(feedback), max_age=3600.0)
    await ops_js.add_stream(aged)
    nc = await connect(feedback, "test-feedback")
    try:
        outcome = await ensure_streams_when_ready(nc.jetstream(timeout=2.0), feedback,
                                                  within_s=1, align=False)
    finally:
        await nc.close()
    assert outcome[STREAM] == "differs: max_age", outcome
    assert (await ops_js.stream_info(STREAM)).config.max_age == 3600.0
    await ops_js.delete_stream(STREAM)


class _Clock:
    """The watch's clock: the real one, until a test moves it on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


async def _read_bucket(settings: Settings, clock: _Clock) -> tuple[RevokedTokens, Any]:
    """A replica's start: the bucket read whole by the real watch (``load_and_watch``)."""
    nc = await connect(settings, f"test-{settings.nats_user}-watch")
    revoked = RevokedTokens(now=clock)
    watch = await load_and_watch(nc, settings, revoked)
    return revoked, (nc, watch)


async def _stop(handle: Any) -> None:
    nc, watch = handle
    await cancel_and_wait(watch)
    await nc.close()


async def _sees_a_sign_out_after(running: RevokedTokens, settings: Settings, *,
                                 within_s: float) -> None:
    """Intake signs a token out now: the running replica's watch refuses it (it sees on)."""
    nc = await connect(settings, "test-intake")
    try:
        await revoke(nc, settings, "after", time.time() + 3600)
    finally:
        await nc.close()

    async def seen() -> bool:
        return running.revoked("after")

    await wait_until(seen, timeout=within_s, what="the watch saw a sign-out made after")


async def test_feedback_cannot_bring_a_signed_out_token_back_by_writing_the_bucket(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    """Any service takes a sign-out, so any may write the bucket: feedback's user deletes one
    signed-out token's key, puts ``{"exp": 0}`` over another, purges a third and puts over a
    fourth with ``Nats-TTL: 1s``. Each token stays refused: by intake's running replica, and
    by follow-up's replica started after (it read a delete marker, an exp 0, an empty key),
    until the sign-out's own time plus the bucket's keep, whatever the value says."""
    intake = as_user(settings, server, passwords, "intake")
    with contextlib.suppress(NotFoundError):
        await ops_js.delete_stream(f"KV_{bucket_name(intake)}")
    clock = _Clock()
    signed_out_at = time.time()
    tokens = ("deleted", "exp0", "purged", "ttl")
    nc = await connect(intake, "test-intake")
    try:
        for token_id in tokens:  # intake took four sign-outs, tokens of an hour
            await revoke(nc, intake, token_id, signed_out_at + 3600)
    finally:
        await nc.close()
    running, running_handle = await _read_bucket(intake, clock)
    try:
        feedback = as_user(settings, server, passwords, "feedback")
        fnc = await connect(feedback, "test-feedback", error_cb=_ignore)
        try:
            js = fnc.jetstream(timeout=2.0)
            kv = await js.key_value(bucket_name(feedback))
            await kv.delete("deleted")
            await kv.put("exp0", b'{"exp": 0}')
            with contextlib.suppress(NatsError):
                await kv.purge("purged")
            with contextlib.suppress(NatsError):
                await js.publish(f"$KV.{bucket_name(feedback)}.ttl", b'{"exp": 1e12}',
                                 headers={"Nats-TTL": "1s"})
            await fnc.flush()

            async def ttl_gone() -> bool:  # if the server took the TTL, let it end the key
                try:
                    await kv.get("ttl")
                except KeyNotFoundError:
                    return True
                return False

            ttl = (await ops_js.stream_info(f"KV_{bucket_name(feedback)}")).config
            if ttl.allow_msg_ttl:
                await wait_until(ttl_gone, what="the TTL'd key ended")
        finally:
            await fnc.close()
        later, later_handle = await _read_bucket(
            as_user(settings, server, passwords, "followup"), clock)
        try:
            # intake's running replica has seen every write (they came before the later read)
            for replica in (running, later):
                assert [t for t in tokens if not replica.revoked(t)] == []
            clock.ahead = keep_s(intake) - 60.0  # the token's exp, 1 h, is long past
            for replica in (running, later):
                assert [t for t in tokens if not replica.revoked(t)] == []
            clock.ahead = time.time() - signed_out_at + keep_s(intake) + LEEWAY_S + 60.0
            assert len(later) == 0 and len(running) == 0  # then forgotten: memory is bounded
        finally:
            await _stop(later_handle)
    finally:
        await _stop(running_handle)
    config = (await ops_js.stream_info(f"KV_{bucket_name(intake)}")).config
    assert not config.allow_rollup_hdrs and not config.allow_msg_ttl
    assert config.deny_delete and config.deny_purge
    await ops_js.delete_stream(f"KV_{bucket_name(intake)}")


async def test_feedback_cannot_blind_another_replicas_watch_of_the_bucket(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    """Every replica watches the bucket through a consumer of its stream, listed to anyone:
    feedback's user narrows the filter of intake's watch to a key no one signs out, pauses it
    until 2099 and deletes it (redteam129: narrowed or paused, the watch never saw a sign-out
    again; deleted again and again, each one 20 s late). Each is refused; intake's watch is
    as it was and refuses a token signed out after."""
    intake = as_user(settings, server, passwords, "intake")
    stream = f"KV_{bucket_name(intake)}"
    with contextlib.suppress(NotFoundError):
        await ops_js.delete_stream(stream)
    running, running_handle = await _read_bucket(intake, _Clock())
    try:
        (watch,) = await ops_js.consumers_info(stream)
        refusals = _Refusals()
        fnc = await connect(as_user(settings, server, passwords, "feedback"), "test-feedback",
                            error_cb=refusals.error_cb)
        try:
            narrowed = dataclasses.replace(
                watch.config, filter_subject=f"$KV.{bucket_name(intake)}.no-one")
            api = "$JS.API.CONSUMER"
            for subject, body in (
                    (f"{api}.CREATE.{stream}.{watch.name}",
                     {"stream_name": stream, "config": narrowed.as_dict()}),
                    (f"{api}.PAUSE.{stream}.{watch.name}",
                     {"pause_until": "2099-01-01T00:00:00Z"}),
                    (f"{api}.DELETE.{stream}.{watch.name}", {})):
                await refusals.refused(
                    lambda s=subject, b=body: fnc.request(s, orjson.dumps(b), timeout=2.0))
        finally:
            await fnc.close()
        (after,) = await ops_js.consumers_info(stream)
        assert after.name == watch.name
        assert after.config.filter_subject == watch.config.filter_subject
        assert not after.paused
        await _sees_a_sign_out_after(running, intake, within_s=15.0)
    finally:
        await _stop(running_handle)
    await ops_js.delete_stream(stream)


async def test_feedback_cannot_fill_the_store_through_the_bucket(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    """A sign-out's message is some 30 bytes; feedback's user put 500 values of 1 MB in 4 s
    (redteam129): the JetStream store the event log shares filled at that rate, and every
    replica's start read them all. The bucket takes 1 kB a message at most; a bucket made
    without the cap is brought in line by ``ops apply``."""
    intake = as_user(settings, server, passwords, "intake")
    stream = f"KV_{bucket_name(intake)}"
    with contextlib.suppress(NotFoundError):
        await ops_js.delete_stream(stream)
    await ops_js.add_stream(dataclasses.replace(bucket_stream_config(intake), max_msg_size=-1))
    assert await ensure_bucket(ops_js, intake) == "updated: max_msg_size"
    fnc = await connect(as_user(settings, server, passwords, "feedback"), "test-feedback")
    try:
        js = fnc.jetstream(timeout=2.0)
        with pytest.raises(NatsError, match=r"(?i)size"):
            await js.publish(f"$KV.{bucket_name(intake)}.big", b"x" * 512 * 1024)
        await revoke(fnc, intake, "signed-out", time.time() + 3600)  # a sign-out goes in
    finally:
        await fnc.close()
    state = (await ops_js.stream_info(stream)).state
    assert state.messages == 1 and state.bytes < 1024
    await ops_js.delete_stream(stream)


async def test_ops_apply_makes_a_bucket_made_the_old_way_again_keeping_its_revocations(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    """A bucket nats-py's ``create_key_value`` made (before stop 56: roll-ups and per-message
    TTLs allowed, purges too) is said by a service's start and left to ``sixstep ops apply``,
    which makes its stream again (a TTL cannot be turned off by an update) with its entries:
    a token signed out before is refused by a replica started after, and feedback's
    ``Nats-TTL`` put is refused from then on."""
    intake = as_user(settings, server, passwords, "intake")
    bucket = bucket_name(intake)
    with contextlib.suppress(NotFoundError):
        await ops_js.delete_stream(f"KV_{bucket}")
    old = await ops_js.create_key_value(config=KeyValueConfig(
        bucket=bucket, history=1, ttl=keep_s(intake), storage=StorageType.FILE))
    for _ in range(5):  # a key written again: the stream's numbers run past its entries
        await old.put("before", b'{"exp": 1e10}')
    await old.delete("tampered")  # a delete marker is a revocation too
    with capture_logs() as logs:
        running, running_handle = await _read_bucket(
            as_user(settings, server, passwords, "feedback"), _Clock())
    try:
        (said,) = [line for line in logs if line["event"] == "bus.stream_differs"]
        assert set(said["fields"]) >= {"allow_rollup_hdrs", "allow_msg_ttl", "deny_purge"}
        assert running.bucket_differs == said["fields"]  # /ready's warnings say it too
        assert running.revoked("before") and running.revoked("tampered")
        outcome = await ensure_bucket(ops_js, intake)
        assert outcome.startswith("made again: ") and "(2 entries)" in outcome, outcome
        assert await ensure_bucket(ops_js, intake) == "unchanged"
        later, handle = await _read_bucket(as_user(settings, server, passwords, "followup"),
                                           _Clock())
        await _stop(handle)
        assert later.revoked("before") and later.revoked("tampered")
        # the replica that watched through it sees a sign-out made after (its watch, made
        # again by nats-py on the new stream, goes on from the old one's next number)
        await _sees_a_sign_out_after(running, intake, within_s=60.0)
    finally:
        await _stop(running_handle)
    fnc = await connect(as_user(settings, server, passwords, "feedback"), "test-feedback")
    try:
        with pytest.raises(NatsError, match="TTL"):
            await fnc.jetstream(timeout=2.0).publish(f"$KV.{bucket}.before", b"{}",
                                                     headers={"Nats-TTL": "1s"})
    finally:
        await fnc.close()
    await ops_js.delete_stream(f"KV_{bucket}")


class _CutShort(BaseException):
    """The ops-apply job's pod killed (no ``except Exception`` catches it)."""


async def test_ops_apply_cut_short_after_deleting_the_old_bucket_loses_no_revocation(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    """``sixstep ops apply`` makes an old bucket again and its pod is killed just after it
    deleted the old stream (redteam129: the entries were only in its memory; intake's next
    start made the bucket empty, and the next ops apply could not make it, the name taken).
    Intake's start now refuses (exit 2: it would let the tokens in), makes no bucket; the
    next ops apply puts every entry back, and intake's start refuses each token; a replica
    starting while a run of it is under way waits for the whole bucket."""
    intake = as_user(settings, server, passwords, "intake").model_copy(
        update={"revocations_read_timeout_s": 2.0})
    bucket = bucket_name(intake)
    for stream in (f"KV_{bucket}", f"KV_{remake_bucket(intake)}"):
        with contextlib.suppress(NotFoundError):
            await ops_js.delete_stream(stream)
    old = await ops_js.create_key_value(config=KeyValueConfig(
        bucket=bucket, history=1, ttl=keep_s(intake), storage=StorageType.FILE))
    tokens = [f"signed-out-{i}" for i in range(300)]
    for token_id in tokens:
        await old.put(token_id, b'{"exp": 1e10}')
    delete_stream = ops_js.delete_stream

    async def delete_then_killed(name: str) -> bool:
        await delete_stream(name)
        raise _CutShort(name)

    ops_js.delete_stream = delete_then_killed
    try:
        with pytest.raises(_CutShort, match=f"KV_{bucket}"):
            await ensure_bucket(ops_js, intake)
    finally:
        ops_js.delete_stream = delete_stream
    with pytest.raises(RevocationsUnread, match="being made again"):
        await _read_bucket(intake, _Clock())
    with pytest.raises(NotFoundError):  # not made empty by that start
        await ops_js.stream_info(f"KV_{bucket}")

    starting: list[asyncio.Task[Any]] = []

    async def delete_then_a_start(name: str) -> bool:
        done = await delete_stream(name)
        if name == f"KV_{bucket}":  # the old bucket's stream gone: a replica starts
            starting.append(asyncio.create_task(_read_bucket(
                intake.model_copy(update={"revocations_read_timeout_s": 60.0}), _Clock())))
        return done

    outcome = await ensure_bucket(ops_js, intake)  # the next run
    assert outcome == "made again: missing (300 entries)", outcome
    later, handle = await _read_bucket(intake, _Clock())
    await _stop(handle)
    assert [t for t in tokens if not later.revoked(t)] == []
    # a run under way while a replica starts: the start waits for the whole bucket
    await ops_js.delete_stream(f"KV_{bucket}")
    old = await ops_js.create_key_value(config=KeyValueConfig(
        bucket=bucket, history=1, ttl=keep_s(intake), storage=StorageType.FILE))
    for token_id in tokens:
        await old.put(token_id, b'{"exp": 1e10}')
    ops_js.delete_stream = delete_then_a_start
    try:
        assert (await ensure_bucket(ops_js, intake)).endswith("(300 entries)")
    finally:
        ops_js.delete_stream = delete_stream
    (start,) = starting
    during, handle = await start
    await _stop(handle)
    assert [t for t in tokens if not during.revoked(t)] == []
    await ops_js.delete_stream(f"KV_{bucket}")
