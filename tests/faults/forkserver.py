"""The fault tests' service processes, forked from one process that imported them already.

A service started as ``python -m services.<name>.main`` spent ~1.5 s of CPU importing its
modules (FastAPI, pydantic, nats, the contracts, its routes) before it did anything, at every
start and every restart of every fault test: on CI's two cores, with three services starting
at once, that was most of a ``System.start``. This server imports the three services once;
each service process is then an ``os.fork`` of it that runs ``services.<name>.main`` as
``python -m`` would (``__main__``, its environment, its working folder, stdout and stderr to
its log file). It is a real process of its own (its own PID, sockets and store connections):
SIGKILL kills it, SIGTERM drains it, as before.

Run as ``python -m tests.faults.forkserver``; one request per line on stdin (JSON: service,
env, cwd, log); it answers on stdout ``started <pid>`` for each request, in order, and
``exited <pid> <code>`` (``Popen.returncode``'s form: -N for signal N) when a child ends.
Nothing of the test process runs here: a fork of the test process would take its threads'
locks, its event loop and its heap with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import runpy
import selectors
import signal
import sys
import time

#: Imported once here, never again in a service process.
PRELOAD = ("services.intake.main", "services.followup.main", "services.feedback.main")
#: Imported by the services on first need (a resident's name, a Chinese text): loaded here too.
PRELOAD_IF_THERE = ("pypinyin", "opencc")


def _name_process(name: str) -> None:
    """The child's name in ``ps`` (``/proc/<pid>/comm``, 15 bytes): the service's module, so
    that a look for services' processes (tests/faults/test_ctrl_c.py) finds it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _child(request: dict[str, object], keep_out: list[int], sigint: object) -> None:
    """In the forked child: become ``python -m services.<service>.main``."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, sigint)  # type: ignore[arg-type]  # as python -m had it
    for fd in keep_out:
        with contextlib.suppress(OSError):
            os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(str(request["log"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)  # the request pipe goes with it
    os.dup2(log, 1)  # the reply pipe goes with it
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()  # as python -m would read its TZ at start (the C library keeps the server's)
    os.chdir(str(request["cwd"]))
    module = f"services.{request['service']}.main"
    _name_process(module)
    sys.argv = [module]
    # As python -m would with PYTHONUNBUFFERED: each line in the log as it is written.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    sys.exit(0)


def _reply(line: str) -> None:
    data = (line + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _reap(children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _reply(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


def _stop_children(children: set[int], timeout: float = 20.0) -> None:
    """The test run is gone (killed with -9: its exit handlers never ran): stop the services
    as it would have, SIGTERM, ``timeout`` s, then SIGKILL, so that none outlives it."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    deadline = time.monotonic() + timeout
    while children and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                children.discard(pid)
                _reply(f"exited {pid} {os.waitstatus_to_exitcode(status)}")
                continue
        time.sleep(0.05)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(pid, 0)
            _reply(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


def main() -> None:
    # A Ctrl-C at a terminal goes to the whole process group: to the test run, to each
    # service (which drains on it) and to this server. Dying here of KeyboardInterrupt would
    # leave the test run unable to learn its services' ends (it SIGKILLed them at once instead
    # of waiting for their drain); this server ends when the test run closes its stdin or
    # stops it with SIGTERM.
    sigint = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in PRELOAD:
        importlib.import_module(name)
    for name in PRELOAD_IF_THERE:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through wake_w
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""
    children: set[int] = set()
    _reply("ready")
    while True:
        for key, _ in selector.select():
            if key.fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                _reap(children)
                continue
            chunk = os.read(0, 65536)
            if not chunk:  # the test run is gone
                _stop_children(children)
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    _child(request, [wake_r, wake_w], sigint)
                    return  # (never: _child ends in sys.exit)
                children.add(pid)
                _reply(f"started {pid}")
        _reap(children)


if __name__ == "__main__":
    main()
