"""What an mp4 holds, read with PyAV: the video stream's codec and frames, the audio's length."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class Clip:
    video_codecs: list[str]
    frames: int
    fps: float
    audio_codecs: list[str]
    audio_seconds: float  # decoded samples / rate, 0 without audio


def probe(path: Path) -> Clip:
    with av.open(str(path)) as container:
        video, audio = container.streams.video, container.streams.audio
        frames = sum(1 for _ in container.decode(video=0)) if video else 0
        fps = float(video[0].average_rate or 0) if video else 0.0
    seconds = 0.0
    if audio:
        with av.open(str(path)) as container:
            rate = container.streams.audio[0].rate
            samples = sum(frame.samples for frame in container.decode(audio=0))
        seconds = samples / rate
    return Clip(
        [s.codec_context.name for s in video], frames, fps,
        [s.codec_context.name for s in audio], seconds,
    )  # fmt: skip
