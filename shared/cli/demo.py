"""``sixstep demo``: a realistic morning at a center's counters, played through the HTTP API.

Each resident is registered in intake's vault first (name, ID number, phone, address: made up,
but with valid check digits), and the case carries only the opaque resident id the vault
returns. Each clerk acts with a token of their own (signed with the configured key, the
development key on a development machine), unless ``--token`` gives one for all.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.cli import app
from shared.kernel.tasks import gather_all
from shared.security.principals import Role
from shared.security.tokens import issue_token

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
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["建国", "秀英", "桂兰", "志强", "丽华", "海燕", "国庆", "淑珍", "文明", "春梅",
         "德明", "玉兰", "晓东", "红霞", "建华", "美玲"]
STREETS = ["花木路", "锦绣路", "东绣路", "芳华路", "梅花路", "白杨路"]
CHECK = "10X98765432"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class DemoResident:
    """Made-up personal data, shaped like the real thing (the ID number's check digit holds)."""

    name: str
    id_number: str
    phone: str
    address: str


def demo_residents(seed: int, n: int) -> list[DemoResident]:
    """The residents of the demo day ``seed``: the same ones every time."""
    rng = random.Random(f"residents-{seed}")
    out = []
    for i in range(n):
        born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 60))
        first17 = f"310115{born:%Y%m%d}{rng.randint(0, 999):03d}"
        check = CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]
        out.append(DemoResident(
            name=rng.choice(SURNAMES) + rng.choice(GIVEN),
            id_number=first17 + check,
            phone=f"13{rng.randint(5, 9)}{rng.randint(0, 99_999_999):08d}",
            address=f"浦东新区{rng.choice(STREETS)}{rng.randint(1, 999)}弄{i % 30 + 1}号"))
    return out


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
    registered: int = 0
    guidance_visits: int = 0
    placed: int = 0
    errors: list[str] = field(default_factory=list)


async def _post_as(client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str,
                   tally: Tally, token: str) -> dict[str, Any] | None:
    r = await client.post(path, json=body, headers={"Idempotency-Key": key,
                                                     "Authorization": f"Bearer {token}"})
    if r.status_code >= 400:
        tally.errors.append(f"{path}: {r.status_code} {r.text[:200]}")
        return None
    tally.steps += 1
    return r.json()


#: How long the demo waits, in all, for its turn to register one resident.
REGISTER_WAIT_S = 180.0


async def post_resident(client: httpx.AsyncClient, person: DemoResident,
                        headers: dict[str, str] | None = None) -> httpx.Response:
    """``POST /residents`` for ``person`` (registered, or found by ID number). Registering by
    ID number is paced like a lookup, per clerk and per center (429 with Retry-After): every
    part of the demo waits its turn here, up to ``REGISTER_WAIT_S``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REGISTER_WAIT_S
    while True:
        r = await client.post("/residents", json={
            "name": person.name, "id_number": person.id_number, "phone": person.phone,
            "address": person.address, "contact_channel": "phone",
            "consent": {"contact": True, "surveys": True}}, headers=headers)
        wait = float(r.headers.get("Retry-After", "1"))
        if r.status_code != 429 or loop.time() + wait > deadline:
            return r
        await asyncio.sleep(wait)


async def _register(client: httpx.AsyncClient, person: DemoResident, token: str,
                    tally: Tally) -> str | None:
    """The resident's opaque id from the vault (``post_resident``)."""
    r = await post_resident(client, person, {"Authorization": f"Bearer {token}"})
    if r.status_code >= 400:
        tally.errors.append(f"/residents: {r.status_code} {r.text[:200]}")
        return None
    tally.registered += 1
    return str(r.json()["resident_id"])


