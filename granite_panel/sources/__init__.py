"""Where points come from: one interface (``next_batch``), several sources."""

from .synthetic import ANOMALY_KINDS, DIP, LEVEL_SHIFT, NORMAL, SPIKE, Batch, SyntheticSource

__all__ = ["ANOMALY_KINDS", "DIP", "LEVEL_SHIFT", "NORMAL", "SPIKE", "Batch", "SyntheticSource"]
