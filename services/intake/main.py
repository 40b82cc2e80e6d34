"""Intake's wiring: settings -> store, bus, group commit, relay, read model, HTTP API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial

from fastapi import FastAPI

from services.intake import case_texts, helpers, pages, plan_views, vault_migration, verdicts
from services.intake.api import cases, catalogue, visits
from services.intake.application import Intake, IntakeApplication, Residents
from services.intake.hints import Hints
from services.intake.known_people import KnownPeople
from services.intake.lookup_limits import LookupGuard
from services.intake.open311.recent_forms import DDL as RECENT_FORMS_DDL
from services.intake.open311.recent_forms import RecentForms
from services.intake.open311.routes import router as open311
from services.intake.plan_api import plans
from services.intake.planning import Plans
from services.intake.projections import CONSUMER, DDL, CaseProjection
from services.intake.replanning import Replanning
from services.intake.residents import audit, hints, residents
from services.intake.sealing import Sealer
from services.intake.vault import DDL as VAULT_DDL
from services.intake.vault import Vault, VaultPolicy
from shared.catalogue import load_catalogue
from shared.catalogue.eligibility import load_rules
from shared.http.app import install_surface, new_app, serve
from shared.http.case_texts import PATTERN as CASE_TEXTS
from shared.kernel.clock import Clock, SystemClock
from shared.kernel.moments import Moments
from shared.runtime.calendars import Calendars
from shared.runtime.lifecycle import start_runtime, stop_runtime
from shared.runtime.metrics import Metrics
from shared.settings import Settings

SERVICE = "intake"


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The intake service. ``clock``: the service's now, what ``occurred_at`` is checked
    against, presence grants are timed by and consent and erasure events occur at; tests
    set it."""
    clock_ = clock or SystemClock()
    catalogue_ = load_catalogue(settings.catalogue_paths)
    rules = load_rules(catalogue_, settings.eligibility_rules_paths)  # a bad file stops us
    calendars = Calendars(settings)  # a bad holidays file or office hours stop us here
    sealer = Sealer.from_settings(settings)
    metrics = Metrics(SERVICE)
    guard = LookupGuard(settings, metrics.registry)
    policy = VaultPolicy(grant_minutes=settings.presence_grant_minutes,
                         miss_alert=settings.lookup_miss_alert,
                         miss_window_minutes=settings.lookup_miss_window_minutes,
                         on_miss_burst=guard.miss_burst, tz=settings.tz)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(settings, SERVICE, IntakeApplication,
                                      [*DDL, *VAULT_DDL, *plan_views.DDL, *RECENT_FORMS_DDL,
                                       *helpers.DDL, plan_views.PLAN_EVENTS.ddl()],
                                      metrics, calendars)
        app.state.runtime = runtime
        app.state.pool = runtime.pool
        vault = Vault(runtime.pool, sealer, policy, clock_)
        runtime.clock = clock_
        await vault_migration.prepare(vault, settings.vault_key_buckets)
        app.state.vault = vault
        app.state.intake = Intake(runtime.committer, catalogue_, vault,
                                  known=KnownPeople(runtime.application, vault),
                                  moments=Moments.from_settings(settings), clock=clock_,
                                  calendars=calendars,
                                  helped_by=partial(helpers.of_case, runtime.pool))
        # Open311 forms posted without an Idempotency-Key, for one retry window only.
        app.state.open311_forms = forms = RecentForms(
            runtime.pool, settings.open311_retry_window_s, clock_)
        runtime.start_worker("open311-forms-forgotten", forms.keep_forgetting)
        app.state.plans = Plans(app.state.intake.path, catalogue_, vault,
                                app.state.intake.known)
        app.state.residents = use_cases = Residents(runtime.committer, vault)
        app.state.hints = Hints(runtime.committer, vault, use_cases, rules, catalogue_,
                                runtime.pool, clock_, Moments.from_settings(settings))
        # An official schedule replaced a provisional year: due dates counted on it again.
        replanning = Replanning(runtime.pool, app.state.intake)
        runtime.calendar_hooks["intake"] = replanning.run
        # Consent and erasures the log has not learnt yet (a crash, or residents registered
        # before they went on the log): published once, by the workers, who also forget
        # presence grants long over.
        runtime.start_worker("residents-upkeep", use_cases.keep_up)
        runtime.add_consumer(CONSUMER, CaseProjection(),
                             [f"{settings.subject_prefix}.intake.*.*"])
        if runtime.runs_workers:  # a file added or the package upgraded while we were down
            await runtime.replan_at_start()
        runtime.add_consumer(plan_views.CONSUMER, plan_views.PlanProjection(),
                             plan_views.subjects(settings))
        # The residents' "not solved" (survey, post-resolution check) reopens the case.
        runtime.add_consumer(verdicts.CONSUMER, verdicts.Verdicts(app.state.intake),
                             verdicts.subjects(settings.subject_prefix))
        try:
            yield
        finally:
            await stop_runtime(runtime)

    app = new_app(title="sixstep intake", version="1.0",
                  description="Steps 1-4 of the six-step method: listen, empathize, guide, "
                              "serve. Every write takes an Idempotency-Key and returns the "
                              "case version and log position.",
                  lifespan=lifespan)
    app.state.catalogue = catalogue_
    app.state.lookup_guard = guard
    # The writes first: a request is matched against the routes in order, and FastAPI's
    # matching of the auth and ops routes (no path in common with these) came before every
    # write's.
    app.include_router(cases)
    app.include_router(visits)
    install_surface(app, settings, metrics,  # the clerk's page (pages.py); a signed call
                    public=[r"/", r"/counter", CASE_TEXTS],  # from a service (case_texts.py)
                    clock=clock_)
    app.include_router(catalogue)
    app.include_router(plans)
    app.include_router(residents)
    app.include_router(audit)
    app.include_router(hints)
    app.include_router(open311)
    app.include_router(case_texts.router)
    pages.install(app)
    return app


def main() -> None:
    serve("intake", create_app)


if __name__ == "__main__":
    main()
