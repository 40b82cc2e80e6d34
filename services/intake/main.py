"""Intake's wiring: settings -> store, bus, group commit, relay, read model, HTTP API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI

from services.intake import pages
from services.intake.api import cases, catalogue
from services.intake.application import Intake, IntakeApplication, system_clock
from services.intake.known_people import KnownPeople
from services.intake.open311 import router as open311
from services.intake.projections import CONSUMER, DDL, CaseProjection
from services.intake.residents import audit, residents
from services.intake.vault import DDL as VAULT_DDL
from services.intake.vault import Sealer, Vault
from shared.catalogue import load_catalogue
from shared.http import Metrics, new_app
from shared.moments import Moments
from shared.service import install_surface, serve, start_runtime, stop_runtime
from shared.settings import Settings

SERVICE = "intake"


def create_app(settings: Settings, *, clock: Callable[[], datetime] = system_clock) -> FastAPI:
    """``clock``: the service's now (what ``occurred_at`` is checked against); tests set it."""
    catalogue_ = load_catalogue(settings.catalogue_paths)
    sealer = Sealer.from_settings(settings)
    metrics = Metrics(SERVICE)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(settings, SERVICE, IntakeApplication,
                                      [*DDL, *VAULT_DDL], metrics)
        app.state.runtime = runtime
        app.state.pool = runtime.pool
        app.state.vault = vault = Vault(runtime.pool, sealer)
        app.state.intake = Intake(runtime.committer, catalogue_,
                                  KnownPeople(runtime.application, vault),
                                  Moments.from_settings(settings), clock)
        runtime.add_consumer(CONSUMER, CaseProjection(),
                             [f"{settings.subject_prefix}.intake.*.*"])
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
    install_surface(app, settings, metrics,
                    public=[r"/", r"/counter"])  # the clerk's page (pages.py)
    app.include_router(cases)
    app.include_router(catalogue)
    app.include_router(residents)
    app.include_router(audit)
    app.include_router(open311)
    pages.install(app)
    return app


def main() -> None:
    serve("intake", create_app)


if __name__ == "__main__":
    main()
