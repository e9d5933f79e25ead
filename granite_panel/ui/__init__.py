"""What a viewer sees: the controller (engine ticks -> HoloViews streams) and the layout."""

from .controller import StreamController
from .dashboard import Dashboard, extension

__all__ = ["Dashboard", "StreamController", "extension"]
