"""``sixstep demo``: a realistic morning at a center's counters, played through the HTTP API."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.cli import app

console = Console()

# What residents came about, in their own words, with the concerns a clerk would hear.
VISITS: list[dict[str, Any]] = [
    {"item": "SA-HARDSHIP-SUBSIDY", "words": "家里老人生病，开销太大，想问问能不能申请困难补助",
     "restated": "您想为家庭申请困难补助，主要因为老人医疗支出大", "needs": ["生活补助"],
     "worries": ["材料不全"], "policy": "《社会救助暂行办法》", "documents": ["收入证明"]},
    {"item": "EMP-UNEMPLOYMENT-REGISTRATION", "words": "上个月公司裁员了，我想先登记失业",
     "restated": "您需要办理失业登记", "needs": ["失业登记", "找工作"], "worries": ["没收入"],
     "policy": "《就业服务与就业管理规定》", "documents": ["解除劳动合同证明"]},
    {"item": "SI-UNEMPLOYMENT-BENEFIT", "words": "失业金怎么领？能领几个月？",
     "restated": "您想申领失业保险金并了解领取期限", "needs": ["失业保险金"],
     "worries": ["领取期限"], "policy": "《失业保险条例》", "documents": ["失业登记证明"]},
    {"item": "MI-MEDICAL-REIMBURSEMENT", "words": "住院的钱垫了好几万，报销怎么还没到账",
     "restated": "您住院费用的报销进度需要查询和催办", "needs": ["报销到账"],
     "worries": ["钱一直不到"], "policy": "《基本医疗保险待遇管理办法》",
     "documents": ["住院发票", "出院小结"], "recurring": True},
    {"item": "MI-RESIDENT-ENROLMENT", "words": "孩子的城乡居民医保怎么交",
     "restated": "您要为孩子办理城乡居民医保参保缴费", "needs": ["参保"], "worries": [],
     "policy": "城乡居民基本医疗保险办法", "documents": ["户口簿"]},
    {"item": "SA-MINIMUM-LIVING-ALLOWANCE", "words": "我一个人带孩子，收入很低，能不能吃低保",
     "restated": "您想申请最低生活保障", "needs": ["低保"], "worries": ["审核太久"],
     "policy": "《社会救助暂行办法》", "documents": ["收入证明", "户口簿"], "recurring": True},
    {"item": "PEN-EARLY-RETIREMENT-SPECIAL-WORK", "words": "我在井下干了十几年，能提前退休吗",
     "restated": "您想了解特殊工种提前退休的条件", "needs": ["提前退休"],
     "worries": ["档案缺失"], "policy": "特殊工种提前退休相关规定",
     "documents": ["人事档案", "特殊工种审批表"]},
    {"item": "EMP-EMPLOYMENT-ASSISTANCE", "words": "年纪大了找不到工作，有没有援助",
     "restated": "您需要就业援助，想找合适岗位", "needs": ["岗位推荐"], "worries": ["年龄"],
     "policy": "《就业促进法》就业援助章节", "documents": ["就业困难人员认定表"]},
    {"item": "EC-ELDERLY-CARE-SUBSIDY", "words": "我妈九十岁了，行动不便，有没有养老服务补贴",
     "restated": "您想为高龄母亲申请养老服务补贴", "needs": ["居家养老服务"],
     "worries": ["没人照顾"], "policy": "养老服务补贴办法", "documents": ["老人身份证"]},
]
EMOTIONS = ["calm"] * 5 + ["anxious"] * 3 + ["upset"] * 2 + ["angry", "distressed"]
CHANNELS = ["counter"] * 8 + ["phone"] * 2 + ["home_visit"]


@dataclass
class Tally:
    opened: int = 0
    steps: int = 0
    resolved: int = 0
    defused: int = 0
    needing_defusing: int = 0
    deadlines: int = 0
    errors: list[str] = field(default_factory=list)


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str,
                tally: Tally) -> dict[str, Any] | None:
    r = await client.post(path, json=body, headers={"Idempotency-Key": key,
                                                     "X-Actor": body.get("clerk_id", "clerk")})
    if r.status_code >= 400:
        tally.errors.append(f"{path}: {r.status_code} {r.text[:200]}")
        return None
    tally.steps += 1
    return r.json()


async def _resident(client: httpx.AsyncClient, rng: random.Random, n: int, center: str,
                    morning: datetime, tally: Tally) -> None:
    visit = rng.choice(VISITS)
    emotion = rng.choice(EMOTIONS)
    clerk = f"clerk-{rng.randint(1, 6):03d}"
    at = morning + timedelta(minutes=n * 7 + rng.randint(0, 5))
    run = uuid.uuid4().hex[:8]
    opened = await _post(client, "/cases", {
        "center_id": center, "counter_id": f"window-{rng.randint(1, 6)}", "clerk_id": clerk,
        "channel": rng.choice(CHANNELS), "service_item": visit["item"],
        "resident_id": str(uuid.uuid4()), "occurred_at": at.isoformat()},
        f"demo-{run}-{n}-open", tally)
    if opened is None:
        return
    tally.opened += 1
    case = f"/cases/{opened['id']}"

    def t(minutes: int) -> str:
        return (at + timedelta(minutes=minutes)).isoformat()

    await _post(client, f"{case}/hear", {"words": visit["words"], "occurred_at": t(1)},
                f"demo-{run}-{n}-hear", tally)
    confirmed = rng.random() > 0.15
    await _post(client, f"{case}/restate", {
        "restatement": visit["restated"], "confirmed": confirmed,
        "correction": None if confirmed else "不是这个意思，我是想先问清楚条件",
        "occurred_at": t(3)}, f"demo-{run}-{n}-restate", tally)
    await _post(client, f"{case}/concerns", {
        "needs": visit["needs"], "worries": visit["worries"], "emotion": emotion,
        "urgency": rng.choice(["low", "normal", "normal", "high"]), "occurred_at": t(4)},
        f"demo-{run}-{n}-concerns", tally)
    eligibility = rng.choice(["eligible", "eligible", "more_documents", "not_eligible"])
    await _post(client, f"{case}/guidance", {
        "policy_basis": visit["policy"], "eligibility": eligibility,
        "promised": "材料齐全后当场受理" if eligibility != "not_eligible" else "为您转介其他帮扶",
        "missing_documents": visit["documents"] if eligibility == "more_documents" else [],
        "occurred_at": t(8)}, f"demo-{run}-{n}-guidance", tally)
    await _post(client, f"{case}/actions", {
        "kind": "done_on_the_spot" if eligibility == "eligible" else "referred",
        "description": "当场受理" if eligibility == "eligible" else "转介社工跟进",
        "referred_to": None if eligibility == "eligible" else "社区社工站",
        "occurred_at": t(12)}, f"demo-{run}-{n}-action", tally)
    if eligibility == "more_documents":
        due = (at + timedelta(days=rng.choice([2, 5, 10]))).date()
        await _post(client, f"{case}/deadlines", {
            "due_on": due.isoformat(), "description": "补交材料截止", "occurred_at": t(13)},
            f"demo-{run}-{n}-deadline", tally)
        tally.deadlines += 1
    if visit.get("recurring"):
        nxt = date(at.year + (at.month // 12), at.month % 12 + 1, 10)
        await _post(client, f"{case}/obligations", {
            "description": "每月按时到账", "cadence": "monthly", "next_due_on": nxt.isoformat(),
            "occurred_at": t(14)}, f"demo-{run}-{n}-obligation", tally)
    outcome = rng.choices(["resolved", "partly_resolved", "cannot_be_resolved"],
                          weights=[90, 8, 2])[0]
    defused = emotion == "calm" or rng.random() > 0.05
    if emotion in ("upset", "angry", "distressed"):
        tally.needing_defusing += 1
        tally.defused += defused
    resolved = await _post(client, f"{case}/resolve", {
        "outcome": outcome, "emotion_defused": defused,
        "explanation": "" if outcome == "resolved" else "需上级部门审批，已说明原因和时限",
        "occurred_at": t(15)}, f"demo-{run}-{n}-resolve", tally)
    tally.resolved += resolved is not None


@app.command("demo")
def demo(
    intake: Annotated[str, typer.Option(help="Intake service URL.")] = "http://127.0.0.1:8001",
    residents: Annotated[int, typer.Option(min=1, max=10_000)] = 40,
    center: Annotated[str, typer.Option(help="Center id.")] = "SH-PD-HUAMU",
    seed: Annotated[int, typer.Option(help="Random seed: the same day each time.")] = 2026,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Windows open at once.")] = 6,
) -> None:
    """Play a day at the counter: residents across service items, emotions and deadlines."""
    rng = random.Random(seed)
    tally = Tally()
    morning = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)

    async def play() -> None:
        limits = asyncio.Semaphore(parallel)
        async with httpx.AsyncClient(base_url=intake, timeout=30) as client:
            try:
                await client.get("/health")
            except httpx.HTTPError as exc:
                raise typer.BadParameter(f"intake is not answering at {intake}: {exc}; start "
                                         "the system with `make run` first") from exc
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task("residents served", total=residents)

                async def one(n: int) -> None:
                    async with limits:
                        await _resident(client, rng, n, center, morning, tally)
                    bar.advance(task)

                await asyncio.gather(*[one(n) for n in range(residents)])

    asyncio.run(play())
    table = Table(title=f"A day at {center}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("cases opened", str(tally.opened))
    table.add_row("steps recorded", str(tally.steps))
    table.add_row("cases resolved", str(tally.resolved))
    table.add_row("deadlines noted", str(tally.deadlines))
    table.add_row("arrived upset/angry/distressed", str(tally.needing_defusing))
    table.add_row("... and left calmer", str(tally.defused))
    console.print(table)
    if tally.errors:
        console.print(f"[red]{len(tally.errors)} requests failed[/red]; first: {tally.errors[0]}")
        raise typer.Exit(1)
    console.print("Watch the events with [bold]sixstep tail --from-start[/bold].")
