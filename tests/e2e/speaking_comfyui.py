"""The ComfyUI stand-in with a SaveVideo that writes what ComfyUI's writes: H.264 and AAC.

    python -m e2e.speaking_comfyui --port 0 --ready-file PATH --base-directory DIR [...]

(run from tests/, with the options of `python -m standins.comfyui`). The stand-in's own
SaveVideo writes Motion JPEG without sound; a browser test of a clip that speaks needs the
real thing. This SaveVideo does what ComfyUI 0.3.64's does (comfy_api/latest/_input_impl/
video_types.py, `VideoFromComponents.save_to`): an `h264` stream in yuv420p at the video's
frame rate (rounded to 1/1000), and when the VIDEO carries audio an `aac` stream at the
audio's sample rate, the audio cut to ceil(sample_rate / fps × frames) samples, one frame
with pts 0. Everything else is the stand-in's.
"""

from __future__ import annotations

import math
import os
import struct
import sys
from fractions import Fraction

from standins.comfyui.__main__ import main
from standins.comfyui.operations import OPERATIONS
from standins.comfyui.paths import save_path
from standins.comfyui.values import NodeResult


def write_h264_aac(path: str, video) -> None:
    import av  # PyAV, as ComfyUI itself writes videos

    rate = Fraction(round(video.fps * 1000), 1000)
    width, height = video.frames[0].size
    with av.open(path, mode="w") as output:
        stream = output.add_stream("h264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        audio = video.audio
        sound = output.add_stream("aac", rate=audio.sample_rate) if audio else None
        for image in video.frames:
            frame = av.VideoFrame.from_image(image.convert("RGB"))
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
        if sound is not None:
            keep = math.ceil(audio.sample_rate / rate * len(video.frames))
            channels = [samples[:keep] for samples in audio.channels[:2]]
            layout = "mono" if len(channels) == 1 else "stereo"
            count = len(channels[0])
            frame = av.AudioFrame(format="flt", layout=layout, samples=count)
            interleaved = [s for group in zip(*channels, strict=True) for s in group]
            frame.planes[0].update(struct.pack(f"<{len(interleaved)}f", *interleaved))
            frame.sample_rate, frame.pts = audio.sample_rate, 0
            output.mux(sound.encode(frame))
            output.mux(sound.encode(None))


async def save_video(ctx, video, filename_prefix, format, codec):
    width, height = video.frames[0].size
    target, filename, counter, subfolder, _ = save_path(
        filename_prefix, ctx.base.output, width, height
    )
    name = f"{filename}_{counter:05}_.mp4"
    write_h264_aac(os.path.join(target, name), video)
    result = {"filename": name, "subfolder": subfolder, "type": "output"}
    return NodeResult(ui={"images": [result], "animated": [True]})


if __name__ == "__main__":
    OPERATIONS["SaveVideo"] = save_video
    sys.exit(main())
