"""granite-panel: live forecasting and anomaly detection on Granite TTM and HoloViz.

Packages by concept (see the README's architecture map):
``sources`` (where points come from), ``engine`` (one tick for N series),
``forecasting`` (TTM and statistical models), ``detection`` (online detectors),
``ui`` (Panel/HoloViews views), ``server`` (the served app and REST API), ``cli``,
and ``evaluation`` (benchmark protocols; the app never imports it).
"""
