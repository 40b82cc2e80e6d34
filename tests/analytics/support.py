"""A small known history for the analysts' tests: cases built as envelopes, put on the stream."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from shared.bus import connect, ensure_streams, event_subject
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
HUAMU = "SH-PD-HUAMU"
LUJIAZUI = "SH-PD-LUJIAZUI"
HARDSHIP = "SA-HARDSHIP-SUBSIDY"
UNEMPLOYMENT = "EMP-UNEMPLOYMENT-REGISTRATION"
PHONE = "13812345678"

_positions = itertools.count(1)


@dataclass
class CaseStory:
    """One visit: opened at a window, heard, concerns noted, guided, maybe resolved."""

    center: str
    item: str
    opened_at: datetime
    emotion: str = "calm"
    outcome: str | None = "resolved"
    defused: bool = True
    reopened: bool = False
    concerns_v1: bool = False
    words: str = "想问问补贴怎么申请"
    case_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def events(self) -> list[dict[str, Any]]:
        """The case's events as wire dicts (v1 ConcernsNoted when ``concerns_v1``)."""
        steps: list[tuple[str, int, dict[str, Any]]] = [
            ("CaseOpened", 1, {"center_id": self.center, "counter_id": "window-3",
                               "clerk_id": "clerk-017", "channel": "counter",
                               "service_item": self.item,
                               "resident_id": str(uuid.uuid4())}),
            ("RequestHeard", 1, {"words": self.words}),
        ]
        if self.concerns_v1:  # exactly as the relay published it before v2
            steps.append(("ConcernsNoted", 1, {"needs": ["生活费"], "worries": [],
                                                "emotion": self.emotion, "urgency": "high"}))
        else:
            steps.append(("ConcernsNoted", 2, {
                "needs": ["生活费"], "worries": [], "emotion": self.emotion,
                "urgency": "normal",
                "needs_defusing": self.emotion in ("upset", "angry", "distressed")}))
        steps.append(("GuidanceGiven", 1, {"service_item": self.item, "policy_basis": "条例",
                                            "eligibility": "eligible", "promised": "",
                                            "missing_documents": []}))
        if self.outcome:
            steps.append(("CaseResolved", 1, {"outcome": self.outcome, "explanation": "已办结",
                                               "emotion_defused": self.defused}))
        if self.reopened:
            steps.append(("CaseReopened", 1, {"reason": "材料有误"}))
        out = []
        for n, (type_name, version, payload) in enumerate(steps, start=1):
            at = self.opened_at + timedelta(minutes=5 * (n - 1))
            out.append({
                "event_id": str(event_id_for("intake", self.case_id, n)), "type": type_name,
                "version": version, "service": "intake", "position": next(_positions),
                "aggregate_id": str(self.case_id), "aggregate_version": n,
                "case_id": str(self.case_id), "center_id": self.center,
                "occurred_at": at.isoformat(), "recorded_at": (at + timedelta(seconds=3))
                .isoformat(), "causation_id": f"k-{self.case_id.hex[:8]}-{n}",
                "correlation_id": None, "actor": "clerk-017", "payload": payload})
        return out


def at(day: str, hour: int = 9, minute: int = 0) -> datetime:
    y, m, d = map(int, day.split("-"))
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI)


async def publish(settings: Settings, stories: list[CaseStory]) -> int:
    """Put the stories' events on the test's stream, in time order; returns how many."""
    events = sorted((e for s in stories for e in s.events()), key=lambda e: e["recorded_at"])
    nc = await connect(settings, "test-history")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for e in events:
            await js.publish(
                event_subject(settings, "intake", e["type"], uuid.UUID(e["case_id"])),
                orjson.dumps(e), headers={"Nats-Msg-Id": f"intake:{e['position']}"})
    finally:
        await nc.close()
    return len(events)


def check_current(data: dict[str, Any]) -> Envelope:
    """A wire dict as the current contract version (what replay must give)."""
    return REGISTRY.current(Envelope.model_validate(data))


def month_of_march_stories() -> list[CaseStory]:
    """Ten visits over two centers, 27 Feb - 3 Mar 2026 (across a month boundary).

    Huamu, opened 2 Mar: 4 cases, 3 resolved + 1 partly; one upset (defused), one angry (not).
    Huamu, opened 3 Mar: 2 cases, 1 resolved, 1 open. Huamu 27 Feb: 1 resolved then reopened.
    Lujiazui 2 Mar: 3 cases, all resolved, two distressed (defused), one of them recorded
    under ConcernsNoted v1 (before ``needs_defusing``).
    """
    return [
        CaseStory(HUAMU, HARDSHIP, at("2026-03-02", 9), emotion="upset", defused=True,
                  words=f"我想申请困难补助，电话{PHONE}"),
        CaseStory(HUAMU, HARDSHIP, at("2026-03-02", 10), emotion="angry", defused=False),
        CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-02", 11)),
        CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-02", 14), outcome="partly_resolved"),
        CaseStory(HUAMU, HARDSHIP, at("2026-03-03", 9)),
        CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-03", 10), outcome=None),
        CaseStory(HUAMU, HARDSHIP, at("2026-02-27", 16), reopened=True),
        CaseStory(LUJIAZUI, HARDSHIP, at("2026-03-02", 9), emotion="distressed"),
        CaseStory(LUJIAZUI, UNEMPLOYMENT, at("2026-03-02", 9, 30), concerns_v1=True,
                  emotion="distressed"),
        CaseStory(LUJIAZUI, HARDSHIP, at("2026-03-02", 10)),
    ]
