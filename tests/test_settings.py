"""Settings: defaults, parsing of environment strings, .env files, one-line errors."""

from __future__ import annotations

import pytest

from granite_panel.settings import Settings, SettingsError


def from_env(**env):
    """Settings from exactly ``env`` (no .env file, no process environment)."""
    return Settings.from_env(environ=env, env_file=None)


def test_defaults_match_the_seed():
    for settings in (Settings(), from_env()):
        assert settings.model_name == "ibm-granite/granite-timeseries-ttm-r2"
        assert settings.forecast_horizon == 96
        assert settings.context_length == 512
        assert settings.data_generation_interval == 2.0
        assert settings.base_value == 100.0
        assert settings.noise_level == 5.0
        assert settings.anomaly_threshold_multiplier == 3.0
        assert settings.anomaly_window_size == 50
        assert settings.n_series == 1
        assert settings.fallback_model == "auto"


def test_numbers_are_parsed_to_their_types():
    s = from_env(
        FORECAST_HORIZON=" 48 ",
        N_SERIES="7",
        DATA_GENERATION_INTERVAL="0.5",
        BASE_VALUE="-3.5",
        NOISE_LEVEL="0",
        ANOMALY_THRESHOLD_MULTIPLIER="2",
    )
    assert s.forecast_horizon == 48 and isinstance(s.forecast_horizon, int)
    assert s.n_series == 7 and isinstance(s.n_series, int)
    assert s.data_generation_interval == 0.5
    assert s.base_value == -3.5
    assert s.noise_level == 0.0
    assert s.anomaly_threshold_multiplier == 2.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        (" Yes ", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("no", False),
        ("NO", False),
        ("0", False),
        ("off", False),
    ],
)
def test_booleans_accept_common_spellings(text, expected):
    # Each default is the opposite of the value given for one of the two fields.
    assert from_env(USE_GPU=text).use_gpu is expected
    assert from_env(TREND_ENABLED=text).trend_enabled is expected


@pytest.mark.parametrize(
    "text, expected",
    [("autotheta", "AutoTheta"), ("SEASONALNAIVE", "SeasonalNaive"), ("AutoETS", "AutoETS")],
)
def test_selector_is_case_insensitive(text, expected):
    assert from_env(FALLBACK_MODEL=text).fallback_model == expected


def test_empty_value_means_default():
    assert from_env(FORECAST_HORIZON="", USE_GPU="  ").forecast_horizon == 96


def test_env_file_is_read_and_environment_overrides_it(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nFORECAST_HORIZON=48\nN_SERIES=3\nUSE_GPU=no\nMODEL_NAME=/models/ttm\n"
    )
    s = Settings.from_env(environ={"N_SERIES": "5"}, env_file=env_file)
    assert s.forecast_horizon == 48  # from the file
    assert s.use_gpu is False  # from the file
    assert s.model_name == "/models/ttm"
    assert s.n_series == 5  # the environment wins

    # Defaults: the process environment and ./.env
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORECAST_HORIZON", "24")
    monkeypatch.delenv("N_SERIES", raising=False)
    s = Settings.from_env()
    assert s.forecast_horizon == 24
    assert s.n_series == 3


def test_missing_env_file_is_fine(tmp_path):
    assert Settings.from_env(environ={}, env_file=tmp_path / "absent.env").n_series == 1


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("FORECAST_HORIZON", "abc", ["whole number", "1", "720"]),
        ("FORECAST_HORIZON", "4.5", ["whole number"]),
        ("ANOMALY_WINDOW_SIZE", "0", ["whole number", "2"]),
        ("DATA_GENERATION_INTERVAL", "-1", ["number", "0.01", "2678400"]),
        ("DATA_GENERATION_INTERVAL", "nan", ["finite"]),
        ("USE_GPU", "maybe", ["true/false", "yes/no", "1/0"]),
        ("FALLBACK_MODEL", "Prophet", ["AutoETS", "AutoTheta", "SeasonalNaive"]),
        ("PORT", "70000", ["65535"]),
    ],
)
def test_bad_value_gives_one_line_naming_variable_value_and_allowed(key, value, allowed):
    with pytest.raises(SettingsError) as info:
        from_env(**{key: value})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{key}=")
    assert repr(value) in message or value in message
    for word in allowed:
        assert word in message, (word, message)
    assert isinstance(info.value, ValueError)


def test_bad_value_in_env_file_is_reported_too(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ANOMALY_WINDOW_SIZE=zero\n")
    with pytest.raises(SettingsError, match="ANOMALY_WINDOW_SIZE='zero'"):
        Settings.from_env(environ={}, env_file=env_file)


def test_history_shorter_than_context_is_refused():
    with pytest.raises(SettingsError) as info:
        from_env(HISTORY_LIMIT="100", CONTEXT_LENGTH="512")
    message = str(info.value)
    assert "\n" not in message
    assert "HISTORY_LIMIT=100" in message and "CONTEXT_LENGTH" in message and "512" in message
    # Equal is enough.
    assert from_env(HISTORY_LIMIT="512", CONTEXT_LENGTH="512").history_limit == 512
    # The default history must hold the default context.
    assert from_env(CONTEXT_LENGTH="2048").context_length == 2048
    with pytest.raises(SettingsError):
        from_env(CONTEXT_LENGTH="4096")  # default HISTORY_LIMIT is 2048
