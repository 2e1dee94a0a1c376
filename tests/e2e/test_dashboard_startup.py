"""The dashboard sets itself up over several short tasks (static/src/js/progressive.js)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .e2e_support import ServerProcess, job_card, submit_prompt

pytestmark = pytest.mark.browser

# Runs in the task in which Alpine has started, before any later set-up task: a person's
# first event then must set up everything at once, before the event's own handlers.
INPUT_AT_START = """
document.addEventListener("alpine:initialized", () => {
  const prompt = document.getElementById("prompt");
  const waiting = document.querySelectorAll("[x-init-later]").length;
  const boundBefore = Boolean(prompt._x_model);
  prompt.dispatchEvent(new EVENT_CLASS("EVENT_TYPE", { bubbles: true }));
  window.__startup = {
    waiting,
    boundBefore,
    boundAfter: Boolean(prompt._x_model),
    left: document.querySelectorAll("[x-init-later]").length,
    started: "started" in document.documentElement.dataset,
  };
});
"""

# Notes, for each job card as it enters the page, whether it is still waiting for its
# contents and hidden meanwhile (the observer runs before any later set-up task).
CARDS_AS_INSERTED = """
window.__cards = [];
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (!(node instanceof HTMLElement) || !node.classList.contains("job-card")) continue;
      window.__cards.push({
        waiting: node.hasAttribute("x-init-later"),
        display: getComputedStyle(node).display,
      });
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


@pytest.mark.parametrize(
    ("event_class", "event_type"),
    [
        ("FocusEvent", "focusin"),
        ("KeyboardEvent", "keydown"),
        ("PointerEvent", "pointerdown"),
        ("MouseEvent", "click"),
    ],
)
def test_a_first_input_sets_up_the_whole_page_at_once(
    event_class: str, event_type: str, live_server: ServerProcess, open_dashboard: Callable
) -> None:
    script = INPUT_AT_START.replace("EVENT_CLASS", event_class).replace("EVENT_TYPE", event_type)
    page = open_dashboard(live_server, init_script=script).page
    startup = page.evaluate("window.__startup")
    assert startup["waiting"] > 0, "Alpine's first pass set up every region itself"
    assert not startup["boundBefore"], "the prompt was set up before its region's turn"
    assert startup["boundAfter"] and startup["left"] == 0 and startup["started"], startup
    page.get_by_label("Prompt").fill("a lighthouse at dusk")
    expect(page.locator("#prompt-count")).to_contain_text("20 /")


def test_cards_appear_whole_from_the_snapshot_and_live(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    before = live_server.generate("a card from the snapshot")
    page = open_dashboard(live_server, init_script=CARDS_AS_INSERTED).page
    expect(job_card(page, before["id"]).locator('[data-role="title"]')).to_have_text(
        "a card from the snapshot"
    )
    after = live_server.generate("a card that arrives live")
    expect(job_card(page, after["id"]).locator('[data-role="title"]')).to_have_text(
        "a card that arrives live"
    )
    cards = page.evaluate("window.__cards")
    assert len(cards) >= 2
    assert all(card == {"waiting": True, "display": "none"} for card in cards), cards
    expect(page.locator(".job-card[x-init-later]")).to_have_count(0)


def test_a_new_card_is_scrolled_into_view_once_it_shows(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    # On a phone the job list is below both forms: sending a prompt brings its card into
    # view, which only works once the card is set up and shown.
    page = open_dashboard(live_server, viewport={"width": 412, "height": 823}).page
    job_id = submit_prompt(page, "a card worth scrolling to")
    expect(job_card(page, job_id)).to_be_in_viewport()
