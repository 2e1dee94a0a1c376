"""The reference stays true: every setting and route documented and served, and nothing more."""

from __future__ import annotations

import re
from pathlib import Path

from myspinbot.config import documented_variables

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = set(re.findall(r"^\| `(\w+)` \|", CONFIGURATION, re.MULTILINE))
    missing = [name for name in documented_variables() if name not in rows]
    assert missing == []


def readme_routes() -> set[tuple[str, str]]:
    """The HTTP API table's routes (`| `GET /api/status/<id>` | …`)."""
    section = API[API.index("## HTTP API") : API.index("### The job object")]
    rows = re.findall(r"^\| `(GET|POST) (/[^`]*)`", section, re.MULTILINE)
    return {(method, re.sub(r"<\w+>", "{}", path)) for method, path in rows}


def served_routes() -> set[tuple[str, str]]:
    from sanic import Sanic

    from myspinbot.app import create_app
    from myspinbot.config import Settings

    Sanic.test_mode = True
    app = create_app(Settings.from_env({}))
    found = set()
    for route in app.router.routes:
        path = "/" + re.sub(r"<\w+(:\w+)?>", "{}", route.path).lstrip("/")
        found |= {(method, path) for method in route.methods}
    return found


def test_every_documented_route_is_served() -> None:
    routes = readme_routes()
    assert len(routes) >= 9
    assert routes <= served_routes()


def test_every_served_route_is_in_the_api_reference() -> None:
    documented = {
        (m, re.sub(r"<\w+>", "{}", p)) for m, p in re.findall(r"`(GET|POST) (/[^`,]*)`", API)
    }
    if "## WebSocket `/ws`" in API:
        documented.add(("GET", "/ws"))
    undocumented = {
        (method, path)
        for method, path in served_routes()
        if method in ("GET", "POST") and not path.startswith(("/static", "/bench"))
    } - documented
    assert undocumented == set()
