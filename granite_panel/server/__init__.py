"""The served process: the shared engine (``runtime``), the Panel app and the REST API."""
