"""What an ops team starts its monitoring from: deploy/prometheus/alerts.yml passes
``promtool check rules`` and its unit tests (``promtool test rules``), and every metric that an
alert or a panel of deploy/grafana/sixstep.json asks for is one the three running services
really serve at /metrics.

promtool comes from Debian's ``prometheus`` package (``make test`` and ``.ci/run`` install it);
without it these tests fail, they do not skip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.settings import Settings
from tests.faults.harness import SERVICES, System

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "sixstep.json"
METRIC = re.compile(r"\bsixstep_[a-z0-9_]+\b")
#: What the alerts must watch (issue 21): each by the metric it reads.
WATCHED = {
    "consumer lag in seconds": "sixstep_consumer_oldest_unapplied_age_seconds",
    "dead letters arriving": "sixstep_dead_letters_total",
    "a consumer's statements running out of time, again and again":
        "sixstep_consumer_store_timeouts_total",
    "relay behind": "sixstep_relay_unpublished_age_seconds",
    "events out of store order on the stream": "sixstep_relay_out_of_order_total",
    "parked rules": "sixstep_parked_rules",
    "calendar coverage ending": "sixstep_calendar_official_days_left",
    "a calendar re-planning with failed items, retried": "sixstep_calendar_replan_pending",
    "5xx rate": "sixstep_http_requests_total",
    "group-commit latency": "sixstep_group_commit_seconds_bucket",
    "a counter's clock running fast": "sixstep_occurred_at_ahead_seconds_bucket",
    "a counter's clock running slow": "sixstep_occurred_at_behind_seconds_bucket",
    "a counter's clock so far off its posts are refused": "sixstep_writes_refused_for_clock_total",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install -y --no-install-recommends prometheus "
                    "(make test does it)")
    return found


def alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def as_prometheus_sees_it(expr: str) -> str:
    """A panel's expression with Grafana's variables filled in as it would fill them."""
    return (expr.replace("$__rate_interval", "5m")
            .replace('=~"$service"', '=~"intake|followup|feedback"'))


def test_the_alert_rules_pass_promtool_and_fire_when_they_should(tmp_path: Path) -> None:
    tool = promtool()
    checked = subprocess.run([tool, "check", "rules", str(ALERTS)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([tool, "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    used = {name for expr in alert_expressions().values() for name in METRIC.findall(expr)}
    assert {what: metric for what, metric in WATCHED.items() if metric not in used} == {}


def test_the_dashboard_is_valid_promql_for_the_three_services(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    service = next(v for v in dashboard["templating"]["list"] if v["name"] == "service")
    assert set(service["query"].split(",")) == set(SERVICES)
    # Every panel's query, as a recording rule: promtool parses each one.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"sixstep:panel_{i}", "expr": as_prometheus_sees_it(expr)}
        for i, expr in enumerate(dashboard_expressions())]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert all(METRIC.search(expr) for expr in dashboard_expressions()), \
        "every panel reads sixstep's own metrics"


def test_the_counters_clock_has_a_panel_reading_what_its_alerts_read() -> None:
    """Ops paged for a counter's clock open the dashboard and see the same share the alert
    read (posts refused for the clock included), fast and slow, on one panel: before, no panel
    showed a clock at all."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [{name for target in panel.get("targets", [])
               for name in METRIC.findall(target["expr"])} for panel in dashboard["panels"]]
    read = {name for alert, expr in alert_expressions().items() if "Clock" in alert
            for name in METRIC.findall(expr)}
    assert "sixstep_writes_refused_for_clock_total" in read
    assert any(read <= panel for panel in panels), read


def served(metrics_text: str) -> set[str]:
    """The metric names a /metrics page serves: every sample's and every declared family's
    (a labelled family with no sample yet is still declared), histograms with their series."""
    names: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


async def test_every_metric_of_the_alerts_and_the_dashboard_is_served_by_the_services(
        settings: Settings, tmp_path: Path) -> None:
    system = System(settings, tmp_path)  # the three services, each its own process
    for service in SERVICES:
        system.add(service)
    pages: dict[str, set[str]] = {}
    try:
        await system.start()
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            for service in SERVICES:
                answer = await client.get(f"{system[service].url}/metrics")
                assert answer.status_code == 200
                pages[service] = served(answer.text)
    except BaseException:
        print(system.tails())
        raise
    finally:
        await system.stop()
    everywhere = set.union(*pages.values())
    wanted: dict[str, Any] = {
        "alerts": {n for e in alert_expressions().values() for n in METRIC.findall(e)},
        "dashboard": {n for e in dashboard_expressions() for n in METRIC.findall(e)},
    }
    missing = {where: sorted(names - everywhere) for where, names in wanted.items()
               if names - everywhere}
    assert missing == {}, f"asked for but served by no service: {missing}"
    # The event path's own figures are served by each of the three services.
    for service, names in pages.items():
        assert {"sixstep_relay_unpublished_events", "sixstep_relay_unpublished_age_seconds",
                "sixstep_consumer_oldest_unapplied_age_seconds",
                "sixstep_group_commit_seconds_bucket"} <= names, service


def metrics_table() -> set[str]:
    """The metrics named in the first column of deploy/README.md's metrics table (``GET
    /metrics``), as a Markdown renderer reads the table (GitHub's: tables on)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(
        (ROOT / "deploy" / "README.md").read_text())
    named: set[str] = set()
    rows: list[list[str]] | None = None
    for token in tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open" and rows is not None:
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(token.content)
        elif token.type == "table_close" and rows is not None:
            if any("sixstep_http_requests_total" in row[0] for row in rows if row):
                named |= {m for row in rows if row for m in METRIC.findall(row[0])}
            rows = None
    return named


def test_every_metric_an_alert_reads_is_a_row_of_the_readmes_metrics_table() -> None:
    """An ops team reads what each alert's metric means in deploy/README.md's table. A row
    written out of the table's indentation (the list item's two spaces) ended the table there:
    the rows after it, the fast clock's histogram, the relay's and the consumers' metrics,
    were shown as one paragraph of pipes."""
    family = re.compile(r"_(bucket|count|sum)$")
    read = {family.sub("", m) for expr in alert_expressions().values()
            for m in METRIC.findall(expr)}
    assert read - metrics_table() == set()
