"""The documentation stays complete and whole: the README and docs/ name every variable the
code reads, every route the app registers and every make target; their relative links
resolve; the README stays short enough to read first.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from skips import skip_because

from myspinbot.config import documented_variables

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 12_000  # bytes

# Where the code reads the environment: the product, the server script, the bench, the tests.
CODE = [ROOT / "app.py", ROOT / "myspinbot", ROOT / "bench", ROOT / "tests"]
# Variables of the operating system that the code passes on or extends, not ours to document.
SYSTEM_VARIABLES = {"PATH", "LD_LIBRARY_PATH", "PYTHONPATH"}
# Pages that other parts of the documentation add; a link may name one before it exists.
PAGES_TO_COME: set[str] = set()

ROUTE_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def all_docs() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


def documents(text: str, name: str) -> bool:
    """`name` appears as code (`NAME`, or `NAME=…` in a command) in the documentation."""
    return re.search(rf"`[^`\n]*(?<![\w/]){re.escape(name)}(?![\w/])[^`\n]*`", text) is not None


# --- environment variables -----------------------------------------------------------------


def python_files() -> Iterator[Path]:
    for place in CODE:
        if place.is_file():
            yield place
        else:
            yield from (p for p in place.rglob("*.py") if "node_modules" not in p.parts)


def is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def variable_names(tree: ast.Module) -> set[str]:
    """Names of the environment variables a module reads or sets, by literal or constant."""
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }

    def value(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_os_environ(node.value):
            found.add(value(node.slice))  # os.environ["X"], read or set
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_get = isinstance(func, ast.Attribute) and func.attr == "get"
            if (environ_get and is_os_environ(func.value)) or (
                isinstance(func, ast.Attribute) and func.attr == "getenv"
            ):
                found.add(value(node.args[0]))  # os.environ.get("X"), os.getenv("X")
        elif isinstance(node, ast.Compare) and any(is_os_environ(c) for c in node.comparators):
            found.add(value(node.left))  # "X" in os.environ
        elif isinstance(node, ast.keyword) and node.arg == "env_prefix":
            found.add(value(node.value))  # Sanic's MYSPINBOT_SANIC_ prefix
    return {name for name in found if name} - SYSTEM_VARIABLES


def variables_the_code_reads() -> set[str]:
    names = set(documented_variables())  # Settings.from_env, the server's one reader
    for path in python_files():
        names |= variable_names(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return names


def test_the_scan_finds_the_variables_read_outside_the_settings() -> None:
    found = variables_the_code_reads()
    outside = {"MYSPINBOT_CHROMIUM", "MYSPINBOT_MAIN_PID", "PROMETHEUS_MULTIPROC_DIR"}
    assert outside | {"MYSPINBOT_SANIC_", "REDIS_URL", "MYSPINBOT_PORT"} <= found


def test_every_variable_the_code_reads_is_documented() -> None:
    text = all_docs()
    missing = sorted(name for name in variables_the_code_reads() if not documents(text, name))
    assert missing == [], f"not in README.md or docs/: {missing}"


# --- routes ---------------------------------------------------------------------------------


def registered_routes() -> set[tuple[str, str, bool]]:
    """(method, path, is_websocket) of every route, the bench's opt-in route included."""
    from sanic import Sanic

    from myspinbot.app import create_app
    from myspinbot.config import Settings

    Sanic.test_mode = True
    app = create_app(Settings.from_env({"MYSPINBOT_BENCH_ROUTES": "true"}))
    routes = set()
    for route in app.router.routes:
        path = "/" + re.sub(r"<[^>]+>", "<>", route.path).lstrip("/")
        for method in route.methods & ROUTE_METHODS:
            routes.add((method, path, bool(route.extra.websocket)))
    return routes


def documented_routes(text: str) -> set[tuple[str, str]]:
    found = re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", text)
    return {(method, re.sub(r"<[^>]+>", "<>", path)) for method, path in found}


def test_every_registered_route_is_documented() -> None:
    text = all_docs()
    documented = documented_routes(text)
    routes = registered_routes()
    assert ("GET", "/api/status/<>", False) in routes
    missing = sorted(
        f"{method} {path}"
        for method, path, websocket in routes
        if (method, path) not in documented
        and not (websocket and f"`{path}`" in text)  # a socket's path, named, is enough
    )
    assert missing == [], f"not in README.md or docs/: {missing}"


# --- make targets ---------------------------------------------------------------------------


def make_targets() -> set[str]:
    """The Makefile's own targets: rule heads that are plain names (not files or variables)."""
    heads = re.findall(r"^([A-Za-z][\w-]*(?: [A-Za-z][\w-]*)*)\s*:(?!=)", _makefile(), re.M)
    return {target for head in heads for target in head.split()}


def _makefile() -> str:
    return (ROOT / "Makefile").read_text(encoding="utf-8")


def test_every_make_target_is_documented() -> None:
    targets = make_targets()
    assert {"install", "run", "test", "clean", "bench"} <= targets
    text = all_docs()
    missing = sorted(t for t in targets if not re.search(rf"`make {re.escape(t)}(?![\w-])", text))
    assert missing == [], f"not in README.md or docs/: {missing}"


def test_every_make_variable_is_documented() -> None:
    variables = set(re.findall(r"^([A-Z_]+) \?=", _makefile(), re.M))
    assert {"COMFYUI", "SEED_NODE"} <= variables
    text = all_docs()
    assert sorted(v for v in variables if not documents(text, v)) == []


# --- the README and the links ---------------------------------------------------------------


def test_the_readme_stays_under_12_kb() -> None:
    size = len(README.read_bytes())
    assert size < README_LIMIT, f"README.md is {size} bytes: move reference into docs/"


def test_the_readme_starts_where_a_person_starts() -> None:
    text = README.read_text(encoding="utf-8")
    quick_start = text.index("## Quick start")
    assert "docs/dashboard.png" in text[:quick_start]
    for needed in ("make run", "curl ", "myspinbot submit", "MYSPINBOT_PORT", "API_TOKEN"):
        assert needed in text[quick_start:], needed


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (outside code blocks)."""
    anchors: set[str] = set()
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def broken_links(page: Path) -> list[str]:
    broken = []
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        relative = file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else str(file)
        if not file.exists():
            if relative not in PAGES_TO_COME:
                broken.append(f"{target} (no {relative})")
        elif anchor and file.suffix == ".md" and anchor not in heading_anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {relative})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_finds_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n[ok](other.md#a-code-heading) [ok](#top) [ok](https://example.com/x.md)\n"
        "[bad](other.md#no-such-heading) [bad](nowhere.md)\n```\n[in code](nowhere.md)\n```\n"
    )
    assert broken_links(page) == [
        f"other.md#no-such-heading (no heading #no-such-heading in {tmp_path / 'other.md'})",
        f"nowhere.md (no {tmp_path / 'nowhere.md'})",
    ]


# --- .env -------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_env_file", [True, False])
def test_make_run_says_it_does_not_read_a_dot_env(tmp_path: Path, with_env_file: bool) -> None:
    """As docs/configuration.md says: only compose reads .env, and `make run` says so."""
    if shutil.which("make") is None:
        skip_because("make checks", "no make on PATH", "apt-get install make")
    if with_env_file:
        (tmp_path / ".env").write_text("MYSPINBOT_PORT=9999\n")
    # The Makefile run in an empty folder, its set-up taken as done, `true` as the Python.
    done = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "-o", "install", "run", "PY=true"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    notice = "make run: .env is read by ops/compose.yaml only"
    assert (notice in done.stderr) is with_env_file
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "Only the compose stack reads `.env`" in configuration
