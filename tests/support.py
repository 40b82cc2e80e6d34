"""Helpers for tests: read the stream, wait for things, run a service in-process."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import os
import queue
import random
import socketserver
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import httpx
import orjson
from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError, ServiceUnavailableError

from shared.analytics.reading import subject_matches
from shared.analytics.rebuild import Rebuild
from shared.bus.consumer import Consumer, Handler
from shared.bus.jetstream import connect, dead_letter_stream
from shared.bus.revocations import bucket_name
from shared.contracts import Envelope
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.readmodels.readmodel import ReadModel
from shared.runtime.background import supervise
from shared.security.principals import Role
from shared.security.tokens import issue_token
from shared.settings import Settings
from tests.started_tasks import started_here


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0,
                     what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def stream_messages(settings: Settings, stream: str | None = None,
                          subject: str | None = None) -> list[Msg]:
    """Every message of a stream (optionally one subject filter), in stream order."""
    nc = await connect(settings, "test-reader")
    try:
        js = nc.jetstream()
        name = stream or settings.stream_name
        # In a cluster a stream has no leader for a few seconds after a node comes back: its
        # API requests go unanswered (a timeout) or a pull is refused (503) until one is
        # elected and the reading consumer has caught up. Such a read starts again whole.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                return await _read_stream(js, name, subject)
            except NotFoundError:
                return []
            except (TimeoutError, ServiceUnavailableError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await nc.close()


async def _read_stream(js: JetStreamContext, name: str, subject: str | None) -> list[Msg]:
    info = await js.stream_info(name)
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        subject or ">", stream=name,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                              inactive_threshold=5.0))
    out: list[Msg] = []
    try:
        while True:
            try:
                batch = await sub.fetch(1000, timeout=0.5)
            except TimeoutError:
                break
            out.extend(batch)
            if batch and batch[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return out


async def stored_heads(settings: Settings) -> dict[str, int]:
    """The last position each service's store holds (a service whose tables are not there is
    not running in this test)."""
    conn = await asyncpg.connect(settings.database_url)
    heads: dict[str, int] = {}
    try:
        for service in ("intake", "followup", "feedback"):
            table = f'"{settings.schema_for(service)}"."{service}_events"'
            try:
                heads[service] = await conn.fetchval(
                    f"SELECT coalesce(max(notification_id), 0) FROM {table}")
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                continue
    finally:
        await conn.close()
    return heads


def _decoded(messages: list[Msg]) -> list[Envelope]:
    return [Envelope.model_validate(orjson.loads(m.data)) for m in messages]


async def stream_envelopes(settings: Settings, subject: str | None = None, *,
                           published: float = 10.0) -> list[Envelope]:
    """The stream's envelopes once every event the stores held when asked is on it (waiting
    ``published`` seconds at most, then what is there: a test that stopped a relay reads the
    stream as it is): a write answered a moment ago reaches the stream in the relay's own
    time, which under load is after the test's next line."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + published
    heads = await stored_heads(settings)
    while True:
        messages = await stream_messages(settings)
        envelopes = _decoded(messages)
        on_stream: dict[str, int] = {}
        for e in envelopes:
            on_stream[e.service] = max(on_stream.get(e.service, 0), e.position)
        if all(on_stream.get(s, 0) >= head for s, head in heads.items()) or \
                loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    if subject is None:
        return envelopes
    return [e for m, e in zip(messages, envelopes, strict=True)
            if subject_matches(subject, m.subject)]


async def dead_letters(settings: Settings) -> list[Msg]:
    return await stream_messages(settings, stream=dead_letter_stream(settings))


TEST_CENTER = "SH-PD-HUAMU"
"""The center the tests' default token is scoped to."""


def token_for(settings: Settings, role: Role | str = Role.SUPERVISOR,
              center: str | None = TEST_CENTER, sub: str | None = None,
              case_id: UUID | None = None, ttl: timedelta | None = None) -> str:
    """A token signed with the test settings' key (default: a supervisor of TEST_CENTER)."""
    role = Role(role)
    return issue_token(settings, sub or f"test-{role.value}", role, center, case_id, ttl)


def bearer(settings: Settings, **claims: Any) -> dict[str, str]:
    """``Authorization`` for a request (``token_for``'s arguments)."""
    return {"Authorization": f"Bearer {token_for(settings, **claims)}"}


