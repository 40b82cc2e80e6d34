"""NATS as shipped admits sixstep's own users only: a real nats-server started with the
authorization block of deploy/nats/nats.conf (one node: the cluster block left out), the three
services each signed in as its own user, a case flowing through them; an anonymous client
refused; feedback's user unable to forge intake's events or to purge or delete the log; the
operators' user running ``sixstep ops status`` and ``sixstep dlq list``."""

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
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
import yaml
from nats.errors import Error as NatsError
from nats.js.api import RePublish, SubjectTransform
from nats.js.errors import NotFoundError
from pydantic import SecretStr

from shared.analytics.replay import Replay
from shared.bus.jetstream import connect, ensure_streams_when_ready, stream_config
from shared.security.tokens import issue_token
from shared.settings import Settings
from tests.cli.system import sixstep
from tests.pages.center import resolved_case, running_center
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


async def test_an_anonymous_client_is_refused(server: NatsServer) -> None:
    with pytest.raises(NatsError, match=r"(?i)authorization"):
        await nats.connect(server.url, allow_reconnect=False, connect_timeout=5,
                           max_reconnect_attempts=0)


async def test_feedback_cannot_forge_intake_events_nor_purge_or_delete_the_log(
        settings: Settings, server: NatsServer, passwords: dict[str, str], ops_js: Any) -> None:
    await ops_js.add_stream(name=STREAM, subjects=[f"{PREFIX}.>"])
    await ops_js.purge_stream(STREAM)
    violations: list[str] = []
    heard = asyncio.Event()

    async def error_cb(error: Exception) -> None:
        violations.append(str(error))
        heard.set()

    nc = await connect(as_user(settings, server, passwords, "feedback"), "test-feedback",
                       error_cb=error_cb)
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
            heard.clear()
            with pytest.raises(NatsError):  # no answer: the server dropped the request
                await attempt()
            await asyncio.wait_for(heard.wait(), 10)
            assert "permissions violation" in violations[-1].lower()
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
