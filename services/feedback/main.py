"""Feedback's wiring: settings -> store, bus, group commit, relay, consumers, scheduler, API.

The composition root: the ports (clock, sender) are chosen here, and a test swaps them in one
place (``create_app(settings, sender=..., clock=...)``). The working-day calendars are the
process's one ``Calendars``, built from settings here (a bad holidays file stops the start).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial

import structlog
from fastapi import FastAPI

from services.feedback import (
    closing,
    consumer,
    figures,
    pads,
    pages,
    projections,
    public,
    survey_qr,
)
from services.feedback.api import cases, periods, rectifications, surveys
from services.feedback.api import figures as figures_routes
from services.feedback.application import Feedback, FeedbackApplication, SurveyPolicy
from services.feedback.figures import people
from services.feedback.figures import queries as figure_queries
from services.feedback.replanning import Replanning
from services.feedback.scheduler import SurveyScheduler
from services.feedback.sending import LoggingSender, SurveySender
from services.feedback.tokens import SurveyTokens
from shared.catalogue import load_catalogue
from shared.http.app import install_surface, new_app, serve
from shared.http.case_texts import IntakeCaseTexts
from shared.http.limits import TokenBuckets
from shared.kernel.clock import Clock, SystemClock
from shared.kernel.moments import Moments
from shared.runtime.calendars import Calendars
from shared.runtime.lifecycle import start_runtime, stop_runtime
from shared.runtime.metrics import Metrics
from shared.settings import DEV_SURVEY_TOKEN_SECRET, Settings

SERVICE = "feedback"
DDL = [*projections.DDL, *figures.DDL, *people.DDL, *consumer.DDL, *pads.DDL]

log = structlog.get_logger("sixstep.feedback")


def create_app(settings: Settings, *, sender: SurveySender | None = None,
               clock: Clock | None = None) -> FastAPI:
    clock_ = clock or SystemClock()
    policy = SurveyPolicy.from_settings(settings)
    # A bad holidays file or office hours stop us here, and so does a CLOCK_AHEAD_UNTIL past
    # the calendar (a mistyped year: ``ClockAheadUntilRefused``, serve's one line, exit 2).
    calendars = Calendars(settings, settings.clock_ahead_until)
    # The survey page names the case's item: read at start, as intake's and follow-up's (a
    # bad file stops us here; an edit is read by the next start, docs/catalogue.md).
    catalogue = load_catalogue(settings.catalogue_paths)
    secret = settings.survey_token_secret.get_secret_value()
    tokens = SurveyTokens(secret)
    sender_ = sender or LoggingSender(reveal=settings.environment == "development")
    metrics = Metrics(SERVICE)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if secret == DEV_SURVEY_TOKEN_SECRET:  # development only: production refuses it
            log.warning("feedback.default_token_secret",
                        hint="set SURVEY_TOKEN_SECRET outside development")
        runtime = await start_runtime(settings, SERVICE, FeedbackApplication, DDL, metrics,
                                      calendars)
        runtime.clock = clock_
        if said := calendars.clock_ahead_said(clock_.now().astimezone(settings.tz).date()):
            log.warning("feedback.clock_ahead_until", said=said)  # /ready's warnings too
        case_texts = IntakeCaseTexts(settings)  # a name typed alone: intake scrubs it
        feedback = Feedback(runtime.committer, policy, tokens, calendars, clock_,
                            Moments.from_settings(settings), case_texts,
                            partial(consumer.served_now, runtime.pool, settings),
                            center_seen_on=partial(figure_queries.center_seen_on, runtime.pool))
        replanning = Replanning(runtime.pool, feedback)
        runtime.calendar_hooks["feedback"] = replanning.run
        if runtime.runs_workers:  # a file added or the package upgraded while we were down
            await runtime.replan_at_start()
        app.state.runtime = runtime
        app.state.pool = runtime.pool
        app.state.feedback = feedback
        prefix = settings.subject_prefix
        runtime.add_consumer(projections.CONSUMER, projections.FeedbackViews(),
                             [f"{prefix}.feedback.*.*"])
        facts = runtime.add_consumer(figures.CONSUMER, figures.FiguresProjection(settings.tz),
                                     figures.subjects(prefix))
        runtime.add_consumer(people.CONSUMER, people.PeopleProjection(settings.tz),
                             people.subjects(prefix))
        runtime.add_consumer(consumer.CONSUMER,
                             consumer.IntakeFollower(feedback, settings.partitions),
                             consumer.subjects(prefix))
        # ``?after=`` waits on the consumer's own name, never a partitioned durable's: that one
        # passes a write of another replica's partitions as soon as it applies a later event
        # of its own (deploy/README, "Read your writes": such a replica answers 504).
        app.state.consumer_names = {"views": projections.CONSUMER, "figures": figures.CONSUMER}
        scheduler = SurveyScheduler(runtime.pool, feedback, sender_, settings.survey_link_base,
                                    schema=settings.schema_for(SERVICE),
                                    tick_s=settings.feedback_tick_s, locks=runtime.locks)
        app.state.scheduler = scheduler
        runtime.start_leading("survey-scheduler", scheduler.leadership, scheduler.run)
        app.state.periods = closing.Periods(feedback.path, runtime.pool,
                                            settings.emotion_defusing_arrivals, settings.tz,
                                            caught_up=facts.caught_up)
        # Both ask every durable of the figures: a partitioned worker's own is not all of them.
        app.state.period_scheduler = closing.PeriodScheduler(
            runtime.pool, app.state.periods, settings.period_close_after_days,
            schema=settings.schema_for(SERVICE), caught_up=facts.caught_up,
            revise_every=timedelta(minutes=settings.period_revise_every_minutes),
            failed=lambda step: metrics.period_failures.labels(SERVICE, step).inc(),
            locks=runtime.locks)
        runtime.start_leading("period-scheduler", app.state.period_scheduler.leadership,
                              app.state.period_scheduler.run)
        try:
            yield
        finally:
            await stop_runtime(runtime)
            await case_texts.aclose()

    app = new_app(title="sixstep feedback", version="1.0",
                  description="Step 6 of the six-step method: the resident's verdict on the "
                              "five-level scale, bad reviews and their rectification, and the "
                              "center's figures. Every write takes an Idempotency-Key and "
                              "returns the version and log position.",
                  lifespan=lifespan)
    app.state.catalogue = catalogue
    app.state.pad_pair_limits = pads.PairingLimits()
    app.state.survey_limits = TokenBuckets(settings.survey_rate_per_minute / 60.0,
                                           settings.survey_rate_burst)
    install_surface(app, settings, metrics,
                    # a survey link answers (or declines) alone
                    optional=[r"/surveys/[^/]+/rating", r"/surveys/[^/]+/decline"],
                    # pages' HTML, no data (pages.py); the rating pad's own token (pads.py)
                    public=[r"/", r"/board", r"/s/[^/]+", r"/pad", r"/pads/pair", r"/pads/next",
                            r"/public/[^/]+"],  # the monthly figures (公示): public.py
                    clock=clock_)
    app.include_router(surveys)
    app.include_router(pads.pads)
    app.include_router(survey_qr.survey_qr)
    app.include_router(cases)
    app.include_router(rectifications)
    app.include_router(figures_routes)
    app.include_router(periods)
    app.state.public_limits = public.limits(settings.public_figures_rate_per_minute)
    app.include_router(public.router)
    pages.install(app)
    return app


def main() -> None:
    serve("feedback", create_app)


if __name__ == "__main__":
    main()
