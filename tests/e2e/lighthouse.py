"""Lighthouse scores of the dashboard on desktop and mobile (`npm run lighthouse`).

Starts `python app.py` on a free port with a data dir of its own, fills it with what a
person would see after a while (a finished training job and two finished clips, one made
with that LoRA, so the page shows cards, media and download links), then runs the
Lighthouse of the test tooling (tests/tooling/, installed by `make install-test`) with the
Chromium the browser tests use, once per preset.
Performance depends on the machine's load, so `--runs 5` prints the median of five runs;
the other three categories are deterministic and tests/e2e/test_lighthouse.py holds them.

    .venv/bin/python -m tests.e2e.lighthouse [--runs N] [--preset desktop|mobile] [--url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .browser_binary import TOOLING, Chromium, ChromiumUnavailable, find_chromium
from .e2e_support import ROOT, ServerProcess, free_port, write_pngs, write_wav

LIGHTHOUSE = TOOLING / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
PRESETS = ("desktop", "mobile")
CHROME_FLAGS = "--headless=new --no-sandbox"
# Errors after which Lighthouse itself says "Please run Lighthouse again": with Chromium 156,
# about one run in forty, Lighthouse 12.8 cannot find the page load in the trace it recorded.
RERUN_ERRORS = ("NO_NAVSTART",)
ATTEMPTS = 3


class LighthouseUnavailable(Exception):
    """Lighthouse is not installed (`make install-test` installs it)."""


@dataclass(frozen=True)
class Audit:
    category: str
    id: str
    title: str
    score: float


@dataclass(frozen=True)
class Report:
    preset: str
    scores: dict[str, int]
    failing: list[Audit]  # audits that count towards a score and did not pass in full
    browser: str


def run_lighthouse(
    url: str, preset: str, chromium: Chromium, categories: tuple[str, ...] = CATEGORIES
) -> Report:
    """One Lighthouse run of `url` with the `preset` ("desktop", or "mobile": its default)."""
    if not LIGHTHOUSE.is_file():
        raise LighthouseUnavailable(f"no Lighthouse at {LIGHTHOUSE.relative_to(ROOT)}")
    command = [
        str(LIGHTHOUSE),
        url,
        "--quiet",
        "--output=json",
        "--output-path=stdout",
        f"--chrome-flags={CHROME_FLAGS}",
        f"--only-categories={','.join(categories)}",
        "--disable-full-page-screenshot",
    ]
    if preset == "desktop":
        command.append("--preset=desktop")
    env = {**chromium.launch_env(), "CHROME_PATH": chromium.path}
    for attempt in range(1, ATTEMPTS + 1):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            return parse_report(preset, json.loads(done.stdout))
        if attempt == ATTEMPTS or not any(code in done.stderr for code in RERUN_ERRORS):
            break
    raise RuntimeError(f"lighthouse exited with {done.returncode}:\n{done.stderr[-3000:]}")


def parse_report(preset: str, lhr: dict) -> Report:
    if lhr.get("runtimeError"):
        raise RuntimeError(f"lighthouse could not audit the page: {lhr['runtimeError']}")
    scores: dict[str, int] = {}
    failing: list[Audit] = []
    for category_id, category in lhr["categories"].items():
        scores[category_id] = round(category["score"] * 100)
        for ref in category["auditRefs"]:
            audit = lhr["audits"][ref["id"]]
            if ref["weight"] > 0 and audit["score"] is not None and audit["score"] < 1:
                failing.append(Audit(category_id, ref["id"], audit["title"], audit["score"]))
    browser = lhr["environment"]["hostUserAgent"]
    return Report(preset, scores, failing, browser)


def seed_jobs(server_url: str, media_dir: Path, timeout: float = 60.0) -> None:
    """A finished training job and two finished clips, one of them made with that LoRA."""
    with httpx.Client(base_url=server_url, timeout=10) as client:
        images = write_pngs(media_dir, 3)
        voice = write_wav(media_dir / "voice.wav")
        files = [("images", (path.name, path.read_bytes(), "image/png")) for path in images]
        files.append(("voice", (voice.name, voice.read_bytes(), "audio/wav")))
        lora = client.post("/api/train", files=files, data={"name": "Alex, studio light"})
        lora.raise_for_status()
        wait_completed(client, lora.json()["id"], timeout)
        prompts = [
            ("Neon koi circling a glass bowl, macro lens", None),
            ("Me playing guitar on a rooftop at sunset, slow dolly shot", lora.json()["id"]),
        ]
        for prompt, lora_id in prompts:
            body = {"prompt": prompt, **({"lora": lora_id} if lora_id else {})}
            clip = client.post("/api/generate", json=body)
            clip.raise_for_status()
            wait_completed(client, clip.json()["id"], timeout)


def wait_completed(client: httpx.Client, job_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/status/{job_id}").json()["state"]
        if state == "completed":
            return
        if state in ("failed", "cancelled"):
            raise RuntimeError(f"job {job_id} ended {state}")
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not complete within {timeout:.0f} s")


def medians(reports: list[Report]) -> dict[str, int]:
    return {
        category: round(statistics.median(r.scores[category] for r in reports))
        for category in reports[0].scores
    }


def print_table(rows: dict[str, dict[str, int]], runs: int) -> None:
    label = f"median of {runs} runs" if runs > 1 else "one run"
    print(f"{'preset':<8}" + "".join(f"{c:>16}" for c in CATEGORIES) + f"   ({label})")
    for preset, scores in rows.items():
        print(f"{preset:<8}" + "".join(f"{scores.get(c, '-'):>16}" for c in CATEGORIES))


def audit_presets(url: str, chromium: Chromium, presets: tuple[str, ...], runs: int) -> int:
    rows: dict[str, dict[str, int]] = {}
    failing: dict[tuple[str, str], Audit] = {}
    browser = ""
    for preset in presets:
        reports = [run_lighthouse(url, preset, chromium) for _ in range(runs)]
        rows[preset] = medians(reports)
        browser = reports[0].browser
        for report in reports:
            for audit in report.failing:
                failing[(preset, audit.id)] = audit
    print(f"{url} · {chromium.source} · {browser}")
    print_table(rows, runs)
    for (preset, _), audit in sorted(failing.items()):
        print(f"  {preset}: {audit.category} · {audit.id} ({audit.score:.2f}): {audit.title}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.lighthouse", description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="runs per preset (medians)")
    parser.add_argument("--preset", choices=PRESETS, help="one preset only")
    parser.add_argument("--url", help="audit this running dashboard instead of starting one")
    args = parser.parse_args(argv)
    presets = (args.preset,) if args.preset else PRESETS
    try:
        chromium = find_chromium()
    except (ChromiumUnavailable, ValueError) as missing:
        print(f"lighthouse: {missing}", file=sys.stderr)
        return 2
    if not LIGHTHOUSE.is_file():
        where = LIGHTHOUSE.relative_to(ROOT)
        print(f"lighthouse: no Lighthouse at {where}: run make install-test", file=sys.stderr)
        return 2
    if args.url:
        return audit_presets(args.url, chromium, presets, max(1, args.runs))
    with tempfile.TemporaryDirectory(prefix="myspinbot-lighthouse-") as tmp:
        server = ServerProcess(Path(tmp) / "data", free_port(), step_seconds=0.05, steps=10)
        try:
            server.start()
            media = Path(tmp) / "media"
            media.mkdir()
            seed_jobs(server.url, media)
            return audit_presets(f"{server.url}/", chromium, presets, max(1, args.runs))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
