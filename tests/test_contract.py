"""The README and API.md stay true: every setting and route documented and served."""

from __future__ import annotations

import re
from pathlib import Path

from skips import skip_because

from myspinbot.config import documented_variables

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
API_MD = ROOT.parent / "shared" / "API.md"


def test_every_setting_is_in_the_readme() -> None:
    missing = [name for name in documented_variables() if f"`{name}`" not in README]
    assert missing == []


def api_md_routes() -> set[tuple[str, str]]:
    if not API_MD.exists():
        skip_because(
            "API.md checks",
            f"no {API_MD.name} beside the repository",
            "put shared/API.md beside it",
        )
    rows = re.findall(r"^\| `(GET|POST) (/[^`]*)`", API_MD.read_text(), re.MULTILINE)
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


def test_every_api_md_route_is_served_and_documented() -> None:
    routes = api_md_routes()
    assert len(routes) >= 9
    assert routes <= served_routes()
    documented = {
        (m, re.sub(r"<\w+>", "{}", p)) for m, p in re.findall(r"`(GET|POST) (/[^`,]*)`", README)
    }
    assert routes <= documented
