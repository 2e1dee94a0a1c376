"""Pages live in web/, the JSON side in api/, and imports run one way: web/ may use api/."""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

PACKAGE = ROOT / "myspinbot"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, as absolute names (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_api_imports_nothing_of_web() -> None:
    for path in sorted((PACKAGE / "api").rglob("*.py")):
        web = {name for name in imported_modules(path) if name.startswith("myspinbot.web")}
        assert not web, f"{path.relative_to(ROOT)} imports {web}"


def test_api_renders_no_template() -> None:
    for path in sorted((PACKAGE / "api").rglob("*.py")):
        assert ".html" not in path.read_text(encoding="utf-8"), path.relative_to(ROOT)


def test_the_moved_pages_keep_their_routes(server, http) -> None:
    assert http.get("/docs").headers["content-type"].startswith("text/html")
    assert http.get("/docs/openapi.json").json()["openapi"] == "3.1.0"
    # No token is set: the sign-in page and the sign-out send to the dashboard.
    assert http.get("/login").status_code in (302, 303)
    assert http.post("/logout").headers["location"] == "/"
