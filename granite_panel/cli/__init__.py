"""The ``granite-panel`` command: serve, fetch-model, detect."""

from .main import main

__all__ = ["main"]
