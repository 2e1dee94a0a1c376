"""Settings: parsed from the environment, every bad value named."""

from __future__ import annotations

from pathlib import Path

import pytest

from myspinbot.config import Settings, SettingsError


def test_defaults_match_api_md() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.data_dir == Path("var").resolve()
    assert settings.http_workers == settings.inprocess_workers == 1
    assert settings.redis_url is None and settings.api_token is None
    assert (settings.mock_steps, settings.mock_step_seconds) == (20, 0.25)


def test_values_are_parsed_and_typed(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "unix:///tmp/r.sock",
            "MYSPINBOT_PORT": "9000",
            "MYSPINBOT_DATA_DIR": str(tmp_path),
            "MYSPINBOT_MOCK_STEP_SECONDS": "0",
            "MYSPINBOT_ACCESS_LOG": "off",
            "MYSPINBOT_LOG_FORMAT": "JSON",
        }
    )
    assert settings.port == 9000 and settings.data_dir == tmp_path
    assert settings.mock_step_seconds == 0.0 and settings.access_log is False
    assert settings.log_format == "json" and settings.redis_url == "unix:///tmp/r.sock"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MYSPINBOT_PORT", "eighty"),
        ("MYSPINBOT_PORT", "70000"),
        ("MYSPINBOT_HTTP_WORKERS", "0"),
        ("MYSPINBOT_INPROCESS_WORKERS", "-1"),
        ("MYSPINBOT_MOCK_STEP_SECONDS", "fast"),
        ("REDIS_URL", "http://localhost:6379"),
        ("MYSPINBOT_LOG_FORMAT", "xml"),
        ("MYSPINBOT_ACCESS_LOG", "maybe"),
        ("MYSPINBOT_DATA_DIR", " "),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable and variable in str(raised.value)


def test_cli_reports_a_bad_setting_without_a_traceback(capsys, monkeypatch) -> None:
    from myspinbot.cli import main

    monkeypatch.setenv("MYSPINBOT_PORT", "nope")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "MYSPINBOT_PORT" in err and "Traceback" not in err
