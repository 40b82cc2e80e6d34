"""The seed's cancer case, played through the HTTP API: the worked example of a linked plan.

An unemployed resident with cancer, not yet entitled to medical insurance, comes to the
counter. The clerk opens two cases and draws up one plan across three items and two months:

1. this month's end: his flexible-employment contributions are suspended from next month
   (SI-FLEXIBLE-CONTRIBUTION-SUSPENSION);
2. next month: he draws his last month of unemployment benefit, with its medical cover
   (SI-UNEMPLOYMENT-BENEFIT);
3. the month after, once the benefit has ended: his family applies for the resident medical
   subsidy that pays 70 % of his bills (MI-RESIDENT-MEDICAL-SUBSIDY), which depends on step 2.

Later his wife comes and applies for him (代办, relation ``spouse``, the marriage certificate
seen): her case is linked to step 3. ``sixstep demo`` plays it, and the tests
(``tests/intake/test_plans.py``) check every step of it. The residents are made up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from shared.cli.demo import DemoResident, demo_residents, post_resident

ITEMS = ("SI-FLEXIBLE-CONTRIBUTION-SUSPENSION", "SI-UNEMPLOYMENT-BENEFIT",
         "MI-RESIDENT-MEDICAL-SUBSIDY")


def month_after(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class CancerStory:
    """What the story left: the two residents, the cases, the plan and its steps' months."""

    patient: str
    wife: str
    suspension_case: str
    benefit_case: str
    plan_id: str
    months: tuple[date, date]
    subsidy_case: str | None = None
    last_position: int = 0


class StoryFailed(RuntimeError):
    pass


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any],
                run: str, step: str) -> dict[str, Any]:
    r = await client.post(path, json=body, headers={"Idempotency-Key": f"cancer-{run}-{step}"})
    if r.status_code >= 400:
        raise StoryFailed(f"{path}: {r.status_code} {r.text[:300]}")
    answer: dict[str, Any] = r.json()
    return answer


async def _register(client: httpx.AsyncClient, person: DemoResident) -> str:
    r = await post_resident(client, person)
    if r.status_code >= 400:
        raise StoryFailed(f"/residents: {r.status_code} {r.text[:300]}")
    return str(r.json()["resident_id"])


async def _case(client: httpx.AsyncClient, run: str, name: str, center: str, counter: str,
                at: datetime, item: str, words: str, restated: str, policy: str,
                **acting: Any) -> str:
    opened = await _post(client, "/cases", {
        "center_id": center, "counter_id": counter, "service_item": item,
        "occurred_at": at.isoformat(), **acting}, run, f"{name}-open")
    case = f"/cases/{opened['id']}"
    await _post(client, f"{case}/hear", {"words": words, "occurred_at": at.isoformat()},
                run, f"{name}-hear")
    await _post(client, f"{case}/restate", {"restatement": restated, "confirmed": True,
                                            "occurred_at": at.isoformat()}, run,
                f"{name}-restate")
    await _post(client, f"{case}/concerns", {
        "needs": ["看病的钱", "社保不断"], "worries": ["治疗费用", "断保"],
        "emotion": "distressed", "urgency": "high", "occurred_at": at.isoformat()},
        run, f"{name}-concerns")
    await _post(client, f"{case}/guidance", {
        "policy_basis": policy, "eligibility": "eligible",
        "promised": "按计划逐月办理，到期前提醒", "occurred_at": at.isoformat()},
        run, f"{name}-guidance")
    return str(opened["id"])


