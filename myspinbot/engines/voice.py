"""The voice engine: a speech server speaking the OpenAI-style protocol, with voice cloning.

Follows travisvn/chatterbox-tts-api (`app/api/endpoints/speech.py`, `voices.py`,
`app/core/aliases.py`); other servers that share the shape work too:

- `POST /v1/audio/speech` JSON `{input, voice, response_format}` -> WAV bytes;
- `POST /v1/audio/speech/upload` multipart `input`, `voice_file` (one-off cloning);
- `GET /v1/voices/{name}` (404 `voice_not_found_error` when unknown) and `POST /v1/voices`
  multipart `voice_name`, `voice_file`, `language` -> 201 (409 when it exists);
- errors are `{"error": {"message", "type"}}`, FastAPI's own `{"detail": ...}`.

chatterbox-tts-api speaks an unknown voice name in its *default* voice without a word, so a
stored voice is looked up before each use and registered again when the server lost it (a
restart without its voices volume). A server without a voice library (no `/v1/voices`
route) gets the sample with every request through the upload form instead.

No connection, a timeout, 429 or a 5xx: transient. Another 4xx: permanent. A 200 that is
not audio: permanent (EngineAnswerInvalid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ..audio import Pcm, WavError, read_wav
from .errors import (
    EngineAnswerInvalid,
    EngineError,
    EngineUnreachable,
    PermanentEngineError,
)
from .redact import safe_url, scrub, url_secrets

SPEECH, UPLOAD, VOICES = "/v1/audio/speech", "/v1/audio/speech/upload", "/v1/voices"


@dataclass(frozen=True)
class VoiceServer:
    url: str
    token: str | None = None
    timeout: float = 120.0  # seconds per request: a cold model loads on the first one

    @property
    def shown(self) -> str:
        return safe_url(self.url)


class SpeechRejected(PermanentEngineError):
    """The speech server's reply cannot go onto the clip (silent, too long, not 16/32-bit)."""

    code = "voice_unusable"


class VoiceEngine:
    """A synchronous client of one speech server."""

    def __init__(self, server: VoiceServer, transport: httpx.BaseTransport | None = None):
        self.server = server
        self.secrets = url_secrets(server.url) + ([server.token] if server.token else [])
        headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
        self.http = httpx.Client(
            base_url=server.url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(server.timeout, connect=10.0),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> VoiceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            said = scrub(str(exc), self.secrets) or type(exc).__name__
            raise EngineUnreachable(
                f"the voice engine at {self.server.shown} is unreachable ({said})"
            ) from None

    def _said(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return scrub(response.text[:200], self.secrets)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return scrub(str(error.get("message") or error), self.secrets)
        detail = body.get("detail") if isinstance(body, dict) else body
        return scrub(str(detail or error or body)[:200], self.secrets)

    def _failed(self, response: httpx.Response) -> EngineError:
        said, status = self._said(response), response.status_code
        if status >= 500 or status == 429:
            return EngineUnreachable(f"the voice engine answered HTTP {status}: {said}")
        return PermanentEngineError(f"the voice engine refused the request (HTTP {status}: {said})")

    def health(self) -> str:
        """The server's status word (`healthy`, `initializing` …); raises when it is down."""
        response = self._send("GET", "/health")
        if response.status_code != 200:
            raise self._failed(response)
        try:
            body = response.json()
            return str(body.get("status") or "up")
        except (ValueError, AttributeError):
            raise EngineAnswerInvalid(
                f"{self.server.shown} is not a speech server (its /health is not JSON)"
            ) from None

    # -- voices --------------------------------------------------------------------------

    def ensure_voice(self, name: str, sample: bytes) -> bool:
        """Make `name` a stored voice; False when the server keeps no voices."""
        response = self._send("GET", f"{VOICES}/{name}")
        if response.status_code == 200:
            return True
        if response.status_code != 404:
            raise self._failed(response)
        if not _voice_not_found(response):
            return False  # no voice library at all: FastAPI's `{"detail": "Not Found"}`
        response = self._send(
            "POST",
            VOICES,
            data={"voice_name": name, "language": "en"},
            files={"voice_file": (f"{name}.wav", sample, "audio/wav")},
        )
        if response.status_code in (200, 201, 409):  # 409: another job registered it first
            return True
        if response.status_code in (404, 405):
            return False
        raise self._failed(response)

    # -- speech --------------------------------------------------------------------------

    def speak(self, text: str, voice: str | None = None, sample: bytes | None = None) -> bytes:
        """WAV bytes of `text`: in the stored `voice`, else cloned from `sample`, else the
        server's default voice."""
        if voice is None and sample is not None:
            response = self._send(
                "POST",
                UPLOAD,
                data={"input": text, "response_format": "wav"},
                files={"voice_file": ("voice.wav", sample, "audio/wav")},
            )
        else:
            body: dict[str, Any] = {"input": text, "response_format": "wav"}
            if voice is not None:
                body["voice"] = voice
            response = self._send("POST", SPEECH, json=body)
        if response.status_code != 200:
            raise self._failed(response)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("audio/") and kind != "application/octet-stream":
            raise EngineAnswerInvalid(
                f"the voice engine at {self.server.shown} answered {kind or 'no content type'}, "
                "not audio"
            )
        return response.content


def _voice_not_found(response: httpx.Response) -> bool:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("type") == "voice_not_found_error"


def checked_speech(data: bytes, clip_seconds: float) -> Pcm:
    """The speech, read back, if it can go onto a clip of `clip_seconds`."""
    try:
        _, pcm = read_wav(data)
    except WavError as exc:
        raise EngineAnswerInvalid(f"the voice engine's answer is not usable audio: {exc}") from None
    if pcm.silent:
        raise SpeechRejected("the voice engine answered silence (below -60 dBFS)")
    if pcm.seconds > clip_seconds:
        raise SpeechRejected(
            f"the spoken line lasts {pcm.seconds:.2f} s, longer than the {clip_seconds:.2f} s "
            "clip: shorten the line"
        )
    return pcm
