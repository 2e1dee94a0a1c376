"""Personas on the dashboard: the card a training makes, the generate form that picks one by
name and gives it a line, and a finished clip that plays with its sound in its card."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from skips import skip_because
from speaking_standins import WRITER_MODEL, persona_comfyui, speaking_engines
from support import wait_until

from .e2e_support import ServerProcess, free_port, job_card, submit_prompt, write_pngs, write_wav

pytestmark = pytest.mark.browser

# What the back end of #20/#21 adds to a completed training (the shared contract).
PERSONA_ARTIFACTS = ("photo.jpg", "voice.wav")
VOICE_SECONDS = 6.0  # a voice sample must be 5–60 s long
H264_AAC = 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"'


def train(server: ServerProcess, tmp_path: Path, name: str) -> dict[str, Any]:
    """A training job sent as a script would send it, waited for until it completed."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    images = write_pngs(folder, 2)
    voice = write_wav(folder / "voice.wav", seconds=VOICE_SECONDS)
    files = [("images", (p.name, p.read_bytes(), "image/png")) for p in images]
    files.append(("voice", (voice.name, voice.read_bytes(), "audio/wav")))
    answer = httpx.post(f"{server.url}/api/train", files=files, data={"name": name}, timeout=30)
    assert answer.status_code == 202, answer.text
    return wait_finished(server, answer.json()["id"])