async def _resident(client: httpx.AsyncClient, rng: random.Random, n: int, center: str,
                    morning: datetime, tally: Tally, person: DemoResident | None,
                    token_of: Callable[[str], str]) -> None:
    visit = rng.choice(VISITS)
    emotion = rng.choice(EMOTIONS)
    clerk = f"clerk-{rng.randint(1, 6):03d}"
    token = token_of(clerk)
    at = morning + timedelta(minutes=n * 7 + rng.randint(0, 5))
    run = uuid.uuid4().hex[:8]
    resident_id: str | None = None  # without the vault a case names no resident
    if person is not None:
        resident_id = await _register(client, person, token, tally)
        if resident_id is None:
            return

    async def _post(path: str, body: dict[str, Any], key: str, tally: Tally
                    ) -> dict[str, Any] | None:
        return await _post_as(client, path, body, key, tally, token)

    window = f"window-{rng.randint(1, 6)}"
    # the resident sits down: one trip (人次), after a wait at the ticket machine
    await _post("/visits", {
        "center_id": center, "counter_id": window, "wait_minutes": (n * 7) % 25,
        "occurred_at": at.isoformat()}, f"demo-{run}-{n}-visit", tally)
    opened = await _post("/cases", {
        "center_id": center, "counter_id": window, "clerk_id": clerk,
        "channel": rng.choice(CHANNELS), "service_item": visit["item"],
        **({"resident_id": resident_id} if resident_id else {}), "occurred_at": at.isoformat()},
        f"demo-{run}-{n}-open", tally)
    if opened is None:
        return
    tally.opened += 1
    case = f"/cases/{opened['id']}"

    def t(minutes: int) -> str:
        return (at + timedelta(minutes=minutes)).isoformat()

    await _post(f"{case}/hear", {"words": visit["words"], "occurred_at": t(1)},
                f"demo-{run}-{n}-hear", tally)
    confirmed = rng.random() > 0.15
    await _post(f"{case}/restate", {
        "restatement": visit["restated"], "confirmed": confirmed,
        "correction": None if confirmed else "不是这个意思，我是想先问清楚条件",
        "occurred_at": t(3)}, f"demo-{run}-{n}-restate", tally)
    await _post(f"{case}/concerns", {
        "needs": visit["needs"], "worries": visit["worries"], "emotion": emotion,
        "urgency": rng.choice(["low", "normal", "normal", "high"]), "occurred_at": t(4)},
        f"demo-{run}-{n}-concerns", tally)
    eligibility = rng.choice(["eligible", "eligible", "more_documents", "not_eligible"])
    await _post(f"{case}/guidance", {
        "policy_basis": visit["policy"], "eligibility": eligibility,
        "promised": "材料齐全后当场受理" if eligibility != "not_eligible" else "为您转介其他帮扶",
        "missing_documents": visit["documents"] if eligibility == "more_documents" else [],
        "occurred_at": t(8)}, f"demo-{run}-{n}-guidance", tally)
    await _post(f"{case}/actions", {
        "kind": "done_on_the_spot" if eligibility == "eligible" else "referred",
        "description": "当场受理" if eligibility == "eligible" else "转介社工跟进",
        "referred_to": None if eligibility == "eligible" else "社区社工站",
        "occurred_at": t(12)}, f"demo-{run}-{n}-action", tally)
    if visit["item"].startswith("EMP-") and resident_id:  # employment aid: the studio's work
        session = await _post(f"{case}/guidance-sessions", {
            "held_on": at.date().isoformat(), "counter_id": "studio-emp",
            "topic": "job_referral", "note": "推荐岗位两个，约定下周面试",
            "occurred_at": t(12)}, f"demo-{run}-{n}-session", tally)
        tally.guidance_visits += session is not None
        if rng.random() < 0.3:
            placed = await _post(f"{case}/placement", {
                "employed_on": at.date().isoformat(), "employer_type": "enterprise",
                "counter_id": "studio-emp", "occurred_at": t(13)},
                f"demo-{run}-{n}-placement", tally)
            tally.placed += placed is not None
    if eligibility == "more_documents":
        due = (at + timedelta(days=rng.choice([2, 5, 10]))).date()
        await _post(f"{case}/deadlines", {
            "due_on": due.isoformat(), "description": "补交材料截止", "occurred_at": t(13)},
            f"demo-{run}-{n}-deadline", tally)
        tally.deadlines += 1
    if visit.get("recurring"):
        nxt = date(at.year + (at.month // 12), at.month % 12 + 1, 10)
        await _post(f"{case}/obligations", {
            "description": "每月按时到账", "cadence": "monthly", "next_due_on": nxt.isoformat(),
            "occurred_at": t(14)}, f"demo-{run}-{n}-obligation", tally)
    outcome = rng.choices(["resolved", "partly_resolved", "cannot_be_resolved"],
                          weights=[90, 8, 2])[0]
    defused = emotion == "calm" or rng.random() > 0.05
    if emotion in ("upset", "angry", "distressed"):
        tally.needing_defusing += 1
        tally.defused += defused
    resolved = await _post(f"{case}/resolve", {
        "outcome": outcome, "emotion_defused": defused,
        "emotion_on_leaving": "calm" if defused else emotion,
        "explanation": "" if outcome == "resolved" else "需上级部门审批，已说明原因和时限",
        "occurred_at": t(15)}, f"demo-{run}-{n}-resolve", tally)
    tally.resolved += resolved is not None


READY_WAIT_S = 120.0
"""How long ``sixstep demo`` waits for a system that is still starting (``make run`` just
started: intake answers /health before its store, NATS and consumers are ready)."""


class NotReady(RuntimeError):
    """Intake did not say it was ready within the bound."""


async def wait_until_ready(intake: str, bound_s: float = READY_WAIT_S,
                           on_wait: Callable[[str, float], None] | None = None,
                           poll_s: float = 0.5) -> None:
    """Poll intake's /ready until it serves (200: ready or degraded); ``on_wait(what, s)``
    says what it waits for and for how long so far. NotReady, naming the last answer,
    after ``bound_s``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with httpx.AsyncClient(base_url=intake, timeout=5, trust_env=False) as client:
        while True:
            try:
                r = await client.get("/ready")
                if r.status_code == 200:
                    return
                last = f"/ready {r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            waited = loop.time() - started
            if waited >= bound_s:
                raise NotReady(f"intake at {intake} was not ready after {bound_s:g} s "
                               f"(last: {last}); is `make run` still starting? see its "
                               "logs (.state/logs/intake*.log)")
            if on_wait is not None:
                on_wait(last, waited)
            await asyncio.sleep(poll_s)


async def play_day(intake: str, token_of: Callable[[str], str], residents: int = 40,
                   center: str = "SH-PD-HUAMU", seed: int = 2026, parallel: int = 6,
                   vault: bool = True, on_done: Callable[[], None] | None = None) -> Tally:
    """Play the demo day against intake at ``intake``; ``token_of(clerk_id)`` is the bearer
    token each clerk acts with."""
    rng = random.Random(seed)
    tally = Tally()
    now = datetime.now(UTC)
    morning = now.replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 in Shanghai
    if morning + timedelta(minutes=7 * residents + 60) > now:
        morning -= timedelta(days=1)  # the whole morning in the past: the APIs refuse a future
    people = demo_residents(seed, residents) if vault else [None] * residents
    limits = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(base_url=intake, timeout=30, trust_env=False) as client:
        try:
            await client.get("/health")
        except httpx.HTTPError as exc:
            raise typer.BadParameter(f"intake is not answering at {intake}: {exc}; start "
                                     "the system with `make run` first") from exc

        async def one(n: int) -> None:
            async with limits:
                await _resident(client, rng, n, center, morning, tally, people[n], token_of)
            if on_done is not None:
                on_done()

        await gather_all(*[one(n) for n in range(residents)])
    return tally


@app.command("demo")
def demo(
    intake: Annotated[str | None, typer.Option(
        help="Intake service URL (else --intake-url, SIXSTEP_INTAKE_URL, make run's).")] = None,
    residents: Annotated[int, typer.Option(min=1, max=10_000)] = 40,
    center: Annotated[str, typer.Option(help="Center id.")] = "SH-PD-HUAMU",
    seed: Annotated[int, typer.Option(help="Random seed: the same day each time.")] = 2026,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Windows open at once.")] = 6,
    token: Annotated[str | None, typer.Option(
        envvar="SIXSTEP_TOKEN", help="A clerk's token for every request (default: one per "
                                     "clerk, signed with the configured AUTH_KEYS).")] = None,
    vault: Annotated[bool, typer.Option(help="Register each resident in the vault first.")]
        = True,
    stories: Annotated[bool, typer.Option(help=(
        "Then play the seed's stories: the resident with cancer (a linked plan across three "
        "items, his wife applying for him); the 53-year-old's eligibility hints; the "
        "resident living alone visited at home."))] = True,
    ready_wait: Annotated[float, typer.Option(min=0, help=(
        "Seconds to wait for intake to be ready (a `make run` still starting)."))]
        = READY_WAIT_S,
) -> None:
    """Play a day at the counter: residents across service items, emotions and deadlines."""
    from shared.cli.servers import resolve

    servers = resolve(intake=intake)
    settings = servers.use("intake")
    intake_url = servers.url("intake")
    _wait_for_intake(intake_url, ready_wait)
    if token is None:
        minted: dict[str, str] = {}

        def token_of(clerk: str) -> str:
            if clerk not in minted:
                minted[clerk] = issue_token(settings, clerk, Role.CLERK, center,
                                            ttl=timedelta(hours=2))
            return minted[clerk]
    else:
        fixed = token

        def token_of(clerk: str) -> str:
            return fixed

    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("residents served", total=residents)
            tally = asyncio.run(play_day(intake_url, token_of, residents, center, seed,
                                         parallel, vault, on_done=lambda: bar.advance(task)))
        _play_on(tally, intake_url, token_of, center, stories, vault)
    except httpx.HTTPError as exc:  # intake stopped or stalled mid-day: say so, no traceback
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        console.print(f"[red]the demo stopped[/red]: intake at {escape(intake_url)} failed a "
                      f"request ({escape(what)}); is `make run` still running? see its logs")
        raise typer.Exit(1) from None


def _play_on(tally: Tally, intake_url: str, token_of: Callable[[str], str], center: str,
             stories: bool, vault: bool) -> None:
    """The day's figures, then the seed's stories; exit 1 when a request of the day failed."""
    table = Table(title=f"A day at {center}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("residents registered in the vault", str(tally.registered))
    table.add_row("cases opened", str(tally.opened))
    table.add_row("steps recorded", str(tally.steps))
    table.add_row("cases resolved", str(tally.resolved))
    table.add_row("deadlines noted", str(tally.deadlines))
    table.add_row("arrived upset/angry/distressed", str(tally.needing_defusing))
    table.add_row("... and left calmer", str(tally.defused))
    table.add_row("employment aid: guidance visits", str(tally.guidance_visits))
    table.add_row("employment aid: people placed", str(tally.placed))
    console.print(table)
    if stories and not tally.errors:
        from shared.cli.cancer_story import StoryFailed, play_and_show

        try:
            asyncio.run(play_and_show(intake_url, token_of("clerk-001"), center, console))
        except StoryFailed as exc:
            console.print(f"[red]the cancer story failed[/red]: {escape(str(exc))}")
            raise typer.Exit(1) from exc
    if stories and vault:
        _play_stories(intake_url, token_of, center)
    if tally.errors:
        console.print(f"[red]{len(tally.errors)} requests failed[/red]; first: "
                      f"{escape(str(tally.errors[0]))}")
        raise typer.Exit(1)
    console.print("Watch the events with [bold]sixstep tail --from-start[/bold].")


def _wait_for_intake(intake_url: str, bound_s: float) -> None:
    """Wait (with a spinner and a bound) until intake is ready; exit 2 with the reason if not."""
    from shared.cli.servers import EXIT_UNREACHABLE

    with console.status(f"waiting for intake at {intake_url} to be ready") as status:

        def waiting(last: str, waited: float) -> None:
            status.update(f"waiting for intake at {intake_url} to be ready: {waited:.0f} s "
                          f"of {bound_s:g} s (last: {last[:80]})")

        try:
            asyncio.run(wait_until_ready(intake_url, bound_s, waiting))
        except NotReady as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(EXIT_UNREACHABLE) from None


def _play_stories(intake_url: str, token_of: Callable[[str], str], center: str) -> None:
    """The seed's hard cases (hints, a home visit): ``demo_stories.py``."""
    from shared.cli.demo_stories import play_stories, print_stories

    print_stories(asyncio.run(play_stories(intake_url, token_of, center)), console)
