"""Follow-up's wiring: settings -> calendars, store, bus, rules, worklist, scheduler, fan-out,
re-planning when the calendar changes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI

from services.followup import completed_before, known_residents, parked
from services.followup import consumer as rules_module
from services.followup.api import followups, obligations, parked_rules, policies, worklists
from services.followup.application import FollowUpApplication, FollowUps
from services.followup.completed_before import CompletedBefore
from services.followup.consumer import Rules
from services.followup.fanout import FanOut, stalled
from services.followup.helping import UNIT_REPLY, help_tasks, referrals
from services.followup.linked_before import LinkedBefore, LinkedCasesNamed
from services.followup.projections import CONSUMER, DDL, WorklistProjection
from services.followup.referral_tokens import ReferralTokens
from services.followup.replanning import Replanning
from services.followup.residents import PgConsents
from services.followup.scheduler import Scheduler
from shared.catalogue import load_catalogue
from shared.http.app import install_surface, new_app, serve
from shared.http.case_texts import IntakeCaseTexts
from shared.http.limits import TokenBuckets
from shared.kernel.clock import Clock, SystemClock
from shared.runtime.calendars import Calendars
from shared.runtime.lifecycle import start_runtime, stop_runtime
from shared.runtime.metrics import Metrics
from shared.runtime.replanning import FAILURES, FailureLog
from shared.settings import Settings

log = structlog.get_logger("sixstep.followup")

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
                                      [*DDL, *rules_module.DDL, *known_residents.DDL,
                                       *completed_before.DDL], metrics,
                                      calendars)
        runtime.clock = clock_
        case_texts = IntakeCaseTexts(settings)  # a name typed alone: intake scrubs it
        use_cases = FollowUps(runtime.committer, calendars, settings, clock_, catalogue,
                              PgConsents(runtime.pool), case_texts)
        parked_gauge = metrics.parked_rules.labels(SERVICE)
        rules = Rules(use_cases, on_parked=parked_gauge.set)
        replanning = Replanning(runtime.pool, use_cases)
        scheduler = Scheduler(runtime.pool, use_cases, clock_,
                              interval_s=settings.followup_scheduler_interval_s,
                              batch=settings.followup_scheduler_batch)
        fanout = FanOut(runtime.pool, use_cases, batch=settings.followup_fanout_batch,
                        interval_s=settings.followup_scheduler_interval_s,
                        locks=runtime.locks)
        app.state.runtime = runtime
        app.state.pool = runtime.pool
        app.state.followups = use_cases
        app.state.rules = rules
        app.state.scheduler = scheduler
        app.state.fanout = fanout
        app.state.replanning = replanning
        prefix = settings.subject_prefix
        worklist = runtime.add_consumer(CONSUMER, WorklistProjection(settings.tz),
                                        [f"{prefix}.followup.*.*"])
        if runtime.runs_consumer(CONSUMER):  # the rows a worklist before rulesrace48 left
            runtime.start_worker("linked-cases-named", LinkedCasesNamed(
                runtime.pool, worklist).run)

        async def calendar_changed() -> dict[str, int]:
            """The calendar grew or an official schedule replaced a provisional year. A parked
            rule that fails (its write not taken in time) is counted ``rules_failed`` (the
            whole is run again) and stops no re-planning: it stopped the follow-ups',
            obligations', help tasks' and referrals' (``hook_failed``), at every try."""
            try:
                unparked = {"rules_unparked": await rules.retry_parked(runtime.pool)}
            except Exception as exc:  # said as every re-planning failure (FailureLog)
                (FAILURES.get() or FailureLog()).say(
                    log, "replan.rules_failed", f"{type(exc).__name__}: {exc}", ["parked"],
                    "rules")
                unparked = {"rules_unparked": 0, "rules_failed": 1}
            return {**unparked, **await replanning.run()}

        runtime.calendar_hooks["followup"] = calendar_changed
        runtime.degradations.append(lambda: parked.degradation(runtime.pool))
        runtime.degradations.append(scheduler.degradation)
        runtime.degradations.append(
            lambda: stalled(runtime.pool, settings.followup_fanout_stall_s))
        parked_gauge.set(await parked.count(runtime.pool))
        if runtime.runs_workers:  # a file added or the package upgraded while we were down
            await runtime.replan_at_start()
        driving = runtime.add_consumer(rules_module.CONSUMER, rules,
                             [f"{prefix}.intake.*.*", f"{prefix}.feedback.RectificationOpened.*",
                              f"{prefix}.feedback.RectificationDeadlineRevised.*",
                              f"{prefix}.feedback.RectificationTriaged.*",
                              f"{prefix}.feedback.RectificationAppealDecided.*",
                              f"{prefix}.feedback.RectificationCompleted.*"])
        runtime.add_consumer(known_residents.CONSUMER, known_residents.KnownResidents(),
                             known_residents.subjects(prefix))
        # Once a durable: the completions recorded before the rules took RectificationCompleted
        # (where the rules are driven: CONSUMERS may put them in another worker).
        if runtime.runs_consumer(rules_module.CONSUMER):
            runtime.start_worker("rectifications-completed-before", CompletedBefore(
                runtime.pool, runtime.nc, settings, rules, driving).run)
            # And the plan steps' links the rules tracked without applying (before stop 47).
            runtime.start_worker("plan-links-before", LinkedBefore(
                runtime.pool, runtime.nc, settings, rules, driving).run)
        runtime.start_worker("scheduler", scheduler.run)
        # In a process of its own where ROLES says so: its bursts of writes then wait behind
        # no relay and no consumer on one event loop (benchmarks/README.md, target 6).
        runtime.start_worker("fanout", fanout.run, role="fanout")
        try:
            yield
        finally:
            await stop_runtime(runtime)
            await case_texts.aclose()

    app = new_app(title="sixstep follow-up", version="1.0",
                  description="Step 5 of the six-step method: follow up. Follow-ups scheduled "
                              "on the center's working-day calendar by rules on intake and "
                              "feedback events, by policy changes and by hand; worklists for "
                              "clerks and teams. Every write takes an Idempotency-Key.",
                  lifespan=lifespan)
    app.state.clock = clock_
    app.state.referral_tokens = ReferralTokens(settings.survey_token_secret.get_secret_value())
    app.state.referral_limits = TokenBuckets(settings.survey_rate_per_minute / 60.0,
                                             settings.survey_rate_burst)
    install_surface(app, settings, metrics, public=[UNIT_REPLY],  # a reply link answers alone
                    clock=clock_)
    app.include_router(followups)
    app.include_router(worklists)
    app.include_router(policies)
    app.include_router(obligations)
    app.include_router(parked_rules)
    app.include_router(help_tasks)
    app.include_router(referrals)
    return app


def main() -> None:
    serve("followup", create_app)


if __name__ == "__main__":
    main()
