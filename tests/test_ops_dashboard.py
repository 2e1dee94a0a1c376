"""The Grafana dashboard in ops/: well formed, valid PromQL, only metrics the stack exports."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from ops_helpers import (
    DASHBOARD,
    METRICS_REFERENCE,
    dashboard_exporter_metric_names,
    dashboard_expressions,
    dashboard_metric_names,
    dashboard_panels,
    exporter_metrics,
    exposition_metric_names,
    promql_metric_names,
    readme_metric_names,
    skip_no_promtool,
    system_tool,
)
from support import wait_until

# prometheus_client's default process and platform collectors
DEFAULT_METRIC_PREFIXES = ("process_", "python_")
# Grafana's variables, replaced by plausible values so promtool can parse the PromQL.
GRAFANA_VALUES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}
# What the Redis row must show (the exporter's names for each).
REDIS_ROW_METRICS = {
    "memory used": "redis_memory_used_bytes",
    "memory limit": "redis_memory_max_bytes",
    "connected clients": "redis_connected_clients",
    "commands per second": "redis_commands_processed_total",
    "AOF last write status": "redis_aof_last_write_status",
    "AOF rewrite status": "redis_aof_last_bgrewrite_status",
    "AOF rewrite in progress": "redis_aof_rewrite_in_progress",
    "keyspace": "redis_db_keys",
    "evictions": "redis_evicted_keys_total",
}


@pytest.fixture()
def stack_like_redis(redis_binary: str, tmp_path: Path) -> Iterator[redis.Redis]:
    """A private Redis on a unix socket, configured like the stack's (AOF, noeviction)."""
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [redis_binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
        + ["--save", "", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]
        + ["--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=5)

    def answers() -> bool:
        try:  # the socket file appears just before the server listens on it
            return sock.exists() and client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, message="redis-server")
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def rows(board: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The dashboard's panels grouped under the row above them, by row title."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for panel in sorted(board["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = panel["title"]
            grouped[current] = list(panel.get("panels", []))
        else:
            grouped.setdefault(current, []).append(panel)
    return grouped


def panel_metric_names(panel: dict[str, Any]) -> set[str]:
    return set().union(*(promql_metric_names(t["expr"]) for t in panel["targets"]))


def test_dashboard_panels_have_targets_on_the_provisioned_datasource():
    board = dashboard()
    assert board["uid"] == "myspinbot"
    assert "DS_PROMETHEUS" not in DASHBOARD.read_text(encoding="utf-8")
    panels = dashboard_panels(board)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    graphs = [panel for panel in panels if panel["type"] != "row"]
    assert len(graphs) >= 10
    for panel in graphs:
        assert panel.get("targets"), f"panel {panel['title']!r} has no targets"
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        for target in panel["targets"]:
            assert target.get("expr"), f"panel {panel['title']!r} has an empty query"
            assert target.get("datasource", panel["datasource"])["uid"] == "prometheus"


def test_dashboard_panels_do_not_overlap():
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard_panels(dashboard()):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_dashboard_queries_only_metrics_the_stack_exports():
    # The app's metrics as docs/api.md documents them (test_metrics.py checks the
    # dashboard against a live /metrics too), the exporter's from the list kept
    # with its source in tests/data/.
    documented = readme_metric_names(METRICS_REFERENCE)
    assert "myspinbot_queue_depth" in documented, "the Metrics table of docs/api.md was not parsed"
    app_unknown = {
        name
        for name in dashboard_metric_names(DASHBOARD)
        if name not in documented and not name.startswith(DEFAULT_METRIC_PREFIXES)
    }
    assert app_unknown == set()
    exporter_names = dashboard_exporter_metric_names(DASHBOARD)
    assert exporter_names, "the dashboard has no Redis exporter panels"
    assert exporter_names - set(exporter_metrics()) == set()


def test_dashboard_shows_every_metric_the_readme_lists():
    # myspinbot_redis_up says whether a scrape could read Redis; the Redis row shows the
    # exporter's redis_up instead.
    listed = {
        name
        for name in readme_metric_names(METRICS_REFERENCE)
        if name.startswith("myspinbot_") and name != "myspinbot_redis_up"
    }
    assert listed - dashboard_metric_names(DASHBOARD) == set()


def test_dashboard_expressions_are_valid_promql(tmp_path):
    promtool = system_tool("promtool") or skip_no_promtool()
    rules = []
    for number, expr in enumerate(dashboard_expressions(DASHBOARD)):
        for variable, value in GRAFANA_VALUES.items():
            expr = expr.replace(variable, value)
        expr = re.sub(r"\$\w+", ".*", expr)  # multi-value variables use =~
        rules.append({"record": f"dashboard:expr_{number}", "expr": expr})
    rule_file = tmp_path / "dashboard-rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout + result.stderr


# -------------------------------------------------------------------- Redis row


def test_dashboard_has_a_redis_row_with_redis_health():
    redis_panels = rows(dashboard())["Redis"]
    shown = set().union(*(panel_metric_names(panel) for panel in redis_panels))
    missing = {what for what, name in REDIS_ROW_METRICS.items() if name not in shown}
    assert missing == set()
    for panel in redis_panels:
        for target in panel["targets"]:
            for name in promql_metric_names(target["expr"]):
                assert f'{name}{{job="redis"' in target["expr"], (panel["title"], name)


def test_dashboard_shows_any_eviction_in_red():
    (panel,) = [
        panel
        for panel in rows(dashboard())["Redis"]
        if panel_metric_names(panel) == {"redis_evicted_keys_total"}
    ]
    assert panel["type"] == "stat"
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps == [{"color": "green", "value": None}, {"color": "red", "value": 1}]
    assert "noeviction" in panel["description"]


def test_redis_exporter_metrics_come_from_info_fields_a_real_redis_reports(stack_like_redis):
    # The exporter turns fields of INFO ALL into metrics; each field the list names
    # must exist on a Redis configured like the stack's.
    client = stack_like_redis
    client.set("ops-test", "1")  # a key in db0, so INFO keyspace lists it
    client.ping()  # INFO commandstats has a cmdstat_ping entry
    info = client.info("all")
    fields = {field for field in exporter_metrics().values() if field}
    assert "used_memory" in fields and "aof_last_write_status" in fields
    assert fields - set(info) == set()
    assert info["aof_enabled"] == 1 and info["maxmemory_policy"] == "noeviction"
    assert info["aof_last_write_status"] == "ok" and info["evicted_keys"] == 0


# -------------------------------------------------------------------- helpers


def test_promql_metric_names_skips_functions_labels_keywords_and_variables():
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{route=~"$route",'
        ' x="b_total"}[$__rate_interval] offset 1h))) / on(queue) group_left(state) c:rule'
        " or vector(0) and d_total unless bool e"
    )
    assert promql_metric_names(expr) == {"a_seconds_bucket", "c:rule", "d_total", "e"}


def test_exposition_metric_names_match_dashboard_naming():
    body = (
        '# HELP q jobs\n# TYPE q gauge\nq{queue="train"} 1.0\n'
        '# TYPE f_total counter\nf_total{queue="train"} 3.0\nf_created 1.7e9\n'
        'h_bucket{le="+Inf"} 2.0\nh_count 2.0\nh_sum 0.5\n'
    )
    assert exposition_metric_names(body) == {"q", "f_total", "f_created", "h"}
