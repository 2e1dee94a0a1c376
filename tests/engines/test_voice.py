"""The voice engine client against the speech stand-in (chatterbox-tts-api's protocol)."""

from __future__ import annotations

from pathlib import Path

import pytest
from standins import voice_standin
from standins.voice import SAMPLE_RATE, pitch_of, seconds_for
from support import wav_bytes

from myspinbot.audio import FLOAT, PCM, read_wav
from myspinbot.engines.errors import (
    EngineAnswerInvalid,
    EngineUnreachable,
    PermanentEngineError,
    TransientEngineError,
)
from myspinbot.engines.voice import SpeechRejected, VoiceEngine, VoiceServer, checked_speech

from .comfyui_rig import free_port

LINE = "Hello there, this is me speaking in my own voice today"
SAMPLE = wav_bytes(seconds=6, level=3000)


def test_a_stored_voice_is_registered_once_and_speaks_a_float_wav_of_the_lines_length(
    tmp_path: Path,
) -> None:
    with voice_standin(tmp_path) as server, VoiceEngine(VoiceServer(server.url)) as engine:
        assert engine.health() == "healthy"
        assert engine.ensure_voice("myspinbot-job1", SAMPLE) is True
        assert engine.ensure_voice("myspinbot-job1", SAMPLE) is True  # known: not re-sent
        fmt, pcm = read_wav(engine.speak(LINE, voice="myspinbot-job1"))
        state = server.state()
    assert (fmt.tag, fmt.bits, fmt.rate) == (FLOAT, 32, SAMPLE_RATE)
    assert pcm.seconds == pytest.approx(seconds_for(LINE), abs=1 / SAMPLE_RATE)
    assert state["voices"] == ["myspinbot-job1"]
    assert state["requests"][-1]["spoken_with"] == "myspinbot-job1"
    assert state["requests"][-1]["pitch"] == pitch_of(SAMPLE)


def test_a_voice_lost_in_an_engine_restart_is_registered_again(tmp_path: Path) -> None:
    with voice_standin(tmp_path) as server:
        with VoiceEngine(VoiceServer(server.url)) as engine:
            engine.ensure_voice("alex", SAMPLE)
        server.restart()
        assert server.state()["voices"] == []
        with VoiceEngine(VoiceServer(server.url)) as engine:
            assert engine.ensure_voice("alex", SAMPLE) is True
            engine.speak(LINE, voice="alex")
        assert server.state()["requests"][-1]["spoken_with"] == "alex"


def test_the_upload_form_clones_from_the_sample_and_pcm16_answers_are_read(
    tmp_path: Path,
) -> None:
    with (
        voice_standin(tmp_path, pcm16=True) as server,
        VoiceEngine(VoiceServer(server.url)) as engine,
    ):
        fmt, pcm = read_wav(engine.speak(LINE, sample=SAMPLE))
        state = server.state()
    assert (fmt.tag, fmt.bits) == (PCM, 16)
    assert state["requests"][-1]["spoken_with"] == "upload"
    assert state["requests"][-1]["pitch"] == pitch_of(SAMPLE)
    assert not pcm.silent


def test_the_bearer_token_is_sent(tmp_path: Path) -> None:
    with voice_standin(tmp_path, token="s3cret") as server:
        with VoiceEngine(VoiceServer(server.url, token="s3cret")) as engine:
            assert engine.health() == "healthy"
        with (
            VoiceEngine(VoiceServer(server.url)) as engine,
            pytest.raises(PermanentEngineError, match="HTTP 401"),
        ):
            engine.health()


def test_5xx_and_no_server_are_transient_garbage_and_4xx_are_permanent(tmp_path: Path) -> None:
    with voice_standin(tmp_path) as server, VoiceEngine(VoiceServer(server.url)) as engine:
        server.fault("http", status=500)
        with pytest.raises(TransientEngineError, match="HTTP 500"):
            engine.speak(LINE)
        server.fault("garbage")
        with pytest.raises(EngineAnswerInvalid, match="text/html, not audio"):
            engine.speak(LINE)
        with pytest.raises(PermanentEngineError, match="HTTP 422") as refused:
            engine.speak("")
        assert not refused.value.transient
    gone = VoiceServer(f"http://127.0.0.1:{free_port()}", timeout=2)
    with VoiceEngine(gone) as engine, pytest.raises(EngineUnreachable, match="unreachable"):
        engine.speak(LINE)


def test_a_reply_is_checked_before_it_goes_onto_a_clip(tmp_path: Path) -> None:
    with voice_standin(tmp_path) as server, VoiceEngine(VoiceServer(server.url)) as engine:
        spoken = engine.speak(LINE)
        server.fault("silence")
        silent = engine.speak(LINE)
    assert checked_speech(spoken, 81 / 16).seconds == pytest.approx(seconds_for(LINE), abs=0.01)
    with pytest.raises(SpeechRejected, match="silence"):
        checked_speech(silent, 81 / 16)
    with pytest.raises(SpeechRejected, match="longer than the 2.06 s clip"):
        checked_speech(spoken, 33 / 16)
    with pytest.raises(EngineAnswerInvalid, match="not usable audio"):
        checked_speech(b"<html>oops</html>", 5.0)


def test_a_float_wav_as_ffmpeg_writes_it_for_torchaudio_is_read() -> None:
    """torchaudio >= 2.9 saves through torchcodec, i.e. FFmpeg's WAV muxer: tag 3, fact, LIST."""
    import io
    import struct

    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame(format="flt", layout="mono", samples=2400, align=1)
        frame.planes[0].update(struct.pack("<2400f", *([0.1] * 2400)))
        frame.sample_rate, frame.pts = SAMPLE_RATE, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    data = buffer.getvalue()
    assert b"fact" in data and b"LIST" in data
    fmt, pcm = read_wav(data)
    assert (fmt.tag, fmt.bits, fmt.rate) == (FLOAT, 32, SAMPLE_RATE)
    assert pcm.seconds == pytest.approx(0.1) and pcm.rms == pytest.approx(0.1, abs=1e-6)


def test_a_voice_engine_slower_than_the_timeout_is_transient(tmp_path: Path) -> None:
    with voice_standin(tmp_path) as server:
        server.fault("stall")
        with (
            VoiceEngine(VoiceServer(server.url, timeout=1)) as engine,
            pytest.raises(EngineUnreachable, match="unreachable"),
        ):
            engine.speak(LINE)
        server.fault("release")
