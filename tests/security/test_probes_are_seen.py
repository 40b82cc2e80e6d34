"""A clerk of another center who tries our case ids gets the answers an id nobody has gets, and
the operators see the attempt: one ``access.refused_out_of_reach`` log line per refusal,
naming the caller, the kind and opaque id of what was named and whose it is. An id nobody has
leaves no such line (it is nobody's to protect); the public count moves alike for both. Before
December 2026 nothing recorded such a probe: the 404 that hid our case from them hid their
probing from us too."""

from __future__ import annotations

import httpx
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from services.intake.domain import case_id_for
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at
from tests.support import bearer, headers, running, wait_until

OTHER = "SH-PD-ZHANGJIANG"


async def test_another_centers_clerk_probing_our_case_ids_is_logged_and_counted(
        settings: Settings) -> None:
    async with running(create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))) as intake:
        opened = await intake.post("/cases", headers=headers("window-3-0001"), json={
            "center_id": CENTER, "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert opened.status_code == 201, opened.text
        ours, nobodys = str(case_id_for(CENTER, "window-3-0001")), str(
            case_id_for(CENTER, "window-3-9999"))
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        with capture_logs(processors=[merge_contextvars]) as logs:
            for case in (ours, nobodys):
                read = await intake.get(f"/cases/{case}", headers=there,
                                        params={"after": opened.json()["position"]})
                step = await intake.post(f"/cases/{case}/hear", json={"words": "我想问问"},
                                         headers={**there, **headers(f"hear-{case}")})
                assert (read.status_code, step.status_code) == (404, 404), (read.text, step.text)
            listed = await intake.get("/cases", headers=there, params={"center_id": CENTER})
            assert listed.status_code == 403, listed.text
        seen = [e for e in logs if e["event"] == "access.refused_out_of_reach"]
        assert [(e["what"], e["id"], e["status"], e["route"]) for e in seen] == [
            ("case", ours, 404, "/cases/{case_id}"),
            ("case", ours, 404, "/cases/{case_id}/hear"),
            ("center", None, 403, "/cases")], seen
        for e in seen:
            assert (e["actor"], e["role"], e["actor_center"], e["owner_center"],
                    e["reason"]) == ("clerk-900", "clerk", OTHER, CENTER, "another_center")
        metrics = (await intake.get("/metrics")).text
        assert ('sixstep_refused_out_of_reach_total{reason="another_center",service="intake",'
                'what="center"} 1.0') in metrics
        assert 'what="case"' not in metrics  # the 404s: counted as an id nobody has is
        for route in ("/cases/{case_id}", "/cases/{case_id}/hear"):
            assert (f'sixstep_not_found_by_id_total{{route="{route}",service="intake"}} 2.0'
                    ) in metrics, route


async def test_a_name_typed_into_a_center_filter_never_reaches_the_probe_line(
        settings: Settings) -> None:
    """A clerk pastes a resident's name (or any text) where a center code goes: the list is
    refused as another center's, and the line says a center was asked for that is no center
    code, never what was typed (the filter is the caller's text: a name typed alone has no
    shape the log's scrubber knows, and a path's center is not bounded in length)."""
    async with running(create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))) as intake:
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        with capture_logs(processors=[merge_contextvars]) as logs:
            for typed in ("王秀英", "SH-PD-HUAMU"):
                listed = await intake.get("/cases", headers=there, params={"center_id": typed})
                assert listed.status_code == 403, listed.text
        seen = [e["owner_center"] for e in logs if e["event"] == "access.refused_out_of_reach"]
        assert seen == ["(not a center code)", "SH-PD-HUAMU"], seen
        assert "王秀英" not in repr(logs)


def _counts(metrics: str) -> dict[str, float]:
    """The counters ``/metrics`` shows anyone (it takes no token), by series."""
    return {series: float(value) for series, value in (
        line.rsplit(" ", 1) for line in metrics.splitlines() if line and line[0] != "#")
        if series.split("{", 1)[0].endswith("_total")}


async def _our_case_read(intake: httpx.AsyncClient, key: str) -> str:
    """A case opened at our center under ``key``, its read model caught up: its id."""
    opened = await intake.post("/cases", headers=headers(key), json={
        "center_id": CENTER, "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY"})
    assert opened.status_code == 201, opened.text
    ours = str(case_id_for(CENTER, key))
    settled = await intake.get(f"/cases/{ours}", params={"after": opened.json()["position"]})
    assert settled.status_code == 200, settled.text
    return ours