async def the_patient_comes(client: httpx.AsyncClient, at: datetime,
                            center: str = "SH-PD-HUAMU", counter: str = "window-3",
                            run: str | None = None) -> CancerStory:
    """Day one: the resident with cancer at the counter; two cases and the plan."""
    run = run or uuid.uuid4().hex[:8]
    patient_data, wife_data = demo_residents(9020, 2)
    patient = await _register(client, patient_data)
    wife = await _register(client, wife_data)
    suspension = await _case(
        client, run, "suspension", center, counter, at, ITEMS[0],
        "我查出癌症了，没法上班，灵活就业的社保实在交不起了",
        "您患病无法工作，想暂停灵活就业人员社保缴费", "灵活就业人员社会保险暂停缴费相关规定",
        resident_id=patient)
    benefit = await _case(
        client, run, "benefit", center, counter, at, ITEMS[1],
        "失业金只剩最后一个月了，以后看病怎么办",
        "您想领取最后一个月失业保险金，并了解领取期间的医疗补助", "《失业保险条例》",
        resident_id=patient)
    first, second = month_after(at.date(), 1), month_after(at.date(), 2)
    plan = await _post(client, "/plans", {
        "center_id": center, "counter_id": counter, "resident_id": patient,
        "title": "治疗期间的保障衔接：暂停缴费、领完失业金、医疗费用补助由家人代办",
        "occurred_at": at.isoformat(),
        "steps": [
            {"service_item": ITEMS[0], "effective_on": first.isoformat(), "timing": "month",
             "case_id": suspension, "what": "从下月起暂停灵活就业社保缴费，减轻治疗期间负担"},
            {"service_item": ITEMS[1], "effective_on": first.isoformat(), "timing": "month",
             "case_id": benefit,
             "what": "领取最后一个月失业保险金，同月享受失业期间医疗补助"},
            {"service_item": ITEMS[2], "effective_on": second.isoformat(), "timing": "month",
             "depends_on": 2,
             "what": "失业金领完的次月起，家属代为申请城乡居民医保医疗费用补助，医疗费报销70%"},
        ]}, run, "plan")
    return CancerStory(patient=patient, wife=wife, suspension_case=suspension,
                       benefit_case=benefit, plan_id=str(plan["id"]), months=(first, second),
                       last_position=int(plan["position"]))


async def the_family_applies(client: httpx.AsyncClient, story: CancerStory, at: datetime,
                             center: str = "SH-PD-HUAMU", counter: str = "window-3",
                             run: str | None = None) -> CancerStory:
    """Later: his wife applies for the subsidy for him (代办), and her case carries step 3."""
    run = run or uuid.uuid4().hex[:8]
    story.subsidy_case = await _case(
        client, run, "subsidy", center, counter, at, ITEMS[2],
        "我替我爱人来申请医疗费用补助，他在化疗，来不了",
        "您代您爱人申请城乡居民医保医疗费用补助", "城乡居民基本医疗保险医疗费用补助办法",
        resident_id=story.patient, applicant_id=story.wife, relation="spouse",
        proof_seen="marriage_certificate")
    linked = await _post(client, f"/plans/{story.plan_id}/links", {
        "step": 3, "case_id": story.subsidy_case, "occurred_at": at.isoformat()},
        run, "link")
    story.last_position = int(linked["position"])
    return story


async def play_and_show(intake: str, token: str, center: str, console: Any) -> CancerStory:
    """``sixstep demo``'s part: play the story now (his wife comes the same day) and print
    the plan as the resident is given it."""
    from rich.table import Table

    now = datetime.now(UTC) - timedelta(minutes=30)
    async with httpx.AsyncClient(base_url=intake, timeout=30, trust_env=False, headers={
            "Authorization": f"Bearer {token}"}) as client:
        story = await the_patient_comes(client, now, center)
        await the_family_applies(client, story, now + timedelta(minutes=20), center)
        r = await client.get(f"/plans/{story.plan_id}", params={"after": story.last_position})
        r.raise_for_status()
        plan = r.json()
    table = Table(title=f"The resident with cancer: {plan['title']}")
    for column in ("step", "from", "item", "what", "after step", "case"):
        table.add_column(column)
    for step in plan["steps"]:
        when = step["effective_on"][:7] if step["timing"] == "month" else step["effective_on"]
        table.add_row(str(step["seq"]), when, f"{step['name_zh']} ({step['service_item']})",
                      step["what"], str(step["depends_on"] or ""),
                      (step["case_id"] or "")[:8])
    console.print(table)
    console.print(f"Plan {story.plan_id}: shown on each of its cases "
                  f"(GET /cases/<id> -> plans) and on the counter page; follow-up reminds "
                  "ahead of each step.")
    return story
