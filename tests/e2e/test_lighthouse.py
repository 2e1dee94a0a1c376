"""Lighthouse's deterministic categories stay at 95 or more on desktop and on mobile.

Performance is left out: it depends on the machine's load. `python -m tests.e2e.lighthouse`
prints all four scores.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from skips import skip_because

from .browser_binary import Chromium
from .e2e_support import ServerProcess
from .lighthouse import LIGHTHOUSE, PRESETS, run_lighthouse, seed_jobs

pytestmark = pytest.mark.browser

DETERMINISTIC = ("accessibility", "best-practices", "seo")


@pytest.fixture(scope="module")
def seeded_server(
    chromium: Chromium,
    start_server: Callable[..., ServerProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    """One server for both presets, with the jobs a person would see after a while."""
    if not LIGHTHOUSE.is_file():
        skip_because("browser tests", "no Lighthouse in tests/tooling", "make install-test")
    server = start_server(step_seconds=0.05, steps=10)
    seed_jobs(server.url, tmp_path_factory.mktemp("media"))
    return server


@pytest.mark.parametrize("preset", PRESETS)
def test_accessibility_best_practices_and_seo_score_95_or_more(
    preset: str, chromium: Chromium, seeded_server: ServerProcess
) -> None:
    report = run_lighthouse(f"{seeded_server.url}/", preset, chromium, DETERMINISTIC)
    below = {category: report.scores[category] for category in DETERMINISTIC}
    below = {category: score for category, score in below.items() if score < 95}
    failing = [f"{a.category} · {a.id} ({a.score:.2f}): {a.title}" for a in report.failing]
    assert below == {}, failing
