"""A long CLI run (replay, rebuild) takes Ctrl-C and SIGTERM while it runs, and hands them
back as it found them: a test run's handler that stops its servers stays in place."""

from __future__ import annotations

import asyncio
import signal

from shared.cli.long_runs import ctrl_c


def test_a_long_run_gives_back_the_signal_handlers_it_found() -> None:
    def mine(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, mine)
    try:
        async def run() -> None:
            async with ctrl_c() as stop:
                assert not stop.is_set()

        asyncio.run(run())
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
