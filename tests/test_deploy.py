"""deploy/: the Grafana dashboard and the Prometheus alert rules an on-call person relies on.

The dashboard must be valid JSON whose every PromQL expression names only metrics recarchive exports
(the names in ``worker/daemon/metrics.py`` and the operational gauges of issue 15) or Prometheus's own
``up``; the rules must be valid YAML with what Prometheus requires of an alerting rule, over the same
names. Where ``promtool`` is installed (Debian's ``prometheus`` package) it checks the rules and runs
their unit tests (``deploy/prometheus/recarchive-alerts.test.yml``: series that must fire each alert).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML parses the alert rules")

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "recarchive-dashboard.json"
RULES = REPO / "deploy" / "prometheus" / "recarchive-alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "recarchive-alerts.test.yml"

#: the operational metrics of issue 15.5 (names and labels agreed with the lead)
OPERATIONAL = {
    "recarchive_build_info": {"version"},
    "recarchive_last_discovery_success_timestamp_seconds": {"account", "provider"},
    "recarchive_watermark_lag_seconds": {"account", "provider"},
    "recarchive_parked_recordings": {"account", "provider"},
    "recarchive_oldest_pending_link_expiry_timestamp_seconds": {"account", "provider"},
    "recarchive_verify_last_run_timestamp_seconds": set(),
    "recarchive_verify_failures": {"account"},
    "recarchive_recordings_total": {"account", "provider", "outcome"},
}
PROMETHEUS_OWN = {"up"}
#: what an alert must carry for the on-call person: who is paged how, and what to do
SEVERITIES = {"warning", "critical"}
ALERTS = {"RecarchiveDiscoveryStalled", "RecarchiveParksRising", "RecarchiveVerifyFailed", "RecarchiveLinkExpiryNear",
          "RecarchiveWorkerDown"}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
             "inf", "nan", "atan2"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w$:.])([A-Za-z_:][A-Za-z0-9_:]*)(?!\w)(\s*\()?")


def _sample_names(collectors: list[Any]) -> set[str]:
    """The sample names collectors export (counters get ``_total``, histograms ``_bucket``/``_sum``/
    ``_count``), read from the metric objects themselves."""
    names: set[str] = set()
    for collector in collectors:
        for family in collector.describe():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


def exported_names() -> set[str]:
    """What ``worker/daemon/metrics.py`` (the daemon's counters) exports."""
    pytest.importorskip("prometheus_client")
    from worker.daemon.metrics import metrics

    return _sample_names(list(vars(metrics()).values()))


def test_operational_gauges_in_the_code_keep_the_agreed_names() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    gauges = pytest.importorskip("worker.daemon.gauges", reason="the operational gauges are not built yet")
    made = gauges.make_gauges(prometheus_client.CollectorRegistry())
    names = _sample_names(list(vars(made).values()))
    assert names <= set(OPERATIONAL), f"gauges the dashboard and alerts do not know: {names - set(OPERATIONAL)}"


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, keywords, labels or variables)."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = _GROUPING.sub("", text)
    text = re.sub(r"\boffset\s+\d+[smhdwy]", "", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS or re.fullmatch(r"\d.*", name):
            continue
        names.add(name)
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, queue) (rate(recarchive_queue_lag_seconds_bucket{account=~"$a"}'
            '[$__rate_interval]))) / on(account) group_left(provider) (up offset 1h) > bool 0 unless x_y')
    assert metric_names(expr) == {"recarchive_queue_lag_seconds_bucket", "up", "x_y"}
    assert metric_names('time() - recarchive_verify_last_run_timestamp_seconds > 8 * 86400') == \
        {"recarchive_verify_last_run_timestamp_seconds"}


def _allowed() -> set[str]:
    return set(OPERATIONAL) | exported_names() | PROMETHEUS_OWN


def test_existing_metric_names_are_kept() -> None:
    names = exported_names()
    for name in ("recarchive_archived_total", "recarchive_archived_bytes_total", "recarchive_failures_total",
                 "recarchive_parked_total", "recarchive_not_ready_total", "recarchive_queue_lag_seconds_bucket",
                 "recarchive_download_seconds_bucket"):
        assert name in names, f"{name} is documented (docs/daemon.md) and used by the dashboard"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']}: no query"
        assert panel["datasource"]["uid"] == "${datasource}", f"{panel['title']}: not on the chosen data source"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_dashboard_reads_only_metrics_recarchive_exports(dashboard: dict[str, Any]) -> None:
    allowed = _allowed()
    seen: set[str] = set()
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            names = metric_names(target["expr"])
            assert names, f"{panel['title']}: {target['expr']!r} reads no metric"
            assert names <= allowed, f"{panel['title']}: unknown metrics {names - allowed}"
            seen |= names
            operational = [OPERATIONAL[name] for name in names if name in OPERATIONAL]
            carried = set().union(*operational) | ({"job", "instance"} if "up" in names else set())
            for label in re.findall(r"(\w+)=~?\"", target["expr"]):  # matchers name labels the series carry
                assert not operational or label in carried, f"{panel['title']}: no label {label} on {names}"
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", str(text))
        if variable["type"] == "query":
            assert found, f"variable {variable['name']}: {text!r}"
            assert found.group(1) in allowed and found.group(2) in OPERATIONAL.get(found.group(1), {found.group(2)})
    # every operational gauge an on-call person needs is on the dashboard
    assert set(OPERATIONAL) <= seen


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and set(document) == {"groups"}
    found: list[dict[str, Any]] = []
    for group in document["groups"]:
        assert group["name"] and group["rules"], group
        found.extend(group["rules"])
    return found


def test_alert_rules_have_what_prometheus_and_the_on_call_person_need(rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert ALERTS <= set(names)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule["alert"]
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"(\d+[smhdwy])+", str(rule["for"])), f"{rule['alert']}: for {rule['for']!r}"
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_alert_rules_read_only_metrics_recarchive_exports(rules: list[dict[str, Any]]) -> None:
    allowed = _allowed()
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names and names <= allowed, f"{rule['alert']}: {names - allowed or 'no metric'}"
        for text in rule["annotations"].values():  # templates name only labels the series carry
            for label in re.findall(r"\$labels\.(\w+)", text):
                carried = set().union(*(OPERATIONAL.get(n, {"job", "instance"}) for n in names))
                assert label in carried | {"job", "instance"}, f"{rule['alert']}: no label {label}"


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus): YAML checks above only")
    return promtool


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_fire_each_alert() -> None:
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
              for case in test["alert_rule_test"] if case.get("exp_alerts")}
    rule_names = {rule["alert"] for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
                  for rule in group["rules"]}
    assert tested == rule_names, f"alerts without a firing case: {rule_names - tested}"
    done = subprocess.run([_promtool(), "test", "rules", RULE_TESTS.name], capture_output=True, text=True,
                          timeout=120, check=False, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
