"""The demo day through real service processes: afterwards no log line, no export and no stream
message holds a demo resident's name, ID number or phone number."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pyarrow.parquet as pq
from rich.console import Console

from shared.analytics.export import export
from shared.cli.cancer_story import play_and_show
from shared.cli.demo import demo_residents, play_day
from shared.cli.demo_stories import play_stories, print_stories, story_residents
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, auth_env, bearer, stream_messages, token_for, wait_until
from tools.devservers import free_port

ROOT = Path(__file__).resolve().parents[2]
RESIDENTS = 10
SEED = 7


def _env(settings: Settings, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    env.update({
        "DATABASE_URL": settings.database_url, "NATS_URL": settings.nats_url,
        "STREAM_NAME": settings.stream_name, "SUBJECT_PREFIX": settings.subject_prefix,
        "SCHEMA_PREFIX": settings.schema_prefix, "PARTITIONS": str(settings.partitions),
        "LOG_LEVEL": "DEBUG", "LOG_JSON": "true", "FEEDBACK_TICK_S": "0.5",
        # Follow-up's scheduler plans the home visit on its tick (5 s by default: the test
        # waited it out); its ticks' log lines are read like every other.
        "FOLLOWUP_SCHEDULER_INTERVAL_S": "0.5",
        "SURVEY_DELAY_MINUTES": "0", "SURVEY_QUIET_FROM": "00:00",
        "SURVEY_QUIET_UNTIL": "00:00", "PYTHONUNBUFFERED": "1",
        **{f"{s.upper()}_PORT": str(p) for s, p in ports.items()}, **auth_env(settings)})
    return env


async def test_no_log_line_export_or_event_names_a_demo_resident(settings: Settings,
                                                                  tmp_path: Path) -> None:
    ports = {s: free_port() for s in ("intake", "followup", "feedback")}
    env = _env(settings, ports)
    logs = {s: tmp_path / f"{s}.log" for s in ports}
    procs = []
    for service in ports:
        with logs[service].open("wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", f"services.{service}.main"],
                                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT))
    try:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            async def ready() -> bool:
                for port in ports.values():
                    try:
                        r = await client.get(f"http://127.0.0.1:{port}/ready")
                    except httpx.HTTPError:
                        return False
                    if r.status_code != 200:
                        return False
                return True

            await wait_until(ready, timeout=60, what="the three services")
            tally = await play_day(
                f"http://127.0.0.1:{ports['intake']}",
                lambda clerk: token_for(settings, Role.CLERK, TEST_CENTER, sub=clerk),
                residents=RESIDENTS, center=TEST_CENTER, seed=SEED, parallel=4)
            assert tally.errors == [] and tally.registered == RESIDENTS
            assert tally.resolved == RESIDENTS
            # The seed's story: a plan across three items, his wife applying for him.
            story = await play_and_show(
                f"http://127.0.0.1:{ports['intake']}",
                token_for(settings, Role.CLERK, TEST_CENTER, sub="clerk-001"), TEST_CENTER,
                Console(file=io.StringIO()))
            assert story.subsidy_case is not None
            # The seed's hard cases: declared facts, eligibility hints, a care flag.
            stories = await play_stories(
                f"http://127.0.0.1:{ports['intake']}",
                lambda clerk: token_for(settings, Role.CLERK, TEST_CENTER, sub=clerk),
                center=TEST_CENTER)
            assert stories.errors == [] and len(stories.hints_taken) == 2
            assert stories.care_declared and stories.obligation_declared
            shown = Console(record=True, width=200)
            print_stories(stories, shown)  # what `sixstep demo` prints after the day
            assert "age 53, special work type declared" in shown.export_text()

            async def visit_planned() -> bool:  # follow-up's scheduler, on its own clock
                r = await client.get(f"http://127.0.0.1:{ports['followup']}/followups",
                                     params={"resident_id": stories.living_alone},
                                     headers=bearer(settings))
                return any(f["reason"] == "home_visit" for f in r.json().get("items", []))

            await wait_until(visit_planned, timeout=60, what="the home visit planned")

            async def figures_counted() -> bool:
                r = await client.get(f"http://127.0.0.1:{ports['feedback']}/figures",
                                     params={"period": "year"}, headers=bearer(settings))
                rows = r.json().get("rows", []) if r.status_code == 200 else []
                return sum(row.get("cases", 0) for row in rows) >= RESIDENTS

            await wait_until(figures_counted, timeout=30, what="feedback's figures")
            # A few reads of personal data, as the day would have them (audited, not logged).
            people = demo_residents(SEED, RESIDENTS)
            for person in people[:3]:
                found = await client.post(
                    f"http://127.0.0.1:{ports['intake']}/residents/lookup",
                    json={"id_number": person.id_number, "purpose": "returning resident"},
                    headers=bearer(settings, role=Role.CLERK))
                assert found.status_code == 200
                read = await client.get(
                    f"http://127.0.0.1:{ports['intake']}/residents/"
                    f"{found.json()['resident_id']}", params={"purpose": "follow-up call"},
                    headers=bearer(settings, role=Role.CLERK))
                assert read.json()["phone"] == person.phone
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.to_thread(proc.wait, 20)

    csv_root, parquet_root = tmp_path / "csv", tmp_path / "parquet"
    await export(settings, csv_root, fmt="csv", layout="wide")
    await export(settings, parquet_root, fmt="parquet", layout="per-type")

    texts: dict[str, str] = {str(p): p.read_text(errors="replace") for p in logs.values()}
    assert all(texts.values()), "every service logged"
    for path in csv_root.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_text(errors="replace")
    for path in parquet_root.rglob("*.parquet"):
        texts[str(path)] = str(pq.read_table(path).to_pylist())
    assert any(p.endswith(".csv") for p in texts) and any(p.endswith(".parquet") for p in texts)
    texts["stream"] = "\n".join(m.data.decode() for m in await stream_messages(settings))

    story = story_residents(date.today())
    # 9020: the cancer story's residents
    people = [*demo_residents(SEED, RESIDENTS), *demo_residents(9020, 2), *story]
    secrets = [v for p in people for v in (p.name, p.id_number, p.phone)]
    # The hint and care stories' birth dates (what ages are worked out from) and declared
    # facts stay in the vault.
    secrets += [p.id_number[6:14] for p in story] + ["special_work_type", "lives_alone"]
    found = {(where, s) for where, text in texts.items() for s in secrets if s in text}
    assert found == set()
