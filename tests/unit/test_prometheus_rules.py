"""config/prometheus/alerts.yml: checked and unit-tested by `promtool` (Debian's `prometheus` package)
where it is installed, and every bant-sync metric the rules use is one /metrics exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.unit.serve_support import T0, TOKEN, connection, make_worker
from tests.unit.test_ops_metrics import add_run
from worker.serve.ops_api import create_app

RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts_test.yml"
INSTALL = (
    "promtool not found: install it with `apt-get install prometheus` (Debian) to run the alert rule tests"
)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(INSTALL)
    return found


def test_rules_are_valid() -> None:
    """`promtool check rules` accepts the rules file."""
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    """`promtool test rules` runs alerts_test.yml: each alert fires on its case and stays quiet on the
    others (old failures on a steady counter do not fire again)."""
    result = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    """No alert in the rules file goes untested."""
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", ())}
    assert alerts == tested


def test_rules_use_only_exposed_metrics(tmp_path: Path) -> None:
    """Every `bant_sync_*` name in the rules and in their tests is a sample name /metrics exposes."""
    worker = make_worker(tmp_path, connection("sf"))
    try:
        add_run(worker.store, "r1", T0, "succeeded", connection="sf")
        with TestClient(create_app(worker, TOKEN, 4096), base_url="http://127.0.0.1") as client:
            text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    finally:
        worker.close()
    exposed = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    used = set(re.findall(r"\bbant_sync_[a-z_]+", RULES.read_text() + RULE_TESTS.read_text()))
    used -= {"bant_sync_"}
    assert used, "the rules use no bant-sync metric"
    assert used <= exposed, used - exposed
