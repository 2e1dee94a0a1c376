"""Sound on the clip: LoadAudio, TrimAudioDuration and an H.264 + AAC SaveVideo, with PyAV.

Follows ComfyUI 0.3.64 (`comfy_extras/nodes_audio.py` LoadAudio/`load`, TrimAudioDuration;
`comfy_api/latest/_input_impl/video_types.py` VideoFromComponents.save_to): LoadAudio
decodes any file FFmpeg reads into float channels at the file's rate; TrimAudioDuration cuts
`[start_index, start_index + duration)` seconds (a negative start counts from the end) and
raises ComfyUI's ValueError when nothing is left; SaveVideo writes H.264 (yuv420p) at the
video's frame rate and, with audio, one AAC stream cut to
ceil(sample_rate / frame_rate * frames) samples — so a clip saved at CreateVideo's default
30 fps keeps only frames / 30 seconds of speech.

PyAV is a dependency of the package, so these are the stand-in's only LoadAudio and
SaveVideo.
"""

from __future__ import annotations

import math
import os
from array import array
from fractions import Fraction

import av

from .nodes import NodeDef
from .paths import save_path
from .values import Audio, NodeResult

BIG = 0xFFFFFFFFFFFFFFFF


def audio_nodes() -> list[NodeDef]:
    start = "Start time in seconds, can be negative to count from the end (supports sub-seconds)."
    return [
        NodeDef(
            "TrimAudioDuration", "Trim Audio Duration", "audio", "comfy_extras.nodes_audio",
            {
                "audio": ("AUDIO",),
                "start_index": ("FLOAT", {"default": 0.0, "min": -BIG, "max": BIG, "step": 0.01,
                                          "tooltip": start}),
                "duration": ("FLOAT", {"default": 60.0, "min": 0.0, "step": 0.01,
                                       "tooltip": "Duration in seconds"}),
            },
            ("AUDIO",),
            description="Trim audio tensor into chosen time range.",
        ),
    ]  # fmt: skip


async def load_audio(ctx, audio):
    path = ctx.base.annotated_path(audio)
    try:
        channels, rate = decode(path)
    except (av.FFmpegError, ValueError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    return NodeResult((Audio(channels, rate),))


def decode(path: str) -> tuple[list[list[float]], int]:
    """Every channel as floats, at the stream's own rate (ComfyUI's `load`)."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        count, rate = stream.channels, stream.rate
        packed = av.AudioResampler(format="flt", layout=stream.layout.name, rate=rate)
        samples: list[float] = []
        for frame in container.decode(stream):
            for out in packed.resample(frame):
                samples.extend(memoryview(bytes(out.planes[0])).cast("f")[: out.samples * count])
    if not samples:
        raise ValueError("No audio frames decoded.")
    return [samples[c::count] for c in range(count)], rate


async def trim_audio_duration(ctx, audio, start_index, duration):
    length, rate = len(audio.channels[0]), audio.sample_rate
    start = length + round(start_index * rate) if start_index < 0 else round(start_index * rate)
    start = max(0, min(start, length - 1))
    end = max(0, min(start + round(duration * rate), length))
    if start >= end:
        raise ValueError(
            "AudioTrim: Start time must be less than end time and be within the audio length."
        )
    return NodeResult((Audio([c[start:end] for c in audio.channels], rate),))


async def save_video(ctx, video, filename_prefix, format, codec):
    for value, enum in ((format, ("auto", "mp4")), (codec, ("auto", "h264"))):
        if value not in enum:
            kind = "VideoContainer" if enum[1] == "mp4" else "VideoCodec"
            raise ValueError(f"'{value}' is not a valid {kind}")
    width, height = video.frames[0].size
    target, filename, counter, subfolder, _ = save_path(
        filename_prefix, ctx.base.output, width, height
    )
    name = f"{filename}_{counter:05}_.mp4"
    write_mp4(os.path.join(target, name), video)
    result = {"filename": name, "subfolder": subfolder, "type": "output"}
    return NodeResult(ui={"images": [result], "animated": [True]})


def write_mp4(path: str, video) -> None:
    rate = Fraction(round(video.fps * 1000), 1000)
    with av.open(path, mode="w") as output:
        stream = output.add_stream("h264", rate=rate)
        stream.width, stream.height = video.frames[0].size
        stream.pix_fmt = "yuv420p"
        sound = None
        if video.audio is not None:
            sound = output.add_stream("aac", rate=int(video.audio.sample_rate))
        for image in video.frames:
            frame = av.VideoFrame.from_image(image.convert("RGB")).reformat(format="yuv420p")
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
        if sound is not None:
            output.mux(sound.encode(_audio_frame(video.audio, rate, len(video.frames))))
            output.mux(sound.encode(None))


def _audio_frame(audio: Audio, rate: Fraction, frames: int) -> av.AudioFrame:
    keep = math.ceil(audio.sample_rate / rate * frames)
    channels = [c[:keep] for c in audio.channels]
    interleaved = [x for frame in zip(*channels, strict=True) for x in frame]
    layout = "mono" if len(channels) == 1 else "stereo"
    frame = av.AudioFrame(format="flt", layout=layout, samples=len(channels[0]), align=1)
    frame.planes[0].update(array("f", interleaved).tobytes())
    frame.sample_rate, frame.pts = audio.sample_rate, 0
    return frame


AUDIO_OPERATIONS = {
    "LoadAudio": load_audio,
    "TrimAudioDuration": trim_audio_duration,
    "SaveVideo": save_video,
}
