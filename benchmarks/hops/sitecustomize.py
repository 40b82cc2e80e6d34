"""The probe of ``benchmarks/e2e_hops.py``: wall-clock marks along a resolution's path, in each
service process it is loaded into (a ``sitecustomize``: Python imports it at start when this
folder is on ``PYTHONPATH``, before the tree to measure, which must follow it there).

Active only when ``HOPS_PROBE_DIR`` is set: each process appends JSON lines to
``<dir>/<pid>.jsonl`` from a daemon thread every 0.5 s. It wraps, on their classes, what a
resolution passes through: a pulled message's arrival (``Puller._on_msg``: CaseResolved and
SurveyRequested only), a consumer's batch (``Consumer.process``) and a batch merged into one
(``Batches._more``), the group commit writer's batch (``GroupCommitter._execute``, with the
thread's CPU) and its insert (``ArrayInsertRecorder.insert_events``, with the positions), the
relay's rounds, waits for room and acknowledgements, the survey scheduler's ticks, and the
event loop's lateness (a 10 ms timer, said when > 3 ms late). Measurement only: nothing of
what it wraps changes.
"""

import os

if os.environ.get("HOPS_PROBE_DIR"):
    import asyncio
    import atexit
    import sys
    import threading
    import time

    import orjson

    from shared.bus import pulling
    from shared.bus.consumer import batch as batches
    from shared.bus.consumer import consuming
    from shared.eventstore import group_commit, outbox, recorder

    _marks: list[tuple[object, ...]] = []
    _folder = os.environ["HOPS_PROBE_DIR"]
    _lock = threading.Lock()
    INTERESTING = (".CaseResolved.", ".SurveyRequested.")

    def _flush() -> None:
        with _lock:
            lines, _marks[:] = list(_marks), []
        if lines:
            with open(os.path.join(_folder, f"{os.getpid()}.jsonl"), "ab") as out:
                out.write(b"".join(orjson.dumps(x) + b"\n" for x in lines))

    def _flusher() -> None:
        while True:
            time.sleep(0.5)
            try:
                _flush()
            except OSError:
                pass

    threading.Thread(target=_flusher, daemon=True, name="hops-probe").start()
    atexit.register(_flush)

    def mark(*x: object) -> None:
        _marks.append(x)

    mark("proc", os.getpid(), " ".join(sys.orig_argv), os.environ.get("ROLES", ""))

    async def _lateness() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.01)
            if (late := loop.time() - t - 0.01) > 0.003:
                mark("lag", time.time(), late)

    def _seqs(msgs: list) -> list[int]:
        return [pulling.sequence_and_delivered(m)[0] for m in msgs
                if any(s in m.subject for s in INTERESTING)]

    def _wrap(cls: type, name: str, make: object) -> None:
        setattr(cls, name, make(getattr(cls, name)))  # type: ignore[operator]

    def _on_msg(orig):  # type: ignore[no-untyped-def]
        started: list[object] = []  # the loop's lateness task, once

        async def on_msg(self, msg):  # type: ignore[no-untyped-def]
            t = time.time()
            if not started:
                started.append(asyncio.ensure_future(_lateness()))
            if msg.reply and any(s in msg.subject for s in INTERESTING):
                e = orjson.loads(msg.data)
                tokens = msg.reply.split(".")
                mark("rx", self.api.rsplit(".", 1)[1], pulling.sequence_and_delivered(msg)[0],
                     t, e["type"], e["case_id"], e["position"], e.get("recorded_at"),
                     int(tokens[-2]) if len(tokens) == 9 else None)
            return await orig(self, msg)
        return on_msg

    def _process(orig):  # type: ignore[no-untyped-def]
        async def process(self, msgs):  # type: ignore[no-untyped-def]
            t0 = time.time()
            try:
                return await orig(self, msgs)
            finally:
                mark("batch", self.name, t0, time.time(), len(msgs), _seqs(msgs))
        return process

    def _more(orig):  # type: ignore[no-untyped-def]
        async def more(self, conn, until):  # type: ignore[no-untyped-def]
            t0, before = time.time(), self._merged
            done = await orig(self, conn, until)
            if self._merged is not before and self._merged:
                mark("merged", self.name, t0, time.time(), len(self._merged),
                     _seqs([i.msg for i in self._merged]))
            return done
        return more

    def _insert(orig):  # type: ignore[no-untyped-def]
        def insert_events(self, stored_events, **kw):  # type: ignore[no-untyped-def]
            t0, c0 = time.time(), time.thread_time()
            ids = orig(self, stored_events, **kw)
            mark("insert", self.datastore.schema, t0, time.time(), len(stored_events),
                 min(ids) if ids else None, max(ids) if ids else None, time.thread_time() - c0)
            return ids
        return insert_events

    def _execute(orig):  # type: ignore[no-untyped-def]
        def execute(self, batch):  # type: ignore[no-untyped-def]
            t0, c0 = time.time(), time.thread_time()
            try:
                return orig(self, batch)
            finally:
                mark("execute", t0, time.time(), len(batch), time.thread_time() - c0)
        return execute

    def _round(orig):  # type: ignore[no-untyped-def]
        async def publish_once(self, epoch):  # type: ignore[no-untyped-def]
            t0 = time.time()
            n = await orig(self, epoch)
            if n:
                mark("round", self.service, t0, time.time(), n, self._sent)
            return n
        return publish_once

    def _room(orig):  # type: ignore[no-untyped-def]
        async def room(self):  # type: ignore[no-untyped-def]
            t0, waited = time.time(), bool(self._flight)
            await orig(self)
            if waited:
                mark("room", self.service, t0, time.time())
        return room

    def _settle(orig):  # type: ignore[no-untyped-def]
        async def settle(self, round_):  # type: ignore[no-untyped-def]
            await orig(self, round_)
            mark("acked", self.service, time.time(), round_.size, self.position)
        return settle

    _wrap(pulling.Puller, "_on_msg", _on_msg)
    _wrap(consuming.Consumer, "process", _process)
    _wrap(batches.Batches, "_more", _more)
    _wrap(recorder.ArrayInsertRecorder, "insert_events", _insert)
    _wrap(group_commit.GroupCommitter, "_execute", _execute)
    _wrap(outbox.Relay, "_publish_once", _round)
    _wrap(outbox.Relay, "_room", _room)
    _wrap(outbox.Relay, "_settle", _settle)

    if "services.feedback.main" in sys.orig_argv:
        from services.feedback import scheduler

        def _tick(orig):  # type: ignore[no-untyped-def]
            async def tick(self):  # type: ignore[no-untyped-def]
                t0 = time.time()
                done = await orig(self)
                mark("tick", t0, time.time(), *done)
                return done
            return tick

        _wrap(scheduler.SurveyScheduler, "tick", _tick)
