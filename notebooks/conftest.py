"""pytest setup for the notebooks (collected by nbval, see pyproject.toml)."""

from __future__ import annotations

import os


def pytest_configure(config):
    """Find the sanitize file from the repository root whatever the working directory."""
    path = config.getoption("nbval_sanitize_with", None)
    if path and not os.path.isabs(path) and not os.path.exists(path):
        config.option.nbval_sanitize_with = str(config.rootpath / path)
