"""Every `sixstep` command finds the servers `make run` started, says so, and never hangs.

An analyst opens a terminal after `make run`: nothing in the environment, only the endpoints
file `make run` wrote. Each command works against that system. Then the system is gone (a
closed port): each command that needs a server says which one did not answer and what to do,
at once, with a non-zero exit code.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from shared.cli.servers import write_endpoints
from shared.security.principals import Role
from shared.security.tokens import issue_token
from shared.settings import Settings
from tests.cli.system import Ran, System, make_run, sixstep, sixstep_each
from tests.support import id_number
from tools.devservers import free_port


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory,
           postgres_server_url: str) -> Iterator[System]:
    with make_run(tmp_path_factory.mktemp("make-run"), postgres_server_url) as started:
        yield started


def _said_where(ran: Ran, *parts: str) -> None:
    line = ran.first_err_line
    assert line.startswith("servers from .state/endpoints.env, written by make run:"), ran
    for part in parts:
        assert part in line, (part, line)


def _ok(ran: Ran) -> Ran:
    assert ran.code == 0, ran
    return ran


def test_every_command_uses_make_runs_servers_with_nothing_in_the_environment(
        system: System) -> None:
    here = system.folder
    nats, intake = system.nats_url, system.services["intake"]

    ran = _ok(sixstep(here, "demo", "--residents", "2", "--parallel", "2"))
    _said_where(ran, f"intake {intake}")
    # Commands that only read run side by side (tests.cli.system.sixstep_each), each group
    # after what it reads was written.
    tail, opened, replay, export = sixstep_each(here, (
        ("tail", "--from-start", "--count", "1"), ("replay", "--out", "-", "-t", "CaseOpened"),
        ("replay",), ("export", "out")))
    _said_where(_ok(tail), f"NATS {nats}")
    assert tail.out.split()[0] == "1", tail  # the first event of the log
    _said_where(_ok(opened), f"NATS {nats}")
    case_id = opened.out.split('"case_id":"')[1][:36]
    _said_where(_ok(replay), f"NATS {nats}")
    _said_where(_ok(export), f"NATS {nats}")

    today = date.today()
    report, sql_out, sql_fresh, as_of, rebuild = sixstep_each(here, (
        ("report", "out", "--from", str(today - timedelta(days=2)), "--to", str(today)),
        ("sql", "out", "-c", "SELECT count(*) AS n FROM events"),
        ("sql", "fresh", "--export", "-c", "SELECT count(*) AS cases FROM visits"),
        ("as-of", case_id, str(today + timedelta(days=1))),
        ("rebuild", "intake", "--dry-run")))
    assert "visits" in _ok(report).out.lower(), report
    assert not _ok(sql_out).err.startswith("servers"), sql_out  # an export: no server
    _said_where(_ok(sql_fresh), f"NATS {nats}")
    assert "cases" in sql_fresh.out and "1 row(s)" in sql_fresh.out, sql_fresh
    _said_where(_ok(as_of), f"NATS {nats}", "PostgreSQL")
    assert f"case {case_id}" in as_of.out
    _said_where(_ok(rebuild), "NATS", "PostgreSQL")

    _said_where(_ok(sixstep(here, "ops", "apply")), f"NATS {nats}")
    status, dlq_list, dlq_drop = sixstep_each(here, (
        ("ops", "status"), ("dlq", "list"), ("dlq", "drop", "--seq", "999999", "--yes")))
    assert "stream SIXSTEP:" in _ok(status).out and "missing" not in status.out, status
    _said_where(_ok(dlq_list), f"NATS {nats}")
    assert "seq 999999: not found" in _ok(dlq_drop).out

    # The ops routes: the development ops token is minted the same way for each (it was a
    # 401 for `calendar status` against make run).
    ops = issue_token(Settings(), "test-ops", Role.OPS)
    consumers = httpx.get(f"{system.services['followup']}/ops/consumers", trust_env=False,
                          headers={"Authorization": f"Bearer {ops}"}).json()["consumers"]
    ran = _ok(sixstep(here, "dlq", "replay", "--consumer", consumers[0]["name"]))
    assert "replayed 0" in ran.out, ran
    ran = _ok(sixstep(here, "-v", "calendar", "status"))
    _said_where(ran, f"intake {intake}", "followup", "feedback")
    assert "ops token: minted with the development signing key" in ran.err
    # What a refused token prints ("answered 401"), not a 401 inside a free port (127.0.0.1:40189)
    assert "answered 401" not in ran.out and "provisional" in ran.out, ran
    _ok(sixstep(here, "calendar", "reload"))

    # A stream that is not there (another system's server, say) is named with its server.
    elsewhere = (("replay",), ("export", "other"), ("tail",), ("dlq", "list"))
    for ran in sixstep_each(here, elsewhere, env={"STREAM_NAME": "ELSEWHERE"}):
        assert ran.code == 2, ran
        assert "no stream 'ELSEWHERE" in ran.flat and f"at {nats}" in ran.flat, ran
        assert "Traceback" not in ran.err

    # No server: said nowhere.
    for ran in sixstep_each(here, (("contracts", "list"),
                                   ("token", "issue", "--sub", "ops-1", "--role", "ops"))):
        assert not _ok(ran).err.startswith("servers"), ran


def test_every_command_names_the_server_that_does_not_answer_at_once(tmp_path: Path) -> None:
    closed = {name: free_port() for name in ("nats", "pg", "intake", "followup", "feedback")}
    state = tmp_path / ".state"
    state.mkdir()
    write_endpoints(state, f"postgresql://sixstep@127.0.0.1:{closed['pg']}/sixstep",
                    f"nats://127.0.0.1:{closed['nats']}",
                    {s: f"http://127.0.0.1:{closed[s]}"
                     for s in ("intake", "followup", "feedback")})
    nats = f"NATS at nats://127.0.0.1:{closed['nats']} did not answer within 3 s"
    intake = f"intake at http://127.0.0.1:{closed['intake']} did not answer within 3 s"
    commands: list[tuple[tuple[str, ...], str]] = [
        (("replay",), nats), (("export", "out"), nats), (("tail",), nats),
        (("rebuild", "intake"), nats),
        (("as-of", "00000000-0000-0000-0000-000000000001", "2026-03-02"), nats),
        (("ops", "apply"), nats), (("ops", "status"), nats), (("dlq", "list"), nats),
        (("dlq", "drop", "--seq", "1", "--yes"), nats),
        (("dlq", "replay", "--consumer", "x", "--service", "intake"), intake),
        (("dlq", "replay", "--consumer", "x"),
         f"asked http://127.0.0.1:{closed['intake']} (ConnectError)"),
        (("demo",), intake),
        (("sql", "fresh", "--export", "-c", "SELECT 1"), nats),
        (("calendar", "status"), f"intake: not reachable at http://127.0.0.1:{closed['intake']}"),
        (("calendar", "reload"), f"intake: not reachable at http://127.0.0.1:{closed['intake']}"),
    ]
    for (args, message), ran in zip(commands, sixstep_each(tmp_path, (a for a, _ in commands)),
                                    strict=True):
        assert ran.code == 2, (args, ran)  # docs/analysts.md: a server that does not answer
        assert message in ran.flat, (args, ran)
        assert "make run" in ran.flat, (args, ran)
        assert "Traceback" not in ran.err, ran

    # The database is probed too, and named.
    ran = sixstep(tmp_path, "--nats-url", "nats://127.0.0.1:1", "--database-url",
                  f"postgresql://sixstep@127.0.0.1:{closed['pg']}/sixstep", "rebuild", "intake")
    assert ran.code == 2 and "NATS at nats://127.0.0.1:1 did not answer" in ran.flat
    assert "--nats-url" in ran.first_err_line


def test_a_survey_link_leads_to_the_feedback_make_run_started_on_its_own_port(
        system: System) -> None:
    """Two `make run`s on one machine, each on ports of its own (FEEDBACK_PORT): the link the
    resident gets, on the pad, by SMS or as the QR code on the clerk's screen, opens this
    system's survey, not one at the default port 8003, another system's or nobody's."""
    intake, feedback = system.services["intake"], system.services["feedback"]
    clerk = {"Authorization": "Bearer " + issue_token(Settings(), "clerk-017", Role.CLERK,
                                                      "SH-PD-HUAMU")}
    with httpx.Client(trust_env=False, timeout=10.0, headers=clerk) as client:
        def write(url: str, body: dict[str, object]) -> dict[str, object]:
            answer = client.post(url, json=body, headers={"Idempotency-Key": secrets.token_hex(8)})
            assert answer.status_code in (200, 201), answer.text
            return dict(answer.json())

        resident = write(f"{intake}/residents", {
            "name": "王秀英", "id_number": id_number(), "phone": "13912345678",
            "address": "浦东新区花木路100弄3号", "contact_channel": "phone",
            "consent": {"contact": True, "surveys": True}})["resident_id"]
        case_id = write(f"{intake}/cases", {
            "center_id": "SH-PD-HUAMU", "counter_id": "W07", "channel": "counter",
            "service_item": "SA-MINIMUM-LIVING-ALLOWANCE", "resident_id": resident})["id"]
        write(f"{intake}/cases/{case_id}/hear", {"words": "想问问低保怎么办"})
        write(f"{intake}/cases/{case_id}/resolve", {
            "outcome": "resolved", "explanation": "", "emotion_on_leaving": "calm"})

        deadline = time.monotonic() + 30
        while (qr := client.get(f"{feedback}/cases/{case_id}/survey/qr")).status_code != 200:
            assert qr.status_code == 404 and time.monotonic() < deadline, qr.text
            time.sleep(0.2)
        link = qr.json()["link"]
        assert link.startswith(f"{feedback}/s/"), (link, feedback)
        page = httpx.get(link, trust_env=False, timeout=10.0)
        assert page.status_code == 200 and "data-survey" in page.text, page.text[:300]
        # The workers' sender (a process of its own, on another port) sent the same origin:
        # what it logs, in make run's output.
        log = system.folder / "make-run.log"
        while f"{feedback}/s/{qr.json()['survey_id']}" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
