"""A clerk of another center who tries our case ids gets the answers an id nobody has gets, and
the operators see the attempt: one ``access.refused_out_of_reach`` log line per refusal,
naming the caller, the kind and opaque id of what was named and whose it is, and a count in
``sixstep_refused_out_of_reach_total``. An id nobody has leaves no such line (it is nobody's
to protect). Before December 2026 nothing recorded such a probe: the 404 that hid our case
from them hid their probing from us too."""

from __future__ import annotations

from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from services.intake.domain import case_id_for
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at
from tests.support import bearer, headers, running

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
                'what="case"} 2.0') in metrics
        assert ('sixstep_refused_out_of_reach_total{reason="another_center",service="intake",'
                'what="center"} 1.0') in metrics
