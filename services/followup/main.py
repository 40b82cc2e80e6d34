"""Follow-up's wiring: settings -> calendars, store, bus, rules, worklist, scheduler, fan-out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.followup import consumer as rules_module
from services.followup.api import followups, obligations, policies, worklists
from services.followup.application import FollowUpApplication, FollowUps
from services.followup.centers import Calendars
from services.followup.clock import Clock, SystemClock
from services.followup.consumer import Rules
from services.followup.fanout import FanOut
from services.followup.projections import CONSUMER, DDL, WorklistProjection
from services.followup.residents import PgConsents
from services.followup.scheduler import Scheduler
from shared.catalogue import load_catalogue
from shared.http import Metrics
from shared.service import install_surface, serve, start_runtime, stop_runtime
from shared.settings import Settings

SERVICE = "followup"


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The follow-up service; ``clock`` is the system clock unless a test gives its own."""
    clock_ = clock or SystemClock()
    calendars = Calendars(settings)  # a bad holidays file or office hours stop us here
    catalogue = load_catalogue(settings.catalogue_paths)
    metrics = Metrics(SERVICE)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(settings, SERVICE, FollowUpApplication,
                                      [*DDL, *rules_module.DDL], metrics)
        use_cases = FollowUps(runtime.committer, calendars, settings, clock_, catalogue,
                              PgConsents(runtime.pool))
        rules = Rules(use_cases)
        scheduler = Scheduler(runtime.pool, use_cases, clock_,
                              interval_s=settings.followup_scheduler_interval_s,
                              batch=settings.followup_scheduler_batch)
        fanout = FanOut(runtime.pool, use_cases, batch=settings.followup_fanout_batch,
                        interval_s=settings.followup_scheduler_interval_s)
        app.state.runtime = runtime
        app.state.pool = runtime.pool
        app.state.followups = use_cases
        app.state.rules = rules
        app.state.scheduler = scheduler
        app.state.fanout = fanout
        prefix = settings.subject_prefix
        runtime.add_consumer(CONSUMER, WorklistProjection(settings.tz), [f"{prefix}.followup.*.*"])
        if runtime.runs_workers:
            await rules.retry_parked(runtime.pool)
        runtime.add_consumer(rules_module.CONSUMER, rules,
                             [f"{prefix}.intake.*.*", f"{prefix}.feedback.RectificationOpened.*"])
        runtime.start_worker("scheduler", scheduler.run)
        runtime.start_worker("fanout", fanout.run)
        try:
            yield
        finally:
            await stop_runtime(runtime)

    app = FastAPI(title="sixstep follow-up", version="1.0",
                  description="Step 5 of the six-step method: follow up. Follow-ups scheduled "
                              "on the center's working-day calendar by rules on intake and "
                              "feedback events, by policy changes and by hand; worklists for "
                              "clerks and teams. Every write takes an Idempotency-Key.",
                  lifespan=lifespan)
    app.state.clock = clock_
    install_surface(app, settings, metrics)
    app.include_router(followups)
    app.include_router(worklists)
    app.include_router(policies)
    app.include_router(obligations)
    return app


def main() -> None:
    serve("followup", create_app)


if __name__ == "__main__":
    main()
