"""The operations routes every service answers: its consumers, and replaying dead letters.

``sixstep dlq replay`` talks to these: only the service that owns a consumer has its handler,
so only that service can apply a dead letter exactly once (``shared.bus.deadletters``).

Access, the first that applies: a caller the service has authenticated with the ``ops`` role
(when the service checks bearer tokens, it puts the verified principal in the request's
state); with ``OPS_TOKEN`` set, ``Authorization: Bearer <OPS_TOKEN>``; otherwise only requests
from the loopback interface (``docker compose exec``, ``kubectl exec`` and ``kubectl
port-forward`` all arrive there).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from pydantic import BaseModel, Field

from shared.bus.deadletters import replay_dead_letters
from shared.http.errors import problem
from shared.kernel.holidays import HolidaysFileError
from shared.runtime import replan_pending
from shared.runtime.calendars import CalendarPublic, CalendarReloadPublic

if TYPE_CHECKING:
    from shared.runtime.lifecycle import Runtime

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class ConsumerPublic(BaseModel):
    name: str
    handler: str
    filter_subjects: list[str]
    running_here: bool
    applied: int
    dead_lettered: int
    merged: int = Field(0, description="Batches taken into the batch before while it waited "
                        "for its commands' round (a merging handler's: feedback's intake "
                        "follower), counted in ``applied`` too")
    merges_refused: int = Field(0, description="Batches read ahead that the handler refused "
                                "to merge (a lock not free at once, a statement's time, an "
                                "error): handed back, applied as the next batch")
    pending: int = Field(description="Events on its subjects not yet applied")
    oldest_unapplied_s: float = Field(
        description="Seconds the oldest of them has been on the stream (0 when none)")


class ConsumersPublic(BaseModel):
    service: str
    consumers: list[ConsumerPublic]


class ReplayRequest(BaseModel):
    consumer: str = Field(description="The consumer named in the dead letter (Sixstep-Consumer)")
    seqs: list[int] | None = Field(
        None, description="Dead-letter stream sequences; all of the consumer's when omitted")


class ReplayPublic(BaseModel):
    consumer: str
    replayed: list[int]
    already_applied: list[int]
    failed: list[dict[str, object]]
    late: list[int] = Field(description="Replayed after later events of their case")
    refused: list[dict[str, object]] = Field(
        default_factory=list, description="Letters that are not the log's event at their "
        "stream sequence (forged, of another stream, or no longer in the log): not applied, "
        "kept")


def _runtime(request: Request,
             authorization: Annotated[str | None, Header()] = None) -> Any:
    """The service's runtime, for a caller allowed to operate it."""
    settings = request.app.state.settings
    principal = request.scope.get("state", {}).get("principal")
    token = settings.ops_token.get_secret_value() if settings.ops_token else None
    if str(getattr(principal, "role", "")) == "ops":
        pass
    elif token:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise problem(401, "ops_token_required",
                          "the /ops routes need Authorization: Bearer <OPS_TOKEN>")
    elif request.client is None or request.client.host not in LOOPBACK:
        raise problem(403, "ops_loopback_only",
                      "without OPS_TOKEN the /ops routes answer only on the loopback "
                      "interface (docker exec, kubectl port-forward)")
    runtime = request.app.state.ops_runtime()
    if runtime is None:
        raise problem(503, "starting", "the service is starting")
    return runtime


RuntimeDep = Annotated[Any, Depends(_runtime)]


def install_ops(app: FastAPI, get_runtime: Callable[[], Runtime | None]) -> None:
    app.state.ops_runtime = get_runtime
    router = APIRouter(prefix="/ops", tags=["ops"])

    @router.get("/consumers", summary="This service's consumers and their counters")
    async def consumers(runtime: RuntimeDep) -> ConsumersPublic:
        return ConsumersPublic(service=runtime.service, consumers=[
            ConsumerPublic(name=c.name, handler=runtime.base_names.get(c.name, c.name),
                           filter_subjects=c.filter_subjects,
                           running_here=c.name in runtime.driven, applied=c.stats.applied,
                           dead_lettered=c.stats.dead_lettered, merged=c.stats.merged,
                           merges_refused=c.stats.merges_refused,
                           pending=c.stats.pending,
                           oldest_unapplied_s=round(c.stats.oldest_unapplied_age(), 3))
            for c in runtime.consumers.values()])

    @router.post("/dlq/replay", summary="Apply a consumer's dead letters once, then drop them")
    async def replay(body: ReplayRequest, runtime: RuntimeDep) -> ReplayPublic:
        handler = runtime.handler_for(body.consumer)
        if handler is None:
            raise problem(404, "not_found", f"no consumer {body.consumer!r} in this service",
                          consumers=sorted(runtime.consumers))
        report = await replay_dead_letters(runtime.nc, runtime.pool, runtime.settings,
                                           body.consumer, handler, body.seqs,
                                           filters=runtime.filters_for(body.consumer))
        return ReplayPublic(consumer=report.consumer, replayed=report.replayed,
                            already_applied=report.already_applied, failed=report.failed,
                            late=report.late, refused=report.refused)

    def _has_calendar(runtime: Any) -> None:
        if runtime.calendars is None:
            raise problem(404, "not_found", "this service has no working-day calendar")

    async def _calendar(runtime: Any) -> CalendarPublic:
        _has_calendar(runtime)
        today = runtime.clock.now().astimezone(runtime.settings.tz).date()
        status = runtime.calendars.status(today)
        pending = None
        try:
            pending = await replan_pending.read(runtime.pool, runtime.service)
        except Exception as exc:  # the store away: the calendar is still this replica's
            status.warnings.append(f"a re-planning pending could not be read (the store: "
                                   f"{type(exc).__name__})")
        return CalendarPublic(service=runtime.service,
                              replan_pending=pending.public if pending is not None else None,
                              **status.model_dump())

    @router.get("/calendar", summary="The working-day calendar: years covered per center, on "
                "what source (package, file, provisional), warnings, a re-planning pending")
    async def calendar(runtime: RuntimeDep) -> CalendarPublic:
        return await _calendar(runtime)

    @router.post("/calendar/reload", summary="Read the holidays files again; re-plan what was "
                 "provisional; tell the other replicas", responses={422: {"description": (
                     "a holidays file cannot be used: nothing changed (file and line named)")}})
    async def reload_calendar(runtime: RuntimeDep) -> CalendarReloadPublic:
        _has_calendar(runtime)
        try:
            outcome = await runtime.reload_calendars()
        except HolidaysFileError as exc:
            raise problem(422, "holidays_file_invalid", f"{exc}; nothing was changed",
                          file=exc.path, line=exc.line, reason=exc.reason) from exc
        except ValueError as exc:  # office hours
            raise problem(422, "calendar_settings_invalid", f"{exc}; nothing was changed"
                          ) from exc
        return CalendarReloadPublic(service=runtime.service, changed=outcome["changed"],
                                    replanned=outcome["hooks"], failed=outcome["failed"],
                                    retry_scheduled=outcome["retry_scheduled"],
                                    calendar=await _calendar(runtime))

    app.include_router(router)
