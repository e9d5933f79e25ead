"""The command line: bad configuration stops start-up with one line and exit status 2."""

import subprocess
import sys

import pytest

BAD_VALUES = [
    ("FORECAST_HORIZON", "abc", "whole number"),
    ("ANOMALY_WINDOW_SIZE", "0", "from 2"),
    ("DATA_GENERATION_INTERVAL", "-1", "from 0.01"),
    ("USE_GPU", "perhaps", "true/false"),
    ("PORT", "99999", "from 1 to 65535"),
]


def run_cli(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize("variable,value,allowed", BAD_VALUES)
def test_bad_setting_stops_serve_with_one_line(variable, value, allowed, monkeypatch, tmp_path):
    import os

    env = {**os.environ, variable: value}
    result = run_cli("serve", "--port", "1", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and repr(value) in lines[0] and allowed in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_value_in_dotenv_file_is_reported_too(tmp_path):
    import os

    (tmp_path / ".env").write_text("ANOMALY_THRESHOLD_MULTIPLIER=lots\n")
    env = {k: v for k, v in os.environ.items() if k != "ANOMALY_THRESHOLD_MULTIPLIER"}
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("granite-panel: error: ANOMALY_THRESHOLD_MULTIPLIER='lots'")


def test_unknown_subcommand_is_a_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_env_example_lists_every_setting_as_generated():
    from pathlib import Path

    from granite_panel.settings import FOLLOW_THE_DATA, Settings, env_example, field_names

    shipped = (Path(__file__).parent.parent / ".env.example").read_text()
    assert shipped == env_example()
    for name in field_names():
        unset = "# " if name in FOLLOW_THE_DATA else ""
        assert f"\n{unset}{name.upper()}=" in shipped
    # a copy of it as .env leaves a replayed file's season to the file
    environ = dict(line.split("=", 1) for line in shipped.splitlines()
                   if line and not line.startswith("#"))
    replay = Settings.from_env(environ, env_file=None).for_replay(300)
    assert (replay.season_length, replay.detector_season) == (288, "estimate")
