"""environment.yml and pyproject.toml declare the same dependencies."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def normalise(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda and "pip" in conda
    assert sorted(map(normalise, declared)) == sorted(normalise(p) for p in pip if p != "-e .")
    assert "-e ." in pip


def test_console_script_points_at_the_cli():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["granite-panel"] == "granite_panel.cli:main"
    from granite_panel.cli.main import main

    assert callable(main)


def test_readme_documents_every_setting_and_ci_runs_its_test_command():
    from granite_panel.settings import Settings, field_names

    readme = (ROOT / "README.md").read_text()
    for name in field_names():
        default = Settings.param[name].default
        default = str(default).lower() if isinstance(default, bool) else default
        shown = "(empty)" if default in ("", None) else f"`{default}`"
        assert f"| `{name.upper()}` | {shown} |" in readme, (name, shown)
    assert "bash tests/run.sh" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash tests/run.sh" in ci


def test_the_app_never_imports_the_benchmark_protocols():
    """evaluation/ holds benchmark protocols; serving, the engine and the CLI must not need it."""
    import subprocess
    import sys

    code = (
        "import sys, granite_panel.server.app, granite_panel.server.api, granite_panel.cli.main, "
        "granite_panel.cli.detect, granite_panel.engine.core\n"
        "print(sorted(m for m in sys.modules if m.startswith('granite_panel.evaluation')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
