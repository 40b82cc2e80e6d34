"""``python -m tests.faults.clocked <service> <moment>``: a service as its own process, as
``python -m services.<service>.main`` runs it (settings from the environment, its port), with
its clock standing at ``moment`` (ISO, with its offset): a test of several processes that
plays a day of the calendar (4 January 2027) whatever day the host's clock says. A real
process: SIGKILL kills it, its sessions end with it."""

from __future__ import annotations

import importlib
import sys
from datetime import datetime
from typing import cast

from shared.http.app import serve
from shared.kernel.clock import ManualClock
from shared.settings import ServiceName


def main() -> None:
    service, moment = cast(ServiceName, sys.argv[1]), datetime.fromisoformat(sys.argv[2])
    create_app = importlib.import_module(f"services.{service}.main").create_app
    serve(service, lambda settings: create_app(settings, clock=ManualClock(moment)))


if __name__ == "__main__":
    main()
