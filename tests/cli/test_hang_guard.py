"""The CLI tests' hang guard (``tests/cli/system.py``): a command that is still working is
waited for, however slowly a loaded host lets it work; one that waits on nothing fails.

At load 25 four ``sixstep`` commands side by side each had a fifteenth of a core: export and
sql, busy to their last line and their interpreter's finalization, were called hung by a guard
on the wall time."""

from __future__ import annotations

import sys

import pytest

from tests.cli.system import run_watched

#: A program busy for ~1.5 s of CPU: on a quiet host as long as the guard below, on a loaded
#: one longer (the old guard, on the wall time, gave up on it).
BUSY = ("import time\n"
        "end = time.process_time() + 1.5\n"
        "while time.process_time() < end:\n"
        "    pass\n"
        "print('done')\n")


def test_a_command_busy_longer_than_the_guard_is_waited_for_to_its_end() -> None:
    done = run_watched([sys.executable, "-c", BUSY], hang_s=1.0)
    assert done.returncode == 0 and done.stdout == "done\n", done


def test_a_command_waiting_on_nothing_is_called_hung_with_what_it_printed() -> None:
    with pytest.raises(AssertionError, match=r"used no CPU for 1 s.*waiting") as hung:
        run_watched([sys.executable, "-c", "import time; print('waiting', flush=True); "
                     "time.sleep(3600)"], hang_s=1.0)
    assert "waiting" in str(hung.value)


def test_a_command_whose_child_holds_its_output_after_it_ended_is_called_hung() -> None:
    # The command printed and exited; what it started keeps the pipe open, so the caller
    # would never see its end: hung, and the child is ended with it (its own session).
    starts_a_sleeper = ("import subprocess, sys\n"
                        "subprocess.Popen([sys.executable, '-c', 'import time; "
                        "time.sleep(3600)'])\n"
                        "print('printed everything', flush=True)\n")
    with pytest.raises(AssertionError, match=r"used no CPU for 1 s.*printed everything"):
        run_watched([sys.executable, "-c", starts_a_sleeper], hang_s=1.0)
