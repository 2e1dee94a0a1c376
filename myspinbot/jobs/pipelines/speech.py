"""The generate pipeline's voice step: the line, spoken in the persona's voice, checked.

The persona's voice is the training job's `voice.wav`. Where the speech server keeps voices
it is stored there under `myspinbot-<training job id>` at first use, and looked up again
before each use (a server that restarted without its voices gets it back); a server that
keeps none gets the sample with each request. Train never needs the voice engine up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...engines.voice import VoiceEngine, VoiceServer, checked_speech
from .persona import persona_voice

SPEECH_FILE = "line.wav"


@dataclass(frozen=True)
class Clip:
    """The clip the line must fit: Wan 2.1 renders 81 frames at 16 fps (5.06 s)."""

    fps: float = 16.0
    frames: int = 81

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Speaker:
    voice: VoiceServer | None
    artifacts_dir: Path  # where the training jobs keep their voice.wav

    def plan(self, line: str | None, workflow_uses_audio: bool) -> str:
        """What the job's `voice` will say: spoken, none, no_engine or silent_workflow."""
        if not line:
            return "none"
        if self.voice is None:
            return "no_engine"
        return "spoken" if workflow_uses_audio else "silent_workflow"

    def speak(self, line: str, persona: str | None, outputs: Path, clip: Clip) -> float:
        """Write the checked speech of `line` to outputs/line.wav; its length in seconds."""
        assert self.voice is not None
        sample_path = persona_voice(self.artifacts_dir, persona) if persona else None
        sample = sample_path.read_bytes() if sample_path else None
        with VoiceEngine(self.voice) as engine:
            if sample is None:  # no persona (or one trained without a voice): the default
                spoken = engine.speak(line)
            elif engine.ensure_voice(f"myspinbot-{persona}", sample):
                spoken = engine.speak(line, voice=f"myspinbot-{persona}")
            else:
                spoken = engine.speak(line, sample=sample)
        pcm = checked_speech(spoken, clip.seconds)
        (outputs / SPEECH_FILE).write_bytes(spoken)
        return pcm.seconds
