"""The one engine of a served process, shared by every browser session and the REST API."""

from __future__ import annotations

import threading

from ..engine.core import Engine
from ..notify import open_notifier
from ..settings import Settings, parse_retention

_lock = threading.Lock()
_engine: Engine | None = None
_viewers = 0


def shared_engine(settings: Settings | None = None) -> Engine:
    """The process's engine, built on first use from ``settings`` (or the environment).

    With ``AUTOSTART`` the stream starts as soon as the engine exists. The model promoted
    under MODELS_DIR serves; with ``TRAINING=auto`` a trainer runs in the background.
    """
    global _engine
    with _lock:
        if _engine is None:
            settings = settings or Settings.from_env()
            store = open_engine_store(settings)  # StoreError: one line, exit 2 in the CLI
            notifier = None
            try:
                notifier = open_notifier(settings, store)  # NotifyConfigError: exit 2 too
                _engine = Engine(settings, store=store, notifier=notifier)
            except BaseException:
                if notifier is not None:
                    notifier.close()
                if store is not None:
                    store.close()
                raise
            _engine.use_trained_models(train=_engine.settings.training == "auto")
            _engine.forecasts.start_loading()
            if _engine.settings.autostart:
                _engine.start()
        return _engine


def open_engine_store(settings: Settings):
    """The store ``DATABASE_URL`` names, or None for ``memory`` (nothing kept)."""
    if settings.database_url.strip() == "memory":
        return None
    from ..store import open_store

    return open_store(settings.database_url, retention=parse_retention(settings.retention))


def discard_shared_engine() -> None:
    """Stop the shared engine, checkpoint and release its store, and forget it (a clean
    stop of the server; tests and notebooks that serve twice)."""
    global _engine, _viewers
    with _lock:
        if _engine is not None:
            _engine.close()
        _engine, _viewers = None, 0


def viewer_joined() -> None:
    global _viewers
    with _lock:
        _viewers += 1


def viewer_left() -> None:
    global _viewers
    with _lock:
        _viewers = max(0, _viewers - 1)


def viewer_count() -> int:
    return _viewers
