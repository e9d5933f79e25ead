"""Incident notifications: payload formats, routing rules, a background dispatcher."""

from .dispatcher import Dispatcher, open_notifier
from .routing import NotifyConfig, NotifyConfigError, load_config

__all__ = ["Dispatcher", "NotifyConfig", "NotifyConfigError", "load_config", "open_notifier"]
