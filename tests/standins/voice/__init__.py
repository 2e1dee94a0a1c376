"""A speech-server stand-in: `python -m tests.standins.voice --port 0 --ready-file PATH [options]`.

Built from travisvn/chatterbox-tts-api @ a5f4661 (`app/api/endpoints/speech.py`,
`voices.py`, `health.py`, `app/core/aliases.py`, `app/core/voice_library.py`,
`app/models/requests.py`, `app/main.py`'s error handlers). What it keeps of the real server:

- Routes with their aliases: `POST /audio/speech` (`/v1/audio/speech`, `/tts`) JSON
  `{input (1-3000 chars), voice = "alloy", response_format, exaggeration, cfg_weight,
  temperature, ...}`; `POST /audio/speech/upload` (`/v1/...`, `/tts/upload`) multipart `input`,
  `voice`, `voice_file` (.mp3 .wav .flac .m4a .ogg); `GET`/`POST /voices` (`/v1/voices`),
  `GET`/`DELETE /voices/{name}`; `GET /health` (`/v1/health`).
- A voice name the library lacks is spoken in the *default* voice, silently, as the real
  `resolve_voice_path_and_language` does.
- Errors: HTTPException details are sent bare, `{"error": {"message", "type"}}` (400
  `invalid_request_error`, 404 `voice_not_found_error`, 409 `voice_exists_error`, 400
  `validation_error`); request validation is FastAPI's 422 `{"detail": [...]}`; unknown
  routes FastAPI's 404 `{"detail": "Not Found"}`.
- The answer is a WAV at 24 kHz (Chatterbox's `model.sr`), 32-bit float as
  `torchaudio.save` writes a float tensor (format tag 3, `fact` and `LIST` chunks, as
  FFmpeg's WAV muxer lays them out), `--pcm16` for 16-bit PCM. Its length follows the text
  (SECONDS_PER_WORD per word plus LEAD_SECONDS); the sound is a tone whose pitch is derived
  from the voice sample's bytes, so a test can tell which voice spoke (`pitch_of`).

The voice library lives in memory (or `--voices DIR`): a restart without DIR forgets it, as
the real server does without its voices volume.

Options: `--port`, `--ready-file`, `--pcm16`, `--voices DIR`, `--token T` (require
`Authorization: Bearer T`, as a proxy in front would). Test knobs: `POST /_standin/fault/<kind>`
with `{"count": 1, ...}`: `http` {"status", "message"} on the next speech requests,
`garbage` (200 `text/html`), `silence` (a silent WAV), `stall` (no answer until
`POST /_standin/fault/release`), `clear`; `GET /_standin/state`: the stored voices and every
speech request (`voice` asked, `spoken_with` the voice actually used, `input`).
"""

from __future__ import annotations

import hashlib

SAMPLE_RATE = 24_000
SECONDS_PER_WORD = 0.3
LEAD_SECONDS = 0.4
DEFAULT_VOICE = "default"


def pitch_of(sample: bytes | None) -> int:
    """The tone's frequency (Hz) for a voice sample; the default voice's for None."""
    if sample is None:
        return 220
    return 300 + hashlib.sha256(sample).digest()[0] * 2


def seconds_for(text: str) -> float:
    return LEAD_SECONDS + SECONDS_PER_WORD * len(text.split())