def wait_finished(server: ServerProcess, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The job once it finished, read over /ws (its events, not a polling loop)."""
    from websockets.sync.client import connect

    status, job = server.request("GET", f"/api/status/{job_id}")
    assert status == 200, job
    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10) as ws:
        status, job = server.request("GET", f"/api/status/{job_id}")  # after subscribing
        while job["state"] not in ("completed", "failed", "cancelled"):
            frame = json.loads(ws.recv(timeout=timeout))
            if isinstance(frame.get("job"), dict) and frame["job"]["id"] == job_id:
                job = frame["job"]
    assert job["state"] == "completed", job
    return job


def missing_persona_parts(job: dict[str, Any]) -> list[str]:
    names = {a["name"] for a in job["artifacts"]}
    missing = [name for name in PERSONA_ARTIFACTS if name not in names]
    if not (job.get("result") or {}).get("trigger"):
        missing.append("result.trigger")
    return missing


@pytest.fixture(scope="module")
def persona_server(
    start_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ServerProcess, list[dict[str, Any]]]:
    """A server with three completed trainings, oldest first: two named Sam, one Alex."""
    server = start_server()
    folder = tmp_path_factory.mktemp("personas")
    return server, [train(server, folder, name) for name in ("Sam", "Sam", "Alex")]


# Records every layout shift, with the sections its moved elements sit in.
LAYOUT_SHIFTS = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const sections = (entry.sources || []).map((source) => {
      const section = source.node && source.node.closest ? source.node.closest("section") : null;
      return section ? section.id || section.getAttribute("aria-labelledby") : "";
    });
    window.__shifts.push({ value: entry.value, sections });
  }
}).observe({ type: "layout-shift", buffered: true });
"""
FORMS_AND_PERSONAS = {"train-heading", "personas", "generate-heading"}


def test_persona_cards_arrive_without_moving_or_widening_the_page(
    persona_server: tuple[ServerProcess, list[dict[str, Any]]], open_dashboard: Callable
) -> None:
    server, (sam, _, alex) = persona_server
    phone = {"width": 412, "height": 823}
    page = open_dashboard(server, init_script=LAYOUT_SHIFTS, viewport=phone).page
    cards = page.locator('[data-role="persona"]')
    expect(cards).to_have_count(3)
    expect(cards.first.locator('[data-role="name"]')).to_have_text("Alex")  # newest first
    expect(page.locator('[data-role="persona-count"]')).to_have_text("3 personas")
    expect(page.locator('[data-role="speaks"]')).not_to_be_empty()  # /health has answered
    # The strip scrolls sideways inside itself; the page stays a phone's width.
    assert page.evaluate("document.documentElement.scrollWidth") == phone["width"]
    shifts = page.evaluate("window.__shifts")
    moved = [s for s in shifts if FORMS_AND_PERSONAS.intersection(s["sections"])]
    assert moved == [], shifts

    card = page.locator(f'[data-persona-id="{alex["id"]}"]')
    card.get_by_role("button", name="Use Alex for a clip").click()
    expect(card.get_by_role("button", name="Use Alex for a clip")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.get_by_role("button", pressed=True)).to_have_count(1)
    expect(page.get_by_role("combobox", name="Persona")).to_have_value(alex["id"])
    expect(page.get_by_label("Prompt")).to_be_focused()
    page.get_by_role("combobox", name="Persona").select_option(sam["id"])
    expect(page.get_by_role("button", pressed=True)).to_have_count(1)
    expect(
        page.locator(f'[data-persona-id="{sam["id"]}"]').get_by_role("button")
    ).to_have_attribute("aria-pressed", "true")


def test_the_generate_form_picks_a_persona_by_name_and_sends_its_id_and_line(
    persona_server: tuple[ServerProcess, list[dict[str, Any]]], open_dashboard: Callable
) -> None:
    server, (first, second, alex) = persona_server
    page = open_dashboard(server).page
    persona = page.get_by_role("combobox", name="Persona")
    options = persona.locator("option")
    expect(options).to_have_count(4)
    labels = options.all_inner_texts()
    assert labels[0] == "None — base model" and labels[1] == "Alex", labels
    assert all(label.startswith("Sam · ") for label in labels[2:]), labels
    assert len(set(labels)) == 4, labels
    for job in (first, second, alex):
        assert not any(job["id"][:4] in label or job["id"][-4:] in label for label in labels)

    persona.select_option(label=labels[3])  # the older Sam
    page.get_by_label("Line to say").fill("  Hello from the rooftop!  ")
    page.get_by_label("Prompt").fill("Sam on a rooftop at sunset")
    with page.expect_request(lambda r: r.url.endswith("/api/generate")) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert sent.value.post_data_json == {
        "prompt": "Sam on a rooftop at sunset",
        "lora": first["id"],
        "say": "Hello from the rooftop!",
    }
    clip_id = sent.value.response().json()["id"]
    card = job_card(page, clip_id)
    expect(card.locator('[data-role="detail"]')).to_have_text("Persona: Sam")
    expect(page.get_by_label("Line to say")).to_have_value("")


def test_a_trained_persona_shows_its_photo_name_trigger_and_voice(
    live_server: ServerProcess, open_dashboard: Callable, tmp_path: Path
) -> None:
    job = train(live_server, tmp_path, "Kai, by the window")
    missing = missing_persona_parts(job)
    if missing:
        skip_because(
            "persona cards",
            f"this server's trainings carry no {', '.join(missing)}",
            "the back end of #20 (trigger) and #21 (photo.jpg, voice.wav)",
        )
    page = open_dashboard(live_server).page

    card = page.locator(f'[data-role="persona"][data-persona-id="{job["id"]}"]')
    expect(card.locator('[data-role="name"]')).to_have_text("Kai, by the window")
    expect(card.locator('[data-role="trigger"]')).to_have_text(job["result"]["trigger"])
    photo = card.get_by_role("img", name="Photo of Kai, by the window")
    expect(photo).to_have_attribute("src", f"/api/jobs/{job['id']}/artifacts/photo.jpg")
    assert photo.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    voice = card.locator('audio[data-role="voice"]')
    expect(voice).to_have_attribute("src", f"/api/jobs/{job['id']}/artifacts/voice.wav")
    assert voice.evaluate("a => a.controls && !a.muted") is True
    duration = voice.evaluate(
        """a => new Promise((resolve, reject) => {
            a.addEventListener("loadedmetadata", () => resolve(a.duration), { once: true });
            a.addEventListener("error", () => reject(new Error(`voice: ${a.error.code}`)));
            setTimeout(() => reject(new Error("the voice sample did not load in 15 s")), 15000);
            a.load();
        })"""
    )
    assert abs(duration - VOICE_SECONDS) < 0.1, duration
    assert job["id"] not in card.inner_text()


def test_with_a_voice_engine_the_form_says_who_speaks_what(
    start_server: Callable[..., ServerProcess], open_dashboard: Callable, tmp_path: Path
) -> None:
    # A voice engine that is configured, whether or not it is up, makes the form say who
    # speaks; nothing listens on this port. Workers use (and probe) engines only with a
    # ComfyUI configured: the mock pipelines speak no line.
    with persona_comfyui(tmp_path) as comfy:
        server = start_server(
            MYSPINBOT_COMFYUI_URL=comfy.url, MYSPINBOT_VOICE_URL=f"http://127.0.0.1:{free_port()}"
        )
        try:
            sam = train(server, tmp_path, "Sam")
            wait_until(lambda: voice_in_health(server), 30, "the voice engine in /health")
            page = open_dashboard(server).page
            speaks = page.locator('[data-role="speaks"]')
            expect(speaks).to_have_text("speaks: nothing until you type a line")
            page.get_by_role("combobox", name="Persona").select_option(sam["id"])
            expect(speaks).to_have_text("Sam speaks: nothing until you type a line")
            page.get_by_label("Line to say").fill("Hello from the rooftop!")
            expect(speaks).to_have_text("Sam speaks: “Hello from the rooftop!”")
            engine = page.locator('[data-role="engine"]', has_text="Voice engine")
            expect(engine).to_contain_text("Unreachable")
        finally:
            server.stop()


def voice_in_health(server: ServerProcess) -> bool:
    health = httpx.get(f"{server.url}/health", timeout=10).json()
    return any(e.get("engine") == "voice" for e in health.get("engines") or [])


def test_without_a_voice_engine_the_form_says_so(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    page = open_dashboard(live_server).page
    expect(page.locator("#connection-status")).to_contain_text("Live")
    expect(page.locator('[data-role="speaks"]')).to_have_text("no voice engine: the clip is silent")
    page.get_by_label("Line to say").fill("A line nobody will hear")
    expect(page.locator('[data-role="speaks"]')).to_have_text("no voice engine: the clip is silent")


def test_a_clip_made_without_a_voice_engine_says_so_on_its_card(
    live_server: ServerProcess, open_dashboard: Callable
) -> None:
    status, job = live_server.request(
        "POST", "/api/generate", {"prompt": "a quiet street", "say": "Nobody hears this"}
    )
    assert status == 202, job
    job = wait_finished(live_server, job["id"])
    if "voice" not in (job.get("result") or {}):
        skip_because(
            "persona cards",
            "this server's generate jobs carry no result.voice",
            "the back end of #21 (result.line, result.voice)",
        )
    assert job["result"]["voice"] == "no_engine", job["result"]
    page = open_dashboard(live_server).page
    card = job_card(page, job["id"])
    expect(card.locator('[data-role="voice"]')).to_have_text("no voice engine: the clip is silent")
    if job["result"].get("line"):
        expect(card.locator('[data-role="line"]')).to_have_text(
            f"speaks: “{job['result']['line']}”"
        )


# --- a clip that speaks ----------------------------------------------------------------------

SHOT = "a woman waves at the camera on a sunny beach, slow dolly in"
LINE = "Hello from the beach"  # 4 words: 1.6 s from the speech stand-in
CLIP_FRAMES = "33"  # 2.06 s at 16 fps: holds 4 words; the stand-in encodes every frame

# Resolves once the <video> has decoded sound after playing; rejects if it ends without any.
DECODED_AUDIO = """v => new Promise((resolve, reject) => {
    const check = () => {
        if (v.webkitAudioDecodedByteCount > 0) resolve(v.webkitAudioDecodedByteCount);
        else if (v.ended) reject(new Error("the clip ended without decoding audio"));
        else requestAnimationFrame(check);
    };
    v.addEventListener("error", () => reject(new Error(`clip: ${v.error.code}`)));
    setTimeout(() => reject(new Error("no audio decoded in 15 s")), 15000);
    if (v.paused) v.play().catch(reject);
    check();
})"""


def test_a_persona_speaks_ollamas_line_in_a_clip_that_plays_with_its_sound_in_its_card(
    start_server: Callable[..., ServerProcess], open_dashboard: Callable, tmp_path: Path
) -> None:
    """Real engines' protocols end to end: the persona is trained on ComfyUI with a voice
    sample, Ollama writes the shot and the line, the speech server says it in the persona's
    voice, ComfyUI puts it on the clip as AAC, and the card plays it."""
    with speaking_engines(tmp_path, shot=SHOT, line=LINE) as engines:
        server = start_server(
            MYSPINBOT_COMFYUI_URL=engines.comfy.url,
            MYSPINBOT_CLIP_FRAMES=CLIP_FRAMES,
            **engines.settings(),
        )
        try:
            alex = train(server, tmp_path, "Alex")
            probe = open_dashboard(server)
            skip_unless_h264_aac_plays(probe.page)
            clip_id = generate_with_persona(probe.page, "Alex", "me waving on a beach")
            card = job_card(probe.page, clip_id)
            expect(card).to_have_attribute("data-state", "completed", timeout=120_000)
            spoken_with = engines.voice.state()["requests"][-1]["spoken_with"]
            expect(card.locator('[data-role="detail"]')).to_have_text("Persona: Alex")
            expect(card.locator('[data-role="line"]')).to_have_text(f"speaks: “{LINE}”")
            expect(card.locator('[data-role="voice"]')).to_have_count(0)  # no "silent" note
            assert_clip_plays_with_sound(card, clip_id)
            assert probe.console_errors == []
        finally:
            server.stop()
    assert spoken_with == f"myspinbot-{alex['id']}"  # in the persona's own voice


def generate_with_persona(page: Any, name: str, prompt: str) -> str:
    """Pick the persona by name, leave the line to Ollama, send the prompt: the job's id."""
    page.get_by_role("combobox", name="Persona").select_option(label=name)
    speaks = page.locator('[data-role="speaks"]')
    expect(speaks).to_have_text(f"{name} speaks: a line {WRITER_MODEL} writes for the shot")
    return submit_prompt(page, prompt)


def skip_unless_h264_aac_plays(page: Any) -> None:
    if page.evaluate(f"document.createElement('video').canPlayType('{H264_AAC}')") == "":
        skip_because(
            "clip audio",
            "this Chromium cannot play H.264 + AAC (built without those codecs)",
            "apt-get install chromium, or MYSPINBOT_CHROMIUM=<a Chromium that plays H.264>",
        )


def assert_clip_plays_with_sound(card: Any, job_id: str) -> None:
    video = card.locator('video[data-role="clip"]')
    expect(video).to_have_count(1)
    src = video.get_attribute("src")
    assert src is not None and src.startswith(f"/api/jobs/{job_id}/artifacts/"), src
    assert src.endswith(".mp4"), src
    expect(card.locator(f'a[download][href="{src}"]')).to_be_visible()
    assert video.evaluate("v => v.controls && !v.muted && v.volume > 0") is True
    video.click()  # the play a person starts: the browser lets a clip with sound play
    assert video.evaluate(DECODED_AUDIO) > 0