async def test_the_public_metrics_cannot_tell_another_centers_case_from_none(
        settings: Settings) -> None:
    """``/metrics`` answers without a token, to whoever reaches the service (the counter apps
    do). Another center's clerk reads it, tries a case id, reads it again: what moved must be
    the same for our case as for an id nobody has, or the count of refusals tells them what
    the 404 hid (which ids are cases here: they are worked out from a window and a running
    number). Until December 2026 ``sixstep_refused_out_of_reach_total{what="case"}`` moved
    for ours only."""
    async with running(create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))) as intake:
        ours = await _our_case_read(intake, "window-3-0002")
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        moved = []
        for case in (ours, str(case_id_for(CENTER, "window-3-9999"))):
            before = _counts((await intake.get("/metrics")).text)
            read = await intake.get(f"/cases/{case}", headers=there)
            step = await intake.post(f"/cases/{case}/hear", json={"words": "我想问问"},
                                     headers={**there, **headers(f"hear-{case}")})
            assert (read.status_code, step.status_code) == (404, 404), (read.text, step.text)
            after = _counts((await intake.get("/metrics")).text)
            moved.append({s: after[s] - before.get(s, 0.0) for s in after
                          if after[s] != before.get(s, 0.0)})
        assert moved[0] == moved[1], moved


async def test_the_probe_line_is_written_after_the_answer_has_gone(settings: Settings) -> None:
    """The line is the operators' and costs its writing: written before the answer went, it
    made another center's case id answer later than an id nobody has (some 0.4 ms of CPU a
    request, in-process), which the caller can time. It is written once the 404 is sent."""
    app = create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))
    async with running(app) as intake:
        ours = await _our_case_read(intake, "window-3-0003")
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        order: list[str] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                order.append("answered")

        def seen(_: object, __: str, event: dict[str, object]) -> dict[str, object]:
            if event["event"] == "access.refused_out_of_reach":
                order.append("logged")
            return event

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": f"/cases/{ours}",
                 "raw_path": f"/cases/{ours}".encode(), "root_path": "", "query_string": b"",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in there.items()],
                 "client": ("127.0.0.1", 50000), "server": ("test", 80), "state": {}}
        with capture_logs(processors=[merge_contextvars, seen]):
            await app(scope, receive, send)
        assert order == ["answered", "logged"], order


async def test_a_prober_trying_ids_fast_writes_a_minutes_first_lines_and_then_a_count(
        settings: Settings) -> None:
    """A script of another center tries 25 of our case ids in a minute: the log has the
    first 20 lines, then, at its next try after the minute, one line saying 5 were left
    out; the public count took all 25 (as for ids nobody has). Before December 2026 each
    try wrote its line: a prober as fast as the service answers flooded the log."""
    app = create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))
    async with running(app) as intake:
        ours = await _our_case_read(intake, "window-3-0004")
        minute = [0.0]
        app.state.probe_lines.clock = lambda: minute[0]
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        with capture_logs(processors=[merge_contextvars]) as logs:
            for _ in range(25):
                assert (await intake.get(f"/cases/{ours}", headers=there)).status_code == 404
            minute[0] = 61.0  # the next minute (the lines' own clock, not the center's)
            assert (await intake.get(f"/cases/{ours}", headers=there)).status_code == 404
        said = [(e["event"], e.get("left_out")) for e in logs
                if e["event"].startswith("access.refused_out_of_reach")]
        assert said == [("access.refused_out_of_reach", None)] * 20 + [
            ("access.refused_out_of_reach.suppressed", 5),
            ("access.refused_out_of_reach", None)], said
        assert [(e["actor"], e["actor_center"]) for e in logs if e["event"].endswith(
            "suppressed")] == [("clerk-900", OTHER)]
        metrics = (await intake.get("/metrics")).text
        assert ('sixstep_not_found_by_id_total{route="/cases/{case_id}",service="intake"} 26.0'
                ) in metrics


async def test_a_prober_who_stops_inside_the_minute_has_the_count_said_when_it_ends(
        settings: Settings) -> None:
    """A script tries 25 of our ids in a minute, then stops: the service's timer says the 5
    left out once the minute is over, with no further try, and a service stopped inside a
    minute says what that minute left out. Until stop 49 the count waited for the prober's
    next try, which never came: their last minute's count was never in the log."""
    app = create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))
    lines = app.state.probe_lines
    minute = [0.0]
    lines.clock, lines.window_s = (lambda: minute[0]), 1.0  # a 1 s "minute" held still
    there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
    with capture_logs(processors=[merge_contextvars]) as logs:
        async with running(app) as intake:
            ours = await _our_case_read(intake, "window-3-0005")
            for _ in range(25):
                assert (await intake.get(f"/cases/{ours}", headers=there)).status_code == 404
            minute[0] = 1.0  # the minute is over; the prober tries nothing more

            async def said() -> bool:
                return any(e["event"].endswith("suppressed") for e in logs)
            await wait_until(said, what="the timer's count of the lines left out")
            for _ in range(22):  # a new minute: 20 lines, 2 left out, then the stop
                assert (await intake.get(f"/cases/{ours}", headers=there)).status_code == 404
        suppressed = [(e["left_out"], e["actor"], e["actor_center"]) for e in logs
                      if e["event"] == "access.refused_out_of_reach.suppressed"]
        assert suppressed == [(5, "clerk-900", OTHER), (2, "clerk-900", OTHER)], suppressed