def auth_env(settings: Settings) -> dict[str, str]:
    """The environment a service process needs to accept the tests' tokens (and to open the
    vault and sign survey links with the tests' keys)."""
    return {
        "ENVIRONMENT": settings.environment,
        "AUTH_KEYS": json.dumps([k.get_secret_value() for k in settings.auth_keys]),
        "VAULT_MASTER_KEY": settings.vault_master_key.get_secret_value(),
        "VAULT_LOOKUP_KEY": settings.vault_lookup_key.get_secret_value(),
        "SURVEY_TOKEN_SECRET": settings.survey_token_secret.get_secret_value(),
        # ... and to reach NATS as the tests do (their own server admits anyone).
        "NATS_SECURED_OTHERWISE": str(settings.nats_secured_otherwise).lower(),
        **settings_nats_user(settings),
    }


def settings_nats_user(settings: Settings) -> dict[str, str]:
    """``NATS_USER`` / ``NATS_PASSWORD`` as the environment gives them, when the settings
    have a user."""
    if not settings.nats_user:
        return {}
    password = settings.nats_password.get_secret_value() if settings.nats_password else ""
    return {"NATS_USER": settings.nats_user, "NATS_PASSWORD": password}


@contextlib.asynccontextmanager
async def running(app: FastAPI, *, role: Role | str = Role.SUPERVISOR,
                  center: str | None = TEST_CENTER, token: str | None = None,
                  anonymous: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service's lifespan in-process and talk to it over ASGI.

    Every request carries a bearer token: ``token``, else one for ``role`` at ``center``
    (default: a supervisor of TEST_CENTER). ``anonymous=True`` sends none.
    """
    headers: dict[str, str] = {}
    if not anonymous:
        token = token or token_for(app.state.settings, role, center)
        headers["Authorization"] = f"Bearer {token}"
    async with nothing_left_running(f"{app.title}'s lifespan"), \
            app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sixstep.test",
                                     timeout=30.0, headers=headers) as client:
            yield client


def _named(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return f"{task.get_name()} ({getattr(coro, '__qualname__', coro)!r})"


@contextlib.asynccontextmanager
async def nothing_left_running(what: str) -> AsyncIterator[None]:
    """Fails the test when a task started inside the block is still pending once it has
    ended: a task the product started and did not wait for (an orphan) is destroyed pending
    when the test's loop closes ("Task was destroyed but it is pending!"), and the garbage
    collector closing its coroutine in the middle of a ``finally`` broke an unrelated
    ``compile`` in CI (CPython 3.11's gh-106905). Checked on a clean exit only: a test that
    failed inside says so itself. Nested (a service's lifespan inside another's), the outer
    block checks: the inner one's end would count the outer app's tasks started meanwhile."""
    if _CHECKING.get():
        yield
        return
    checking = _CHECKING.set(True)
    try:
        # The block's own tasks: another app on the run's shared loop (tests/pages' center)
        # starts its batches meanwhile, not counted (``tests.started_tasks``).
        with started_here() as made:
            yield
    finally:
        _CHECKING.reset(checking)
    started = [t for t in made() if not t.done() and not _kept_connections_own(t)]
    cleaning = [t for t in started if _cleaning_up(t)]
    if cleaning:  # the libraries' own, finishing what a cancel or a close began: a barrier
        await asyncio.wait(cleaning, timeout=LIBRARY_CLEANUP_S)
    left = sorted(_named(t) for t in started if not t.done())
    assert not left, f"{what} ended with tasks still running: {left}"


#: Tasks the libraries start to finish their own cleanup, and end by themselves a few loop
#: rounds later: asyncpg's shielded ``Pool.release`` of a connection whose user was cancelled
#: (its reset still on the wire), nats-py's message loop of a subscription its connection's
#: close cancelled (not awaited, by ``Client._close``), once cancelled only: a loop nobody
#: cancelled is a subscription left open, counted at once. Waited for, up to
#: ``LIBRARY_CLEANUP_S``, before they count; any other task counts at once. (A consumer's
#: fetch subscription is no such task: its puller waits for the loop it stops.)
LIBRARY_CLEANUP = frozenset({"PoolConnectionHolder.release", "Subscription._wait_for_msgs"})
LIBRARY_CLEANUP_S = 10.0


def _qualname(task: asyncio.Task[Any]) -> str:
    return str(getattr(task.get_coro(), "__qualname__", ""))


def library_cleanup(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` may be the libraries' own cleanup (``LIBRARY_CLEANUP``), whoever's it
    is: a test counting the tasks of the run's shared loop leaves them out (another test's
    shielded release, started meanwhile)."""
    return _qualname(task) in LIBRARY_CLEANUP


def _cleaning_up(task: asyncio.Task[Any]) -> bool:
    return library_cleanup(task) and (
        _qualname(task) != "Subscription._wait_for_msgs" or task.cancelling() > 0)


def subscription_of(task: asyncio.Task[Any]) -> Any:
    """The nats-py subscription whose message loop ``task`` is; None for any other task."""
    coro: Any = task.get_coro()
    if getattr(coro, "__qualname__", "") != "Subscription._wait_for_msgs":
        return None
    return getattr(getattr(coro, "cr_frame", None), "f_locals", {}).get("self")


def request_inbox(sub: Any) -> bool:
    """Whether ``sub`` is its connection's request inbox (nats-py's ``_INBOX.<token>.*``,
    opened by the connection's first request, ``nc.request`` or a JetStream call: one per
    connection, ended by its close)."""
    prefix = sub._conn._resp_sub_prefix
    return prefix is not None and sub.subject == prefix.decode() + "*"


def _kept_connections_own(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is the message loop of the request inbox of a connection still open:
    the connection's, not what ran in the block (a consumer started on a connection its test
    keeps opens it with its first request, and the test's close ends it)."""
    sub = subscription_of(task)
    return sub is not None and not sub._conn.is_closed and request_inbox(sub)


#: Set inside ``nothing_left_running``'s outermost block.
_CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar("checking", default=False)


class as_resident:
    """A client's posts as the resident's own device sends them: without the bearer token the
    client carries by default (a staff member's, often the clerk who served the case), the
    survey link's token in the body. Sent with the serving clerk's bearer, a link's answer is
    refused (403 ``self_rating``: the QR code on their screen)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        request = self.client.build_request("POST", url, **kwargs)
        request.headers.pop("Authorization", None)
        return await self.client.send(request)


def forget_endpoints() -> None:
    """Let go of the apps a test built: FastAPI remembers each endpoint and dependency it
    classified (coroutine or not, generator or not) in module-level caches of 4,096 entries
    (``fastapi.dependencies.models``), keyed by the callable itself. Our routes and
    dependencies are closures over their app, its runtime and its catalogue, so those caches
    kept every app of the last ~40 tests alive (a whole run's heap grew to 2.2 GB). A service
    process builds one app, which its caches may keep as long as it lives."""
    from fastapi.dependencies import models

    for value in vars(models).values():
        cache_clear = getattr(value, "cache_clear", None)
        if callable(cache_clear):
            cache_clear()


async def drop_test_objects(settings: Settings) -> None:
    """Remove one test's schemas and streams (never anything else)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
                                settings.schema_prefix + "%")
        for row in rows:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()
    nc = await connect(settings, "test-cleanup")
    try:
        js = nc.jetstream()
        for name in (settings.stream_name, dead_letter_stream(settings),
                     f"KV_{bucket_name(settings)}"):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()


class Dropper:
    """Drops finished tests' schemas and streams on a thread of its own, one after another,
    while the next test runs: the test run waited for each ``DROP SCHEMA ... CASCADE`` (the
    PostgreSQL server's work, on the other core) at every test's teardown, ~0.1 s a test at
    load 16 in tests/intake. ``close`` waits for what is left and raises the first failure."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Settings | None] = queue.SimpleQueue()
        self._failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._drop_each, name="test-dropper",
                                        daemon=True)
        self._thread.start()

    def drop(self, settings: Settings) -> None:
        self._queue.put(settings)

    def _drop_each(self) -> None:
        while (settings := self._queue.get()) is not None:
            try:
                asyncio.run(drop_test_objects(settings))
            except BaseException as exc:  # said at close, as the teardown would have
                self._failures.append(exc)

    def close(self, timeout: float = 120.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"tests' schemas and streams not dropped within {timeout} s")
        if self._failures:
            raise self._failures[0]


_ID_SEQUENCE = itertools.count(random.SystemRandom().randrange(10**6))


def id_number(n: int | None = None) -> str:
    """A made-up but valid resident ID number (region, birth date, check digit): the ``n``-th,
    or a new one at each call."""
    from services.intake.idnumber import check_character

    n = next(_ID_SEQUENCE) if n is None else n
    born = f"19{50 + n // 36500 % 50:02d}{n // 1000 % 12 + 1:02d}{n // 12000 % 28 + 1:02d}"
    first17 = f"310115{born}{n % 1000:03d}"
    return first17 + check_character(first17)


async def register_resident(client: httpx.AsyncClient, *, id_: str | None = None,
                            consent: dict[str, bool] | None = None,
                            auth: dict[str, str] | None = None, **fields: Any) -> str:
    """Register a made-up resident in intake's vault (as ``auth``, else the client's own
    token); their opaque id. A case can name only a resident on file."""
    body = {"name": "王秀英", "id_number": id_ or id_number(), "phone": "13912345678",
            "address": "浦东新区花木路100弄3号", "contact_channel": "phone",
            "consent": consent or {"contact": True, "surveys": True}, **fields}
    answer = await client.post("/residents", json=body, headers=auth or {})
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["resident_id"])


def error_words(body: dict[str, Any], asked: str) -> dict[str, Any]:
    """An error answer with the id asked about taken out: what another center's thing and
    nobody's must share when they are to be answered alike (code, message, details)."""
    error = body["error"]
    return {"code": error["code"], "message": error["message"].replace(asked, "<id>"),
            "details": {k: "<id>" if v == asked else v for k, v in error["details"].items()}}


def headers(key: str, **extra: Any) -> dict[str, str]:
    out = {"Idempotency-Key": key}
    out.update({k.replace("_", "-"): str(v) for k, v in extra.items()})
    return out


def process_gone(pid: int) -> bool:
    """Whether no process has ``pid`` any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


_Server = TypeVar("_Server", bound=socketserver.BaseServer)


@contextlib.contextmanager
def serving(server: _Server) -> Iterator[_Server]:
    """``server`` answering on a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class CountingConnection:
    """A connection that counts the statements sent through it (how many round trips a
    handler's step takes)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.statements = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.conn, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.statements += 1
            return await method(*args, **kwargs)
        return counted


@contextlib.asynccontextmanager
async def schema_pool(settings: Settings, name: str, ddl: Sequence[str]
                      ) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a schema of the test's own (``<prefix><name>``) holding ``ddl``'s empty
    tables, as a rebuild's staging would; closed at the end (the test's schemas are dropped
    with the rest of its objects)."""
    schema = f"{settings.schema_prefix}{name}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()
    pool = await create_pool(settings, schema)
    try:
        await run_migrations(pool, schema, ddl)
        yield pool
    finally:
        await pool.close()


async def assert_rebuilt_as_live(settings: Settings, read_model: ReadModel) -> None:
    """``read_model`` rebuilt from the log beside the live one is the same, row for row
    (``sixstep rebuild``'s diff); the staging schema is discarded."""
    async with Rebuild(settings, read_model) as rebuild:
        await rebuild.prepare(fresh=True)
        await rebuild.catch_up()
        diff = await rebuild.diff()
        assert diff.same, diff
        await rebuild.discard()


@contextlib.asynccontextmanager
async def bus_connection(settings: Settings, name: str) -> AsyncIterator[NATS]:
    """A NATS connection named ``name``, closed at the end."""
    nc = await connect(settings, name)
    try:
        yield nc
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def consumer_running(consumer: Consumer) -> AsyncIterator[asyncio.Task[None]]:
    """``consumer`` runs (leads its durable, or stands by) until the block ends; cancelled
    then. The task, for a test that ends it earlier (a leader going away). Held to
    ``nothing_left_running``: once stopped, nothing it started runs, its fetch subscription's
    message loop included (the kept connection's request inbox is the connection's)."""
    async with nothing_left_running(f"consumer {consumer.name}"):
        task = asyncio.create_task(consumer.run())
        try:
            yield task
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def intake_consumer(settings: Settings, name: str, handler: Handler, ddl: Sequence[str],
                          **options: Any) -> AsyncIterator[Consumer]:
    """A consumer ``name`` of every intake event feeding ``handler``, on a schema of its own
    holding ``ddl`` (``consumer.pool``) and a NATS connection of its own (``consumer.nc``);
    not started. ``options``: the consumer's (``max_deliver``, ``isolate_after`` ...)."""
    async with schema_pool(settings, name, ddl) as pool, bus_connection(settings, name) as nc:
        yield Consumer(settings=settings, nc=nc, pool=pool, name=name, handler=handler,
                       filter_subjects=[f"{settings.subject_prefix}.intake.*.*"], **options)


@contextlib.asynccontextmanager
async def consumer_supervised(consumer: Consumer) -> AsyncIterator[None]:
    """``consumer`` run as a service runs it (``supervise``): started again after it gave a
    batch back (a statement that ran out of time), at once (the pause between two starts is
    not what such a test looks at); cancelled when the block ends, and held to
    ``nothing_left_running`` as ``consumer_running`` is: every start's subscription ended."""
    async with nothing_left_running(f"consumer {consumer.name}"):
        task = asyncio.create_task(supervise(f"consumer:{consumer.name}", consumer.run,
                                             sleep=lambda _: asyncio.sleep(0.01)))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


#: The sessions holding the advisory lock ``hashtext($1)`` (``shared/leadership.py``).
_LOCK_HOLDERS = ("FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objid::bigint ="
                 " (hashtext($1)::bigint & 4294967295)")


async def end_lock_session(pool: asyncpg.Pool, key: str) -> int:
    """PostgreSQL ends the session holding the advisory lock ``key`` (as a restart, a
    failover or a proxy's idle cut would, seen from that session); how many it ended."""
    return int(await pool.fetchval(
        f"SELECT count(pg_terminate_backend(l.pid)) {_LOCK_HOLDERS} AND l.granted", key))


async def lock_free(pool: asyncpg.Pool, key: str) -> bool:
    """Whether nobody holds or waits for the advisory lock ``key``."""
    return not await pool.fetchval(f"SELECT count(*) {_LOCK_HOLDERS}", key)


@contextlib.asynccontextmanager
async def held_elsewhere(settings: Settings, sql: str, *args: Any
                         ) -> AsyncIterator[asyncpg.transaction.Transaction]:
    """Another session (an operator's forgotten transaction) runs ``sql`` (``SELECT ... FOR
    UPDATE``) and keeps what it locked until the block ends, or until the test rolls back
    the transaction it is given."""
    blocker = await asyncpg.connect(settings.database_url)
    try:
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute(sql, *args)
        yield lock
        with contextlib.suppress(asyncpg.InterfaceError):  # rolled back by the test already
            await lock.rollback()
    finally:
        await blocker.close()


def bare_envelope(type_: str, at: datetime, *, service: str = "intake",
                  case_id: UUID | None = None, payload: dict[str, Any] | None = None,
                  actor: str = "clerk-017") -> Envelope:
    """An event of ``type_`` at TEST_CENTER, as a handler's read step sees it (no contract
    checked: the payload holds only what the step reads)."""
    return Envelope(event_id=uuid4(), type=type_, version=1, service=service, position=1,
                    aggregate_id=case_id or uuid4(), aggregate_version=1, case_id=case_id,
                    center_id=TEST_CENTER, occurred_at=at, recorded_at=at, actor=actor,
                    payload=payload or {})


def batch_loads(app: FastAPI) -> list[set[UUID]]:
    """The ids each of the service's group-commit batches loads from the store from here on
    (a list that grows): what a command read before it answered."""
    committer = app.state.runtime.committer
    loaded: list[set[UUID]] = []
    load = committer._load

    def watched(ids: set[UUID]) -> Any:
        loaded.append(set(ids))
        return load(ids)

    committer._load = watched
    return loaded


class OneFailsOneSlow:
    """Two side-by-side calls: the second fails once the first is on its way; the first
    takes a few more turns of the loop (its round trips) once it may go on, then ``ended``."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error
        self.first_on_its_way = asyncio.Event()
        self.may_go_on = asyncio.Event()
        self.ended = False

    async def __call__(self, *args: object) -> int:
        if not self.first_on_its_way.is_set():
            self.first_on_its_way.set()
            await self.may_go_on.wait()
            for _ in range(5):
                await asyncio.sleep(0)
            self.ended = True
            return 1
        self.may_go_on.set()
        raise self.error


async def failed_once_ended(run: Awaitable[Any], calls: OneFailsOneSlow) -> bool:
    """Whether ``run`` (which raises ``calls.error``) ended only once ``calls``' slow one had:
    not leaving it on its way, with no owner. That one is waited for here either way (an
    orphan of a defect ends in its own test)."""
    task = asyncio.ensure_future(run)
    seen: list[bool] = []
    task.add_done_callback(lambda _: seen.append(calls.ended))
    try:
        await task
    except calls.error:
        pass
    else:
        raise AssertionError(f"{calls.error.__name__} was not raised")
    while not calls.ended:
        await asyncio.sleep(0)
    return seen == [True]


def scrubber_broken_on(word: str, monkeypatch: Any) -> None:
    """A scrubber's rule that raises on any text holding ``word`` (a defect of its own, as
    redteam108 found one): what the write path, the logs and the pages do then. In the test's
    process, so the services a test runs in it see it too."""
    from shared.kernel.privacy import redaction

    rules = redaction.rule_spans

    def broken(text: str) -> Any:
        if word in text:
            raise IndexError("a rule's own defect")
        return rules(text)
    monkeypatch.setattr(redaction, "rule_spans", broken)
