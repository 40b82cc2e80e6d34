"""The seed's hard cases, played after ``sixstep demo``'s day so a newcomer sees them:

* **the 53-year-old** registering as unemployed declares his special work type; the counter's
  eligibility hints tell him he may retire early and draw unemployment benefit until then,
  and he takes both up (``HintShown``, ``HintTaken``);
* **the resident living alone** who is always late to claim his monthly medical
  reimbursement: living alone is declared with his consent (the log learns one bit,
  ``CareNeedChanged``), last month's reimbursement is declared and has not come, so at its
  next tick follow-up plans a home visit for the team after this one missed month (a
  resident who declared nothing: after two), on the board's "home visits".

Everything goes through intake's HTTP API, as the counter page would; the residents' personal
data is made up (valid check digits) and stays in the vault.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.cli.demo import CHECK, WEIGHTS, DemoResident, post_resident


def _id_number(born: date, sequence: int) -> str:
    first17 = f"310115{born:%Y%m%d}{sequence:03d}"
    return first17 + CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def story_residents(today: date) -> tuple[DemoResident, DemoResident]:
    """The 53-year-old man and the 72-year-old living alone, as of ``today``."""
    miner = DemoResident(name="赵国庆", id_number=_id_number(
        today - timedelta(days=int(53.5 * 365.25)), 137),  # 53 and a half: 53 in the story
        phone="13761234508", address="浦东新区梅花路88弄6号")
    alone = DemoResident(name="钱德明", id_number=_id_number(date(today.year - 72, 3, 3), 211),
                         phone="13671234519", address="浦东新区白杨路21弄2号")
    return miner, alone


@dataclass
class StoryTally:
    hints_shown: list[str] = field(default_factory=list)
    hints_taken: list[str] = field(default_factory=list)
    because: str = ""
    care_declared: bool = False
    living_alone: str | None = None  # the resident's opaque id
    obligation_declared: bool = False
    errors: list[str] = field(default_factory=list)


class _Counter:
    """One clerk at one window, through intake's API."""

    def __init__(self, client: httpx.AsyncClient, token: str, center: str, tally: StoryTally):
        self.client, self.center, self.tally = client, center, tally
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   *, keyed: bool = True) -> dict[str, Any] | None:
        headers = {**self.auth, **({"Idempotency-Key": f"story-{uuid.uuid4().hex}"}
                                   if keyed else {})}
        r = await self.client.request(method, path, json=body, headers=headers)
        if r.status_code >= 400:
            self.tally.errors.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
            return None
        return r.json()

    async def register(self, person: DemoResident) -> str | None:
        r = await post_resident(self.client, person, self.auth)
        if r.status_code >= 400:
            self.tally.errors.append(f"POST /residents: {r.status_code} {r.text[:200]}")
            return None
        return str(r.json()["resident_id"])

    async def open_case(self, resident: str, item: str, words: str, at: datetime
                        ) -> str | None:
        opened = await self.call("POST", "/cases", {
            "center_id": self.center, "counter_id": "window-2", "service_item": item,
            "resident_id": resident, "occurred_at": at.isoformat()})
        if opened is None:
            return None
        await self.call("POST", f"/cases/{opened['id']}/hear",
                        {"words": words, "occurred_at": (at + timedelta(minutes=1)).isoformat()})
        return str(opened["id"])


async def play_stories(intake: str, token_of: Callable[[str], str],
                       center: str = "SH-PD-HUAMU") -> StoryTally:
    """Play both stories against intake at ``intake`` (clerk-002's window)."""
    tally = StoryTally()
    now = datetime.now(UTC) - timedelta(minutes=30)
    miner, alone = story_residents(now.date())
    async with httpx.AsyncClient(base_url=intake, timeout=30, trust_env=False) as client:
        counter = _Counter(client, token_of("clerk-002"), center, tally)

        # The 53-year-old: unemployment registration, then what else he may be entitled to.
        resident = await counter.register(miner)
        if resident is not None:
            await counter.open_case(resident, "EMP-UNEMPLOYMENT-REGISTRATION",
                                    "厂里关了，我想登记失业。我在井下干了二十年。", now)
            await counter.call("PUT", f"/residents/{resident}/facts",
                               {"facts": ["special_work_type"], "consent": True})
            hints = await counter.call("POST", f"/residents/{resident}/hints", keyed=False)
            for hint in (hints or {}).get("items", []):
                tally.hints_shown.append(hint["service_item"])
                tally.because = hint["because"]["en"]
                if hint["status"] != "shown":  # the demo played before: taken already
                    if hint["status"] == "taken":
                        tally.hints_taken.append(hint["service_item"])
                    continue
                case_id = await counter.open_case(resident, hint["service_item"],
                                                  "窗口提示我可以办这个，我要办", now)
                taken = await counter.call("POST", f"/hints/{hint['hint_id']}/taken",
                                           {"case_id": case_id})
                if taken is not None:
                    tally.hints_taken.append(hint["service_item"])

        # The resident living alone: last month's reimbursement has not come.
        resident = await counter.register(alone)
        tally.living_alone = resident
        if resident is not None:
            tally.care_declared = await counter.call(
                "PUT", f"/residents/{resident}/facts",
                {"facts": ["lives_alone"], "consent": True}) is not None
            case_id = await counter.open_case(resident, "MI-MEDICAL-REIMBURSEMENT",
                                              "上个月的报销单据还没交，我一个人住，老是忘", now)
            if case_id is not None:
                due = (now - timedelta(days=40)).date()
                tally.obligation_declared = await counter.call(
                    "POST", f"/cases/{case_id}/obligations", {
                        "description": "每月报销单据", "cadence": "monthly",
                        "next_due_on": due.isoformat(), "tracked_from": due.isoformat(),
                        "occurred_at": (now + timedelta(minutes=3)).isoformat()}) is not None
    return tally


def print_stories(tally: StoryTally, console: Console) -> None:
    table = Table(title="The seed's hard cases")
    table.add_column("story")
    table.add_column("what happened")
    table.add_row("53, special work type declared",
                  f"hints ({tally.because}): {', '.join(tally.hints_shown) or 'none'}; "
                  f"taken: {', '.join(tally.hints_taken) or 'none'}")
    table.add_row("lives alone, reimbursement not claimed",
                  "living alone declared with consent; last month's reimbursement declared: "
                  "follow-up plans a home visit at its next tick (the board's home visits)"
                  if tally.care_declared and tally.obligation_declared else "not played")
    console.print(table)
    if tally.errors:
        console.print(f"[red]{len(tally.errors)} story requests failed[/red]; first: "
                      f"{escape(str(tally.errors[0]))}")
