"""Durable storage of series, points, forecasts, incidents and model runs (issue 10)."""

from granite_panel.store.store import Batch, Store, StoreError, open_store

__all__ = ["Batch", "Store", "StoreError", "open_store"]
